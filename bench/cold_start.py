"""Benchmark 5: cold-start import time of the ingest handler, against `import boto3` alone.

Measured: `python -X importtime -c "import app"` with functions/ingest and the shared layer
first on sys.path, in fresh processes, in a Lambda-like environment (function name,
LAMBDA_TASK_ROOT and the template's Powertools variables, tracing on as the template has
it); the figure is the cumulative time of the `app` import (median of the runs).

- source tree: layers/shared + the venv's packages, bytecode cached under the bench cache
  (`-X pycache_prefix`, one untimed warm-up run first): the code as it is in the repo.
- as the layer ships: build/layers/shared/python (with whatever .pyc infra/build.sh put in
  it), `-B` so nothing is written there; only if the layer has been built.

Baseline: `import boto3` alone, measured the same way (bytecode cached). Beside it, the
floor the stack's libraries set before a line of ours: boto3, pydantic (with one model
built) and Powertools' Logger, Metrics and Tracer made as observability.py makes them.

The heaviest imports are the third-party modules that our own modules (app, media_ingest.*)
import first, ranked by cumulative time: the candidates for a lazy import.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import ROOT, SHARED, Context, log
from bench.report import Section, Table, Target, ratio

HANDLER_DIR = ROOT / "functions" / "ingest"
LAYER_BUILD = ROOT / "build" / "layers" / "shared" / "python"
TARGET = 1.5
TOP = 10


@dataclass
class Node:
    """One line of -X importtime output, with the imports it triggered."""

    name: str
    self_us: int
    cumulative_us: int
    children: list[Node] = field(default_factory=list)


def parse_importtime(stderr: str) -> list[Node]:
    """The top-level imports of a -X importtime trace, as trees.

    Lines come in post-order (an import is printed after the imports it triggered), indented
    two spaces per level after the second `|`.
    """
    pending: dict[int, list[Node]] = defaultdict(list)
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        name = name[1:]  # the one space after the bar
        level = (len(name) - len(name.lstrip(" "))) // 2
        node = Node(name.strip(), int(self_us), int(cumulative_us), pending.pop(level + 1, []))
        pending[level].append(node)
    return pending[0]


def find(nodes: list[Node], name: str) -> Node:
    for node in nodes:
        if node.name == name:
            return node
    raise LookupError(f"no top-level import of {name!r} in the trace")


def ours(name: str) -> bool:
    return name in {"app", "media_ingest"} or name.startswith("media_ingest.")


def heavy_imports(root: Node) -> dict[tuple[str, str], Node]:
    """{(our importing module, third-party module): its node} under `root`."""
    found: dict[tuple[str, str], Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node.children:
            if ours(child.name):
                stack.append(child)
            else:
                found[(node.name, child.name)] = child
    return found


def find_below(node: Node, name: str) -> Node | None:
    """The import of `name` in node's subtree (itself included), if it happened there."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.name == name:
            return current
        stack.extend(current.children)
    return None


def without_boto3(node: Node) -> int:
    """Cumulative time minus boto3's, when boto3 was first imported under this node: the
    part of its cost a lazy import would save beyond what every handler pays for boto3."""
    boto3 = find_below(node, "boto3")
    return node.cumulative_us - (boto3.cumulative_us if boto3 else 0)


def lambda_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(Path.home()),
        "LANG": "C.UTF-8",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "media-ingest-bench",
        "LAMBDA_TASK_ROOT": str(HANDLER_DIR),
        "POWERTOOLS_SERVICE_NAME": "media-ingest",
        "POWERTOOLS_METRICS_NAMESPACE": "MediaIngest",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    return env | (extra or {})


def trace(code: str, flags: list[str]) -> list[Node]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *flags, "-c", code],
        capture_output=True,
        text=True,
        env=lambda_env(),
        cwd="/",
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import failed: {done.stderr.strip().splitlines()[-1:]}")
    return parse_importtime(done.stderr)


def handler_code(*paths: Path) -> str:
    return f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}; import app"


@dataclass
class Scenario:
    name: str
    code: str
    flags: list[str]
    module: str
    warm_up: bool = True  # one untimed run first, which compiles and caches the bytecode
    runs: list[Node] = field(default_factory=list)

    def measure(self) -> None:
        self.runs.append(find(trace(self.code, self.flags), self.module))

    @property
    def median_us(self) -> float:
        return statistics.median(node.cumulative_us for node in self.runs)


def layer_snapshot(cache: Path) -> tuple[Path, str] | None:
    """A copy of the built shared layer (others may rebuild build/ meanwhile), and what it is;
    None if the layer is not built or changed under the copy."""
    if not (LAYER_BUILD / "media_ingest").is_dir():
        return None
    snapshot = cache / "layer-snapshot" / "python"
    shutil.rmtree(snapshot.parent, ignore_errors=True)
    try:
        built = datetime.fromtimestamp((LAYER_BUILD / "media_ingest").stat().st_mtime, UTC)
        shutil.copytree(LAYER_BUILD, snapshot)  # keeps mtimes: timestamped .pyc stay valid
    except OSError:
        return None
    compiled = any((snapshot / "media_ingest" / "__pycache__").glob("*.pyc"))
    return snapshot, (
        f"'as the layer ships' = a copy of {LAYER_BUILD.relative_to(ROOT)} built at "
        f"{built:%H:%M} UTC ({'with' if compiled else 'without'} .pyc), imported with -B; "
        "boto3 from the venv, as the Lambda runtime provides it"
    )


