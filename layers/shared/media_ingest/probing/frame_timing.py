"""The frame-rate rule: presentation timestamps (whole ticks of a container's clock, in the
order a player shows the frames) in, a `FrameTiming` out. The one home of what "constant"
means; the MP4 and Matroska readers hand it timestamps and never judge a rate themselves.

Pure: integers in, a model out; never reads bytes.

Constant, and the tolerance for timestamp rounding: a container stores each timestamp as a
whole number of ticks (1/90000 s, 1/600 s, 1 ms, ...), so a constant rate whose frame
duration is not a whole number of ticks is stored as durations one tick apart (29.97 fps in
milliseconds: 33, 33, 34, 33, ... ms). A video is **constant** when its timestamps are what
a constant-rate clock rounded to those ticks would give:
1. every frame duration (the time between consecutive frames) is within one tick of every
   other;
2. no timestamp strays more than one tick from the straight line through the first and the
   last (rounding never drifts: a run of 33 ms followed by a run of 34 ms is two rates);
3. one tick is at most half of the shortest frame duration, unless all durations are equal:
   with a coarser clock a dropped frame looks like rounding (30 fps in 1/30 s ticks: 1, 1,
   2, 1), so such a video counts as variable, the answer that cannot put a label on the
   wrong frame.
Anything else is **variable**. Both rules 1 and 2 hold for any rounding (to nearest or
down) of a truly constant rate: consecutive rounded times differ by the floor or the ceiling
of the duration, and each sits within half a tick of the true line, as do both ends.

A single frame is constant; its duration is its own (the sample's) duration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import NamedTuple

from media_ingest.media import FrameRateMode, FrameTiming

TICK_TOLERANCE = 1  # ticks: rounding moves a timestamp by less than one tick

# A fresh iterator over the presentation timestamps each time it is called: the drift check
# is a second pass, so the timestamps never need to be held in memory at once.
Timestamps = Callable[[], Iterator[int]]


class Cadence(NamedTuple):
    """What the timestamps say, in ticks."""

    frames: int
    first: int
    last: int
    shortest: int | None  # None: a single frame of unknown duration
    longest: int | None
    constant: bool


def cadence(times: Timestamps, lone_duration: int | None) -> Cadence | None:
    """Count, first and last timestamp, shortest and longest duration, and the rule above.

    `lone_duration` is the duration of a video's only frame (it has no next frame to measure
    against; None: not known). None: no frames. Raises ValueError for timestamps out of
    order.
    """
    count = first = last = 0
    shortest = longest = -1
    for t in times():
        if count == 0:
            first = t
        else:
            step = t - last
            if step < 0:
                raise ValueError(f"timestamps out of presentation order at frame {count}")
            shortest = step if shortest < 0 else min(shortest, step)
            longest = max(longest, step)
        last = t
        count += 1
    if count == 0:
        return None
    if count == 1:
        return Cadence(1, first, last, lone_duration, lone_duration, True)
    steady = longest - shortest <= TICK_TOLERANCE and (
        longest == shortest or shortest >= 2 * TICK_TOLERANCE
    )
    constant = steady and _on_one_line(times, count, first, last)
    return Cadence(count, first, last, shortest, longest, constant)


def _on_one_line(times: Timestamps, count: int, first: int, last: int) -> bool:
    """Every timestamp within one tick of the line from the first to the last (exact)."""
    span, steps = last - first, count - 1
    for i, t in enumerate(times()):
        # |t - (first + i * span / steps)| <= 1 tick, multiplied through by `steps`.
        if abs((t - first) * steps - i * span) > TICK_TOLERANCE * steps:
            return False
    return True


def seconds(ticks: int, timescale: int | Fraction) -> float:
    """Ticks as seconds (`timescale` ticks a second), to the microsecond, as ffprobe prints."""
    return float(round(Fraction(ticks) / timescale, 6))


def measured(
    source: str,
    found: Cadence | None,
    timescale: int | Fraction,
    *,
    start: int | None = None,
    presentation_duration: float | None = None,
) -> FrameTiming:
    """The FrameTiming of what `cadence` found; `start` (ticks) defaults to the first frame."""
    if found is None:
        return FrameTiming(
            source=source,
            frame_count=0,
            presentation_duration=presentation_duration,
            unknown="the index lists no frame a player would show",
        )
    return FrameTiming(
        source=source,
        frame_count=found.frames,
        rate_mode=FrameRateMode.CONSTANT if found.constant else FrameRateMode.VARIABLE,
        min_frame_duration=None if found.shortest is None else seconds(found.shortest, timescale),
        max_frame_duration=None if found.longest is None else seconds(found.longest, timescale),
        start_time=seconds(found.first if start is None else start, timescale),
        presentation_duration=presentation_duration,
    )


def unknown(source: str, reason: str, **known: float | int | None) -> FrameTiming:
    """A FrameTiming that says why it has nothing (or only the fields in `known`)."""
    return FrameTiming.model_validate({"source": source, "unknown": reason, **known})
