"""The package's two rooms: what runs in Lambda never imports operator tooling (`ops`), which
the layer leaves out (infra/build.sh), and only adapters call AWS."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers/shared/media_ingest"
RUNTIME = [p for p in PACKAGE.rglob("*.py") if "ops" not in p.relative_to(PACKAGE).parts]
FUNCTIONS = list((ROOT / "functions").rglob("*.py"))


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_runtime_and_handlers_never_import_operator_tooling() -> None:
    assert RUNTIME and FUNCTIONS
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported(path) if m.startswith("media_ingest.ops")
        )
        for path in RUNTIME + FUNCTIONS
    }
    assert {p: m for p, m in offenders.items() if m} == {}


def test_only_adapters_create_aws_clients() -> None:
    callers = {
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if "adapters" not in path.relative_to(PACKAGE).parts
        and any(m == "boto3" or m.startswith("boto3.") for m in imported(path))
    }
    assert callers == set()
