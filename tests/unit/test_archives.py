"""Archive extraction rules on archives generated here, hostile ones included."""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib

import pytest

from media_ingest.archives.rules import (
    ArchiveRefused,
    Budget,
    Extraction,
    Limits,
    MemberRefused,
    Result,
    _chunks,
    member_key,
    member_path,
    prefix_of,
)
from media_ingest.errors import ErrorCode
from media_ingest.media import SOURCE_METADATA
from tests.support import hostile
from tests.support.archives import make_tar, make_zip
from tests.support.fakes import (
    MemoryAnnotationStore,
    MemoryArchive,
    MemoryLinks,
    MemoryMemberWriter,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypisom" + b"\x01" * 200
BOX = b"frame,x,y,width,height,label\n0,0.1,0.1,0.2,0.2,fish\n1,0.2,0.2,0.1,0.1,crab\n"
STATE = b"frame,presence\n,yes\n"


Writer = MemoryMemberWriter


def extract(
    data: bytes,
    container: str,
    *,
    key: str = "drops/pack.zip",
    limits: Limits | None = None,
    writer: Writer | None = None,
    links: MemoryLinks | None = None,
) -> tuple[Result, Writer, MemoryAnnotationStore]:
    writer = writer or Writer()
    store = MemoryAnnotationStore()
    result = Extraction(
        key=key,
        container=container,
        size=len(data),
        source="etag-1",
        reader=MemoryArchive(data),
        writer=writer,
        store=store,
        links=links if links is not None else MemoryLinks(),
        limits=limits or Limits(),
    ).run()
    return result, writer, store


LAYOUT = {
    "reef/clip.mp4": MP4,
    "reef/still.png": PNG,
    "reef/clip/localizations/box.csv": BOX,
    "reef/clip/states/presence.csv": STATE,
}


# -- names -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("a/pack.zip", "a/pack"),
        ("a/pack.tar.gz", "a/pack"),
        ("pack.TGZ", "pack"),
        ("a/pack.tar", "a/pack"),
        ("a/.zip", "a/.zip"),
        ("a/bundle", "a/bundle"),
    ],
)
def test_members_go_under_the_archive_key_without_its_suffix(key: str, prefix: str) -> None:
    assert prefix_of(key) == prefix


@pytest.mark.parametrize(
    ("name", "path"),
    [("a/b.mp4", "a/b.mp4"), ("./a//b.mp4", "a/b.mp4"), ("a/./b.mp4", "a/b.mp4")],
)
def test_harmless_names_are_normalised(name: str, path: str) -> None:
    assert member_path(name) == path


