"""Fault injection: which faults a spec names, and that each fires only after a real write."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from media_ingest.faults import (
    FaultAction,
    FaultInjector,
    FaultPoint,
    FaultyCatalog,
    appended_hook,
    parse_faults,
)
from media_ingest.groups.rules import GroupKind, GroupRef
from media_ingest.manifests.writer import ManifestWriter
from media_ingest.platforms.encord import entry_for, group_entry
from media_ingest.settings import Settings
from tests.support.fakes import MemoryCatalog, MemoryPartStore
from tests.support.items import image_item, video_item

ENV = {"CATALOG_TABLE": "t", "MANIFEST_BUCKET": "m", "FAILURE_QUEUE_URL": "q"}


class Recorder(FaultInjector):
    def _recorder(self, action: FaultAction) -> Callable[[], None]:
        return lambda: self.fired.append(action.value)

    def __init__(self, spec: str) -> None:
        self.fired: list[str] = []
        super().__init__(
            parse_faults(spec),
            {action: self._recorder(action) for action in FaultAction},
        )


def test_a_spec_names_action_point_and_prefix() -> None:
    faults = parse_faults(" crash@registered:chaos/a/ ,hang@appended:chaos/b/,")
    assert [(f.action, f.point, f.key_prefix) for f in faults] == [
        (FaultAction.CRASH, FaultPoint.REGISTERED, "chaos/a/"),
        (FaultAction.HANG, FaultPoint.APPENDED, "chaos/b/"),
    ]
    assert parse_faults("") == ()


@pytest.mark.parametrize(
    "spec",
    ["crash", "explode@registered:x/", "crash@probed:x/", "crash@registered:", "hang@appended:a b"],
)
def test_a_bad_spec_is_refused_at_cold_start(spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="is not ACTION@POINT"):
        parse_faults(spec)
    for name, value in (ENV | {"FAULT_INJECTION": spec}).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=r"FAULT_INJECTION|fault_injection"):
        Settings()


def test_registered_fires_only_when_the_item_was_written_and_under_the_prefix() -> None:
    injector = Recorder("crash@registered:chaos/")
    catalog = FaultyCatalog(MemoryCatalog(), injector)
    catalog.put_new(video_item("calm/a.mp4"))
    assert injector.fired == []
    catalog.put_new(video_item("chaos/a.mp4"))
    assert injector.fired == ["crash"]
    catalog.put_new(video_item("chaos/a.mp4"))  # the redelivery: nothing written, no fault
    assert injector.fired == ["crash"]
    catalog.put_newer(video_item("chaos/b.mp4", sequencer="02"))
    assert injector.fired == ["crash", "crash"]


def test_appended_fires_once_with_the_entries_a_write_added() -> None:
    injector = Recorder("hang@appended:chaos/")
    writer = ManifestWriter(MemoryPartStore(), on_added=appended_hook(injector))
    writer.append("main", [entry_for(image_item("calm/1.png"))])
    assert injector.fired == []
    chaos = entry_for(image_item("chaos/2.png"))
    writer.append("main", [chaos, entry_for(image_item("calm/3.png"))])
    assert injector.fired == ["hang"]
    writer.append("main", [chaos])  # already present: no write, no fault
    assert injector.fired == ["hang"]


def test_appended_matches_a_group_entry_by_its_folder() -> None:
    injector = Recorder("crash@appended:seq/")
    writer = ManifestWriter(MemoryPartStore(), on_added=appended_hook(injector))
    frames = [image_item(f"seq/run7/f{i}.png") for i in (1, 2)]
    ref = GroupRef(dataset="main", kind=GroupKind.IMAGE_SEQUENCES, title="run7", scope="seq/run7")
    writer.append("main", [group_entry(ref, frames)])
    assert injector.fired == ["crash"]
