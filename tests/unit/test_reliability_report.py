"""scripts/reliability_report.py: the document is rendered from the tests' tallies only,
and docs/RELIABILITY.md is current: every fault-matrix test that keeps a Ledger has its
row, and every row names a test that exists."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
FAULT_MATRIX = REPO_ROOT / "tests" / "integration" / "test_fault_matrix.py"


def load_script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "reliability_report", REPO_ROOT / "scripts" / "reliability_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


report = load_script()


def scenario(test: str, **overrides: Any) -> dict[str, Any]:
    base = {
        "test": f"tests/integration/test_fault_matrix.py::{test}",
        "fault": "a fault | with a pipe",
        "how": "made so",
        "events": 1,
        "redelivered": 0,
        "first_delivery": {"dead_lettered": 1},
        "after_replay": {"patched": 1},
        "final": {"patched": 1},
        "lost": 0,
        "writes": 1,
        "written_twice": 0,
    }
    return {**base, **overrides}


def test_the_document_is_the_tallies_and_keeps_the_hand_written_part() -> None:
    scenarios = [
        scenario("test_a[x y]"),
        scenario("test_b", events=2, redelivered=1, lost=1, written_twice=2, writes=4),
    ]
    text = report.render(scenarios, ["bad one", "bad two"], "## Kept\n\nas written\n")
    assert "| fault scenarios survived | **2** |" in text
    assert "| input events delivered under faults | **3** (and 1 redeliveries" in text
    assert "| **events lost** | **1** |" in text and "| **written twice** | **2** |" in text
    assert "| bad inputs tried | **2**," in text
    assert "| a fault \\| with a pipe | made so | 1 | 1 dead lettered | 1 patched | 0 | 0 |" in text
    assert "`test_a[x y]`" in text and "| 2 (+1) |" in text
    assert text.endswith(report.GENERATED_END + "\n## Kept\n\nas written\n")
    assert report.kept_part(text) == "## Kept\n\nas written\n"


def ledger_tests() -> set[str]:
    """Fault-matrix test functions that open a Ledger (each adds a row to the report)."""
    tree = ast.parse(FAULT_MATRIX.read_text(encoding="utf-8"))
    found = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
            if any(isinstance(c.func, ast.Name) and c.func.id == "Ledger" for c in calls):
                found.add(node.name)
    return found


def test_reliability_md_has_a_row_for_every_fault_test_and_only_for_those() -> None:
    document = (REPO_ROOT / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
    generated = document.partition(report.GENERATED_END)[0]
    named = {m.group(1) for m in re.finditer(r"\| `(test_\w+)(?:\[[^`]*\])?` \|", generated)}
    defined = ledger_tests()
    assert named - defined == set(), "rows for tests that do not exist (or keep no Ledger)"
    assert defined - named == set(), "tests without a row: run `make reliability`"
    assert "| **events lost** | **0** |" in generated
    assert "| **written twice** | **0** |" in generated
