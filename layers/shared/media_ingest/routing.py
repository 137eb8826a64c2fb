"""Routing: which dataset a key belongs to, and which keys a documented rule ignores."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from media_ingest.owner_metadata import is_sidecar
from media_ingest.settings import Settings


@dataclass(frozen=True)
class Route:
    dataset: str | None
    ignored_by: str | None = None


@dataclass(frozen=True)
class Router:
    """Longest matching key prefix wins; no match goes to the default dataset.

    Ignore patterns are shell globs. A pattern with '/' matches the whole key (so '*/'
    ignores folder markers); one without matches the file name only.
    """

    default_dataset: str
    routes: dict[str, str]
    ignore_patterns: tuple[str, ...] = ()
    # With sidecars on, `clip.mp4.json` is clip.mp4's metadata, not an object of its own.
    sidecar_suffix: str = ""

    @classmethod
    def of(cls, settings: Settings) -> Router:
        return cls(
            settings.default_dataset,
            settings.dataset_routes,
            settings.ignore_patterns,
            settings.sidecar_suffix,
        )

    def route(self, key: str) -> Route:
        if is_sidecar(key, self.sidecar_suffix):
            return Route(dataset=None, ignored_by=f"sidecar (*{self.sidecar_suffix})")
        rule = self.ignored_by(key)
        if rule is not None:
            return Route(dataset=None, ignored_by=rule)
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
