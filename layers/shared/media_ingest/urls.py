"""Object URLs: the one place that turns (bucket, key) into the URL a platform imports.

The URL is also the catalog's identity for an object, so it must be deterministic.
"""

from __future__ import annotations

from urllib.parse import quote

from media_ingest.settings import UrlStyle

# RFC 3986 unreserved characters plus '/', as S3's own URI encoding leaves them.
_SAFE = "/-_.~"


def encode_key(key: str) -> str:
    """Percent-encode a key for a URL path: no whitespace or reserved character survives.

    A key segment that is '.' or '..' is legal in S3 but a dot segment in a URL, which
    clients (curl, browsers, the platform's fetcher) resolve away: 'a/../b.mp4' would be
    fetched as 'b.mp4'. Their dots are percent-encoded, which S3 decodes back.
    """
    segments = quote(key, safe=_SAFE).split("/")
    return "/".join(s.replace(".", "%2E") if s in (".", "..") else s for s in segments)


def object_url(bucket: str, key: str, region: str, style: UrlStyle = "virtual") -> str:
    """The object's URL in the configured style.

    virtual: https://<bucket>.s3.<region>.amazonaws.com/<encoded key> (Encord's default form)
    path:    https://s3.<region>.amazonaws.com/<bucket>/<encoded key> (buckets with dots)
    s3:      s3://<bucket>/<key> (the raw key, as the AWS CLI writes S3 URIs)
    """
    if style == "s3":
        return f"s3://{bucket}/{key}"
    if style == "path":
        return f"https://s3.{region}.amazonaws.com/{bucket}/{encode_key(key)}"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{encode_key(key)}"
