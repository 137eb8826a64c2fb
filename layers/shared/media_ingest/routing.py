"""Routing: which dataset a key belongs to, and which keys a documented rule ignores."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from media_ingest.owner_metadata import is_sidecar
from media_ingest.settings import Settings
from media_ingest.sources import SourceBucket


@dataclass(frozen=True)
class Route:
    dataset: str | None
    ignored_by: str | None = None


@dataclass(frozen=True)
class Router:
    """Longest matching key prefix wins; no match goes to the default dataset.

    Ignore patterns are shell globs. A pattern with '/' matches the whole key (so '*/'
    ignores folder markers); one without matches the file name only. An attached source
    bucket (sources.py) takes only keys under its prefixes; its dataset, if it names one,
    wins over the key routes.
    """

    default_dataset: str
    routes: dict[str, str]
    ignore_patterns: tuple[str, ...] = ()
    # With sidecars on, `clip.mp4.json` is clip.mp4's metadata, not an object of its own.
    sidecar_suffix: str = ""
    sources: tuple[SourceBucket, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> Router:
        return cls(
            settings.default_dataset,
            settings.dataset_routes,
            settings.ignore_patterns,
            settings.sidecar_suffix,
            settings.source_buckets,
        )

    def route(self, key: str, bucket: str | None = None) -> Route:
        if is_sidecar(key, self.sidecar_suffix):
            return Route(dataset=None, ignored_by=f"sidecar (*{self.sidecar_suffix})")
        rule = self.ignored_by(key)
        if rule is not None:
            return Route(dataset=None, ignored_by=rule)
        attached = [s for s in self.sources if s.bucket == bucket]
        if attached:
            covering = [s for s in attached if s.covers(bucket or "", key)]
            if not covering:
                return Route(dataset=None, ignored_by=f"outside the attached prefixes of {bucket}")
            source = max(covering, key=lambda s: len(s.prefix))
            if source.dataset:
                return Route(dataset=source.dataset)
        matches = [prefix for prefix in self.routes if key.startswith(prefix)]
        if not matches:
            return Route(dataset=self.default_dataset)
        return Route(dataset=self.routes[max(matches, key=len)])

    def ignored_by(self, key: str) -> str | None:
        name = key.rsplit("/", 1)[-1]
        for pattern in self.ignore_patterns:
            target = key if "/" in pattern else name
            if fnmatchcase(target, pattern):
                return pattern
        return None
