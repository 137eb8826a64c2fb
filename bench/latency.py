"""The latency model every bench figure is produced under: a request's first byte arrives
`first_byte_ms` after it is sent, and its bodies (up and down) move at `mb_per_s`.

Defaults: a first byte after 25 ms per S3 request (the figure issue 14 used; AWS quotes
100-200 ms for the first byte of large objects, small ones answer faster), 90 MB/s per
connection (an assumption, not a measurement: change it with --bandwidth), and 8 ms per
DynamoDB write (its "single-digit milliseconds"). They are options of `python -m bench`,
used by bench/memory_s3.py (in virtual time) and bench/latency_proxy.py (in real time, in
front of moto).
"""

from __future__ import annotations

from dataclasses import dataclass

S3_FIRST_BYTE_MS = 25.0
S3_MB_PER_S = 90.0
DYNAMODB_MS = 8.0


@dataclass(frozen=True)
class Latency:
    first_byte_ms: float = S3_FIRST_BYTE_MS
    mb_per_s: float = S3_MB_PER_S

    def seconds(self, sent: int = 0, received: int = 0) -> float:
        """How long one request takes, its bodies included."""
        return self.first_byte_ms / 1000 + (sent + received) / (self.mb_per_s * 1e6)

    def describe(self) -> str:
        return f"first byte {self.first_byte_ms:g} ms, {self.mb_per_s:g} MB/s per connection"


NONE = Latency(0.0, float("inf"))
