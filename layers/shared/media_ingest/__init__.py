"""media-ingest: probe media dropped in S3, register it once, write labelling-platform manifests."""

__version__ = "0.1.0"
