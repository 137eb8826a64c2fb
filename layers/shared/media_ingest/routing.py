"""Routing: which dataset a key belongs to, and which keys a documented rule ignores."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase


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

    def route(self, key: str) -> Route:
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