FLOOR = """import boto3
import pydantic
from aws_lambda_powertools import Logger, Metrics, Tracer

Logger(service="floor")
Metrics(namespace="Floor", service="floor")
Tracer(service="floor")


class Model(pydantic.BaseModel):
    value: int
"""


def floor_code(cache: Path) -> str:
    folder = cache / "cold-start-floor"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cold_start_floor.py").write_text(FLOOR)
    return f"import sys; sys.path[:0] = [{str(folder)!r}]; import cold_start_floor"


def run(ctx: Context) -> list[Section]:
    count = 3 if ctx.quick else 7
    cached = ["-X", f"pycache_prefix={ctx.cache / 'pycache'}"]
    source = Scenario("handler, source tree", handler_code(SHARED, HANDLER_DIR), cached, "app")
    boto3 = Scenario("import boto3 alone", "import boto3", cached, "boto3")
    floor = Scenario(
        "boto3 + pydantic + Powertools (the floor)",
        floor_code(ctx.cache),
        cached,
        "cold_start_floor",
    )
    scenarios = [source, boto3, floor]
    layer = layer_snapshot(ctx.cache)
    if layer is not None:
        shipped = handler_code(layer[0], HANDLER_DIR)
        scenarios.append(Scenario("handler, as the layer ships", shipped, ["-B"], "app", False))
    for scenario in scenarios:
        if scenario.warm_up:
            trace(scenario.code, scenario.flags)
    log(f"cold start: {count} rounds of {len(scenarios)} fresh processes, interleaved")
    for _ in range(count):  # interleaved, so that a slow spell of the machine hits all alike
        for scenario in scenarios:
            scenario.measure()
    out = section(scenarios, count)
    out.notes.append(layer[1] if layer else "the shared layer is not built: bash infra/build.sh")
    return [out]


def section(scenarios: list[Scenario], count: int) -> Section:
    source, boto3 = scenarios[0], scenarios[1]
    out = Section(
        name="cold_start",
        title="5. Cold start: import time of the ingest handler",
        measured=f"python -X importtime, cumulative time of `import app`, median of {count} "
        "fresh processes, Lambda-like environment (tracing on)",
        baseline="`import boto3` alone, measured the same way",
    )
    table = Table("import time", ["import", "median", "runs", "vs import boto3"])
    for scenario in scenarios:
        table.add(
            scenario.name,
            f"{scenario.median_us / 1000:.0f} ms",
            " ".join(f"{n.cumulative_us / 1000:.0f}" for n in scenario.runs),
            ratio(scenario.median_us, boto3.median_us),
        )
    out.tables.append(table)

    per_run = [heavy_imports(node) for node in source.runs]
    keys = set().union(*per_run)
    medians = {
        key: (
            statistics.median(run[key].cumulative_us if key in run else 0 for run in per_run),
            statistics.median(without_boto3(run[key]) if key in run else 0 for run in per_run),
        )
        for key in keys
    }
    heaviest = sorted(medians.items(), key=lambda kv: -kv[1][1])
    top = Table(
        f"the {TOP} heaviest imports made by our modules (source tree): candidates for lazy "
        "imports, ranked without boto3 (which every handler pays)",
        ["module", "imported by", "cumulative", "without boto3", "% of handler"],
    )
    for (importer, module), (us, own) in heaviest[:TOP]:
        top.add(
            module,
            importer,
            f"{us / 1000:.0f} ms",
            f"{own / 1000:.0f} ms",
            f"{100 * own / source.median_us:.0f}%",
        )
    out.tables.append(top)
    first = find_below(source.runs[0], "boto3")
    where = next(
        (
            f"{importer} -> {module}"
            for (importer, module), node in per_run[0].items()
            if first is not None and find_below(node, "boto3") is first
        ),
        "?",
    )
    boto3_in_handler = statistics.median(
        getattr(find_below(run, "boto3"), "cumulative_us", 0) for run in source.runs
    )
    out.notes.append(
        f"boto3 is first imported via {where}: {boto3_in_handler / 1000:.0f} ms of the "
        f"handler's {source.median_us / 1000:.0f} ms (median)"
    )

    share = source.median_us / boto3.median_us
    floor = scenarios[2]
    why = (
        f"the libraries alone (boto3, pydantic, Powertools' Logger/Metrics/Tracer) take "
        f"{floor.median_us / 1000:.0f} ms = {floor.median_us / boto3.median_us:.2f}x before a "
        f"line of ours; our modules (their pydantic models) add "
        f"{(source.median_us - floor.median_us) / 1000:.0f} ms"
    )
    out.targets.append(
        Target(
            f"handler import <= {TARGET}x `import boto3`",
            f"{share:.2f}x",
            share <= TARGET,
            "" if share <= TARGET else why,
        )
    )
    out.notes.append(
        "cumulative times nest: a module's figure includes what it imported first (boto3 "
        "inside the first module that needs it, for instance)"
    )
    out.data = {
        "scenarios": {
            s.name: {"median_us": s.median_us, "runs_us": [n.cumulative_us for n in s.runs]}
            for s in scenarios
        },
        "heaviest": [
            {"module": m, "imported_by": i, "cumulative_us": us, "without_boto3_us": own}
            for (i, m), (us, own) in heaviest[:30]
        ],
    }
    return out
