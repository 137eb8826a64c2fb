"""Manifests: a dataset's parts and their index in the manifest bucket, appended under
optimistic concurrency (writer.py). The entries' format is platforms/encord.py's."""