@pytest.mark.parametrize(
    "name",
    [
        "../evil.mp4",
        "a/../../evil.mp4",
        "/etc/passwd",
        "C:/evil.mp4",
        "c:evil.mp4",
        "a\\..\\evil.mp4",
        "a/\x00.mp4",
        "a/\n.mp4",
        "",
        "./",
        "..",
    ],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(MemberRefused) as refused:
        member_path(name)
    assert refused.value.code is ErrorCode.ARCHIVE_PATH_REFUSED


def test_a_key_longer_than_s3_allows_is_refused() -> None:
    with pytest.raises(MemberRefused):
        member_key("p.zip", "a" * 1100)


# -- a good archive, each container ----------------------------------------------------
@pytest.mark.parametrize("container", ["zip", "gzip", "tar"])
def test_members_are_written_and_annotations_linked(container: str) -> None:
    data = (
        make_zip(LAYOUT)
        if container == "zip"
        else make_tar(LAYOUT, "w:gz" if container == "gzip" else "w")
    )
    links = MemoryLinks()
    result, writer, store = extract(data, container, links=links)
    assert sorted(writer.objects) == ["drops/pack/reef/clip.mp4", "drops/pack/reef/still.png"]
    assert writer.objects["drops/pack/reef/clip.mp4"][0] == MP4
    assert result.refused == [] and result.annotations == 2
    assert store.files == {
        "drops/pack/reef/clip/localizations/box.csv": BOX,
        "drops/pack/reef/clip/states/presence.csv": STATE,
    }
    # The member's metadata names its archive version, and nothing else of the stack's: its
    # links are in the catalog, recorded before the member was written.
    assert writer.objects["drops/pack/reef/clip.mp4"][1] == {SOURCE_METADATA: "etag-1"}
    recorded = links.find_links("drop", "drops/pack/reef/clip.mp4", "etag-1")
    assert recorded is not None
    assert recorded.localizations["box"].rows == 2 and recorded.states["presence"].rows == 1
    assert recorded.localizations["box"].url.endswith("drops/pack/reef/clip/localizations/box.csv")
    assert list(links.links) == [("drop", "drops/pack/reef/clip.mp4", "etag-1")]


def test_annotations_after_their_media_in_a_tar_are_still_linked() -> None:
    # Tar is read in order: the CSV comes after the video, yet the video is written with it.
    data = make_tar({"clip.mp4": MP4, "clip/localizations/box.csv": BOX})
    links = MemoryLinks()
    extract(data, "gzip", key="x.tgz", links=links)
    assert links.of("x/clip.mp4") is not None


def test_a_redelivered_extraction_writes_nothing_again() -> None:
    data = make_zip(LAYOUT)
    _, writer, _ = extract(data, "zip")
    result, again, _ = extract(data, "zip", writer=writer)
    assert again.writes == 2 and len(result.skipped) == 2 and result.written == []


# -- hostile members: refused one by one -------------------------------------------------
def test_traversal_and_absolute_members_are_refused_and_the_rest_written() -> None:
    data = make_zip({"../evil.mp4": MP4, "/abs.png": PNG, "ok.png": PNG})
    result, writer, _ = extract(data, "zip")
    assert list(writer.objects) == ["drops/pack/ok.png"]
    assert {r.member: r.code for r in result.refused} == {
        "../evil.mp4": ErrorCode.ARCHIVE_PATH_REFUSED,
        "/abs.png": ErrorCode.ARCHIVE_PATH_REFUSED,
    }


def test_tar_links_and_devices_are_refused() -> None:
    link = tarfile.TarInfo("link.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("hard.png")
    hard.type, hard.linkname = tarfile.LNKTYPE, "ok.png"
    device = tarfile.TarInfo("dev")
    device.type = tarfile.CHRTYPE
    escape = tarfile.TarInfo("../../escape.png")
    escape.size = 0
    data = make_tar({"ok.png": PNG}, extra=(link, hard, device, escape))
    result, writer, _ = extract(data, "gzip", key="t.tar.gz")
    assert list(writer.objects) == ["t/ok.png"]
    assert {r.member: r.code for r in result.refused} == {
        "link.png": ErrorCode.ARCHIVE_LINK_REFUSED,
        "hard.png": ErrorCode.ARCHIVE_LINK_REFUSED,
        "dev": ErrorCode.ARCHIVE_LINK_REFUSED,
        "../../escape.png": ErrorCode.ARCHIVE_PATH_REFUSED,
    }


def test_zip_symlinks_and_encrypted_members_are_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        link = zipfile.ZipInfo("link.png")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("ok.png", PNG)
        archive.writestr("secret.png", PNG)
    data = bytearray(out.getvalue())
    # Set the "encrypted" flag bit (flags at +8) of secret.png's central directory entry.
    central = data.find(b"PK\x01\x02")
    while data[central + 46 : central + 56] != b"secret.png":
        central = data.find(b"PK\x01\x02", central + 4)
    data[central + 8] |= 0x1
    result, writer, _ = extract(bytes(data), "zip")
    assert list(writer.objects) == ["drops/pack/ok.png"]
    assert {r.member: r.code for r in result.refused} == {
        "link.png": ErrorCode.ARCHIVE_LINK_REFUSED,
        "secret.png": ErrorCode.ARCHIVE_ENCRYPTED,
    }


def test_an_archive_inside_an_archive_is_refused_so_extraction_never_recurses() -> None:
    inner = make_zip({"x.png": PNG})
    data = make_tar({"inner.bin": inner, "ok.png": PNG, "inner.tar.gz": make_tar({"y": PNG})})
    result, writer, _ = extract(data, "gzip", key="t.tgz")
    assert list(writer.objects) == ["t/ok.png"]
    assert {r.member: r.code for r in result.refused} == {
        "inner.bin": ErrorCode.ARCHIVE_NESTED,
        "inner.tar.gz": ErrorCode.ARCHIVE_NESTED,
    }


def test_invalid_and_orphaned_annotations_are_refused_with_file_line_and_column() -> None:
    bad = b"frame,x,y,width,height\n0,0.1,0.1,-0.2,0.2\n"
    data = make_zip(
        {"clip.mp4": MP4, "clip/localizations/box.csv": bad, "ghost/states/s.csv": STATE}
    )
    links = MemoryLinks()
    result, _, store = extract(data, "zip", links=links)
    refused = {r.member: r for r in result.refused}
    invalid = refused["clip/localizations/box.csv"]
    assert invalid.code is ErrorCode.INVALID_ANNOTATION
    assert invalid.message.startswith("clip/localizations/box.csv:2: column 'width':")
    assert refused["ghost/states/s.csv"].code is ErrorCode.ANNOTATION_WITHOUT_MEDIA
    assert store.files == {} and links.links == {}


# -- bombs: the whole archive, before anything is written --------------------------------
def _zeros_gzip_tar(size: int) -> bytes:
    """A tar.gz of one member of `size` zero bytes, compressed as it streams (never in memory)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        archive.addfile(info, _Zeros(size))
    return out.getvalue()


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def test_a_real_zip_bomb_is_refused_whole() -> None:
    # 200 MB of zeros deflate to ~200 KB: a ratio of ~1000.
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ok.png", PNG)
        with archive.open("zeros.bin", "w", force_zip64=True) as member:
            chunk = bytes(1024 * 1024)
            for _ in range(200):
                member.write(chunk)
    data = out.getvalue()
    assert len(data) < 1024 * 1024
    with pytest.raises(ArchiveRefused) as refused:
        extract(data, "zip")
    assert refused.value.code is ErrorCode.ARCHIVE_BOMB and "expands more than" in str(
        refused.value
    )


def test_a_tar_gz_bomb_is_refused_on_the_bytes_streamed_before_any_write() -> None:
    data = _zeros_gzip_tar(64 * 1024 * 1024)
    writer = Writer()
    with pytest.raises(ArchiveRefused) as refused:
        extract(data, "gzip", key="b.tgz", writer=writer)
    assert refused.value.code is ErrorCode.ARCHIVE_BOMB and writer.objects == {}


def test_a_tar_header_lying_about_size_is_caught_on_the_streamed_bytes() -> None:
    # A plain (uncompressed) stream: the per-member cap trips on the header, the total cap
    # on the bytes that actually stream.
    limits = Limits(max_member_bytes=1000, ratio_floor_bytes=10**12)
    with pytest.raises(ArchiveRefused):
        extract(make_tar({"big.png": PNG + bytes(2000)}, "w"), "tar", key="t.tar", limits=limits)
    limits = Limits(max_extracted_bytes=5000, ratio_floor_bytes=10**12)
    many = {f"{i}.png": PNG + bytes(1000) for i in range(10)}
    with pytest.raises(ArchiveRefused):
        extract(make_tar(many, "w"), "tar", key="t.tar", limits=limits)


def test_member_count_and_archive_size_caps() -> None:
    many = {f"{i}.png": PNG for i in range(5)}
    with pytest.raises(ArchiveRefused) as refused:
        extract(make_zip(many), "zip", limits=Limits(max_members=4))
    assert refused.value.code is ErrorCode.ARCHIVE_BOMB
    with pytest.raises(ArchiveRefused) as refused:
        extract(make_zip(many), "zip", limits=Limits(max_archive_bytes=10))
    assert refused.value.code is ErrorCode.ARCHIVE_TOO_LARGE


def test_a_truncated_archive_is_corrupt() -> None:
    data = make_tar(LAYOUT)
    with pytest.raises(ArchiveRefused) as refused:
        extract(data[: len(data) // 2], "gzip", key="t.tgz")
    assert refused.value.code is ErrorCode.ARCHIVE_CORRUPT
    with pytest.raises(ArchiveRefused) as refused:
        extract(zlib.compress(b"x") * 3, "zip")
    assert refused.value.code is ErrorCode.ARCHIVE_CORRUPT


# -- hostile and unusual archives (issue 11) -----------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["a/\x85.png", "clip\u202egnp.exe", "a\u2066b.png", "a/\u200fb.png", "caf\udce9.png"],
    ids=["c1-control", "bidi-override", "bidi-isolate", "rtl-mark", "not-utf8"],
)
def test_c1_controls_bidi_marks_and_undecodable_bytes_are_refused(name: str) -> None:
    with pytest.raises(MemberRefused) as refused:
        member_path(name)
    assert refused.value.code is ErrorCode.ARCHIVE_PATH_REFUSED


@pytest.mark.parametrize(("method", "label"), [(9, "Deflate64"), (93, "Zstandard")])
def test_a_member_zipfile_cannot_inflate_is_refused_before_anything_of_it_is_written(
    method: int, label: str
) -> None:
    data = hostile.zip_method(
        hostile.zip_of([("a.png", PNG), ("b.png", PNG), ("c.mp4", MP4)]), "b.png", method
    )
    result, writer, _ = extract(data, "zip")
    assert sorted(writer.objects) == ["drops/pack/a.png", "drops/pack/c.mp4"]
    [refused] = result.refused
    assert (refused.member, refused.code) == ("b.png", ErrorCode.ARCHIVE_METHOD_UNSUPPORTED)
    assert label in refused.message


def test_a_zip_name_flagged_utf8_that_is_not_makes_the_archive_corrupt_not_a_crash() -> None:
    data = hostile.zip_bad_utf8_name([("ok.png", PNG), ("caf\u00e9.png", PNG)], "caf\u00e9.png")
    writer = Writer()
    with pytest.raises(ArchiveRefused) as refused:
        extract(data, "zip", writer=writer)
    assert refused.value.code is ErrorCode.ARCHIVE_CORRUPT and "flagged UTF-8" in str(refused.value)
    assert writer.objects == {}


def test_a_latin1_tar_name_is_refused_by_name_and_the_rest_written() -> None:
    data = hostile.tar_of(
        [("ok.png", PNG), ("caf\u00e9.png", PNG)], encoding="latin-1", tar_format=1
    )
    result, writer, _ = extract(data, "tar", key="t.tar")
    assert list(writer.objects) == ["t/ok.png"]
    [refused] = result.refused
    assert (refused.member, refused.code) == ("caf\\xe9.png", ErrorCode.ARCHIVE_PATH_REFUSED)
    refused.member.encode("utf-8")  # a record can carry it


@pytest.mark.parametrize(
    ("container", "second"), [("zip", "dup.png"), ("gzip", "./dup.png"), ("gzip", "a/../dup.png")]
)
def test_a_second_member_with_the_same_path_is_refused_and_the_first_written(
    container: str, second: str
) -> None:
    members = [("dup.png", PNG + b"first"), (second, PNG + b"second"), ("c.mp4", MP4)]
    data = hostile.zip_of(members) if container == "zip" else hostile.tar_of(members, "w:gz")
    result, writer, _ = extract(data, container, key="d.zip" if container == "zip" else "d.tgz")
    assert {k: v[0] for k, v in writer.objects.items()} == {
        "d/dup.png": PNG + b"first",
        "d/c.mp4": MP4,
    }
    expected = (
        ErrorCode.ARCHIVE_PATH_REFUSED if ".." in second else ErrorCode.ARCHIVE_DUPLICATE_NAME
    )
    assert [(r.member, r.code) for r in result.refused] == [(second, expected)]


def test_a_sparse_tar_member_is_counted_as_the_bytes_it_writes() -> None:
    # 96 bytes of tar.gz; 300 MB once its holes are written.
    writer = Writer()
    with pytest.raises(ArchiveRefused) as refused:
        extract(
            hostile.sparse_tar_gz("disk.img", 300 * 1024 * 1024), "gzip", key="s.tgz", writer=writer
        )
    assert refused.value.code is ErrorCode.ARCHIVE_BOMB and writer.objects == {}


def test_the_bytes_written_are_counted_even_past_what_the_headers_declare() -> None:
    # The write pass counts too: a cap on what is written holds whatever the plan saw.
    data = make_tar({f"{i}.png": PNG + bytes(1000) for i in range(10)}, "w")
    budget = Budget(Limits(max_extracted_bytes=5000, ratio_floor_bytes=10**12))
    with pytest.raises(ArchiveRefused):
        for chunk in _chunks(io.BytesIO(data), budget):
            assert chunk


def test_a_member_never_overwrites_an_existing_key() -> None:
    writer = Writer()
    writer.objects["drops/pack/reef/still.png"] = (b"the owner's file", {})
    result, writer, _ = extract(make_zip(LAYOUT), "zip", writer=writer)
    assert writer.objects["drops/pack/reef/still.png"] == (b"the owner's file", {})
    assert [(r.member, r.code) for r in result.refused] == [
        ("reef/still.png", ErrorCode.ARCHIVE_MEMBER_EXISTS)
    ]
    assert "drops/pack/reef/clip.mp4" in writer.objects
