"""FFmpeg as the oracle of a video's frames: ffprobe on the local file, decoding every frame
(`-count_frames`, `-show_frames`), its packet timestamps, and its own reading of the edit
list (its debug log). Tests only: the product never decodes.

Also the plain reference of the constant-rate rule (probing/frame_timing.py's docstring),
written the obvious way over a list, to judge the oracle's timestamps independently.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

# "Processing st: 0, edit list 0 - media time: 1024, duration: 25600" (mov.c, debug level):
# FFmpeg's reading of each edit, its duration already in the track's ticks.
_EDIT = re.compile(r"Processing st: (\d+), edit list \d+ - media time: (-?\d+), duration: (\d+)")


@dataclass(frozen=True)
class Oracle:
    time_base: Fraction  # seconds per tick of the stream
    frames: list[int]  # presentation times of the decoded frames, in output order (ticks)
    keyframes: list[int]  # output positions of the frames the decoder marks as key frames
    lone_duration: int | None  # the first frame's duration (ticks), for one-frame videos
    count: int  # nb_read_frames
    shown_packets: list[int]  # presentation times of packets not flagged discard, sorted
    start_time: str | None  # as ffprobe prints it
    duration: str | None
    edits: list[tuple[int, int]]  # (media time, duration in stream ticks), FFmpeg's reading

    def seconds(self, ticks: int) -> float:
        return float(round(ticks * self.time_base, 6))

    @property
    def steps(self) -> list[int]:
        return [b - a for a, b in itertools.pairwise(self.frames)]

    @property
    def presentation_duration(self) -> float | None:
        """Seconds of the non-empty edits, or without an edit list the stream's duration."""
        if not self.edits:
            return float(self.duration) if self.duration not in (None, "N/A") else None
        return self.seconds(sum(d for media_time, d in self.edits if media_time != -1))


def _ffprobe(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ffprobe", *args], capture_output=True, check=True)


def decode(path: Path) -> Oracle:
    """Everything FFmpeg says of the first video stream of a local file."""
    common = ["-select_streams", "v:0", "-of", "json"]
    frames: dict[str, Any] = json.loads(
        _ffprobe(
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=index,nb_read_frames,start_time,duration,time_base:"
            "frame=pts,duration,key_frame",
            *common,
            str(path),
        ).stdout
    )
    packets: dict[str, Any] = json.loads(
        _ffprobe("-v", "error", "-show_entries", "packet=pts,flags", *common, str(path)).stdout
    )
    debug = _ffprobe("-v", "debug", "-show_entries", "stream=index", str(path)).stderr
    stream = frames["streams"][0]
    index = int(stream["index"])
    edits = [
        (int(media_time), int(duration))
        for st, media_time, duration in _EDIT.findall(debug.decode("utf-8", "replace"))
        if int(st) == index
    ]
    decoded = frames["frames"]
    return Oracle(
        time_base=Fraction(stream["time_base"]),
        frames=[int(f["pts"]) for f in decoded],
        keyframes=[i for i, f in enumerate(decoded) if f["key_frame"]],
        lone_duration=int(decoded[0]["duration"]) if decoded and "duration" in decoded[0] else None,
        count=int(stream["nb_read_frames"]),
        shown_packets=sorted(
            int(p["pts"]) for p in packets["packets"] if "D" not in p.get("flags", "")
        ),
        start_time=stream.get("start_time"),
        duration=stream.get("duration"),
        edits=edits,
    )


def constant_rate(times: list[int], tick: int = 1) -> bool:
    """The rule of frame_timing.py, the obvious way: durations within one tick of each
    other, a tick at most half the shortest (unless all are equal), no timestamp more than
    one tick off the line through the first and the last."""
    if len(times) < 2:
        return True
    steps = [b - a for a, b in itertools.pairwise(times)]
    if max(steps) - min(steps) > tick:
        return False
    if max(steps) != min(steps) and min(steps) < 2 * tick:
        return False
    slope = Fraction(times[-1] - times[0], len(times) - 1)
    return all(abs(t - times[0] - i * slope) <= tick for i, t in enumerate(times))
