"""The data-action benchmark (benchmarks/resolve.py) runs end to end at a tiny size, so it
cannot rot. No timing is asserted here: `python -m benchmarks resolve` measures."""

from __future__ import annotations

import pytest

from benchmarks.common import BUILD_DIR
from benchmarks.report import render_document
from benchmarks.resolve import run_resolve


def test_the_resolve_scenario_runs_at_a_tiny_size() -> None:
    built = (BUILD_DIR / "ResolveAttributesFunction" / "app.py").exists()
    report = run_resolve(3, chain_size=1, cold_runs=1 if built else 0)

    summary = report["data"]["summary"]
    assert summary["side_by_side"]["chain_written"] == 1  # the chain really wrote
    assert {"resolve only", "resolve + write"} <= set(summary)
    assert ("cold_import" in summary) is built
    rows = report["tables"][0]["rows"]
    assert [row[9] for row in rows] == ["resolved: 3", "written: 3"]
    document = render_document([report], dict.fromkeys(_MACHINE_KEYS, "x"), 1.0)
    assert report["title"] in document


_MACHINE_KEYS = ("uname", "cpu", "cpus", "python", "python_full", "date", "commit")


@pytest.fixture(autouse=True)
def _layer_on_path() -> None:
    from benchmarks.common import use_layer_source

    use_layer_source()
