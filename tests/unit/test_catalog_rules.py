from __future__ import annotations

from media_ingest.ingest.registration import register
from media_ingest.records import OutcomeKind
from tests.support.fakes import MemoryCatalog
from tests.support.items import video_item


def test_first_write_registers_then_an_other_event_is_a_duplicate() -> None:
    catalog = MemoryCatalog()
    assert (
        register(catalog, video_item("a.mp4", sequencer="01"), update=False)[0]
        is OutcomeKind.REGISTERED
    )
    kind, detail, *_ = register(catalog, video_item("a.mp4", sequencer="02"), update=False)
    assert kind is OutcomeKind.DUPLICATE and "already registered" in (detail or "")
    assert len(catalog.items) == 1


def test_our_own_earlier_write_is_not_a_duplicate() -> None:
    catalog = MemoryCatalog()
    item = video_item("a.mp4")
    register(catalog, item, update=False)
    assert register(catalog, item, update=False)[0] is OutcomeKind.REGISTERED


def test_update_mode_replaces_only_with_a_newer_event() -> None:
    catalog = MemoryCatalog()
    register(catalog, video_item("a.mp4", sequencer="05"), update=True)
    assert (
        register(catalog, video_item("a.mp4", sequencer="0A"), update=True)[0]
        is OutcomeKind.UPDATED
    )
    assert (
        register(catalog, video_item("a.mp4", sequencer="07"), update=True)[0]
        is OutcomeKind.DUPLICATE
    )
    assert next(iter(catalog.items.values())).sequencer == "0A"
