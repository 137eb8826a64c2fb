"""A read-only, seekable file over one object version, fetched by bounded ranges on demand.

Header readers (Pillow, pydicom) read through it: they seek where the format points (a TIFF's
first IFD after 20 MB of strips is one range read there, not 20 MB) and read only what they
use. What it fetches in total is bounded: past the budget a read raises CORRUPT_MEDIA, so no
header, however it is laid out, makes the function hold or transfer more than the budget.
Pure: bytes come from a `read_at(start, length)` callable.
"""

from __future__ import annotations

import io
from collections.abc import Buffer, Callable

from media_ingest.errors import ErrorCode, MediaError

BLOCK_BYTES = 64 * 1024

type ReadAt = Callable[[int, int], bytes]


class SeekableObject(io.RawIOBase):
    """The file bookkeeping of a read-only, seekable object of `size` bytes (a subclass
    reads): a position any seek may set, clamped at 0, past the end allowed as for files."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(base + offset, 0)
        return self.position


class ObjectFile(SeekableObject):
    """`size` bytes of an object, of which `head` (its first bytes) are already read."""

    def __init__(self, head: bytes, size: int, read_at: ReadAt, budget: int) -> None:
        super().__init__(size)
        self.read_at = read_at
        self.budget = budget
        self.fetched = len(head)
        self._blocks: dict[int, bytes] = {}
        whole = len(head) - len(head) % BLOCK_BYTES if len(head) < size else len(head)
        for start in range(0, whole, BLOCK_BYTES):
            self._blocks[start // BLOCK_BYTES] = head[start : start + BLOCK_BYTES]

    # What Pillow's messages call the file ("cannot identify image file ...").
    name = "the object"

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self.position + len(view), self.size)
        if end <= self.position:
            return 0
        first, last = self.position // BLOCK_BYTES, (end - 1) // BLOCK_BYTES
        self._fetch(first, last)
        done = 0
        for number in range(first, last + 1):
            block = self._blocks[number]
            start = max(self.position - number * BLOCK_BYTES, 0)
            stop = min(end - number * BLOCK_BYTES, len(block))
            view[done : done + stop - start] = block[start:stop]
            done += stop - start
        self.position += done
        return done

    def _fetch(self, first: int, last: int) -> None:
        """Read the missing blocks of [first, last], each run of them in one range."""
        number = first
        while number <= last:
            if number in self._blocks:
                number += 1
                continue
            run = number
            while run + 1 <= last and run + 1 not in self._blocks:
                run += 1
            start = number * BLOCK_BYTES
            length = min((run + 1) * BLOCK_BYTES, self.size) - start
            if self.fetched + length > self.budget:
                raise MediaError(
                    ErrorCode.CORRUPT_MEDIA,
                    f"header not found in the first {self.budget:,} bytes read of it",
                )
            data = self.read_at(start, length)
            self.fetched += length
            if len(data) < length:  # the object is shorter than its event said
                raise MediaError(ErrorCode.CORRUPT_MEDIA, "object ends before its size")
            for index in range(number, run + 1):
                offset = (index - number) * BLOCK_BYTES
                self._blocks[index] = data[offset : offset + BLOCK_BYTES]
            number = run + 1
