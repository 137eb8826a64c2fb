"""Peak memory of a piece of code, measured in a fresh interpreter (a process's high-water
mark only grows, so a test cannot measure it in the process that ran the others)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def peak_rss_mb(code: str, baseline: str = "") -> tuple[float, float]:
    """(peak resident MB after `baseline`, peak after `code` too), in one new interpreter
    with the package and the tests importable. `baseline` imports what `code` needs, so the
    difference is what `code` itself took."""
    program = "\n".join(
        [
            "import sys, resource",
            f"sys.path[:0] = [{str(ROOT / 'layers/shared')!r}, {str(ROOT)!r}]",
            textwrap.dedent(baseline),
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss",
            textwrap.dedent(code),
            "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss",
            "print('peak-rss-kb', before, after)",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=300
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("peak-rss-kb"))
    before, after = (int(n) / 1024 for n in line.split()[1:])
    return before, after
