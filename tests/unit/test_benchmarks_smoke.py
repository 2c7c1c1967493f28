"""The benchmark harness (benchmarks/) runs end to end at a tiny size, so it cannot rot.

Nothing here asserts a timing: performance is measured by `make bench` only (its numbers
are in benchmarks/RESULTS.md). Counts are checked where they show the harness did its job.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from benchmarks.burst import run_burst, run_burst_real_proportions
from benchmarks.cold_start import run_cold_start
from benchmarks.common import BUILD_DIR, Report
from benchmarks.economy import run_economy
from benchmarks.report import render_document
from benchmarks.token_mint import run_token_mint
from benchmarks.warm import run_warm_overhead


def _cold_start() -> Report:
    if not (BUILD_DIR / "FetchAttributesFunction" / "app.py").exists():
        pytest.skip("no sam build output (.aws-sam/build): `make build` first")
    report = run_cold_start(1, no_pyc_runs=0, warm_up=False)
    assert report["data"]["summary"]["ours"]["runs"] == 1  # every check inside passed too
    return report


def _warm() -> Report:
    report = run_warm_overhead(3)
    assert set(report["data"]["summary"]) == {
        "FetchAttributesFunction",
        "SyncExternalFunction",
        "PatchAttributesFunction",
    }
    return report


def _economy() -> Report:
    report = run_economy(2, seed_size=1)
    assert report["data"]["conversations_done"] == 2
    assert report["data"]["cases"][0]["patched"] == 2
    assert report["data"]["seed"]["verified"] == 1
    modes = report["data"]["fetch_modes"]
    assert modes["read"]["per_conversation"] == 2.0  # a read and a PATCH
    assert modes["context-only"]["per_conversation"] == 1.0  # the PATCH alone
    return report


def _burst() -> Report:
    report = run_burst(6, rate_limit=20, arrival_seconds=0.1, concurrency=2)
    assert report["data"]["patched"] == 6
    assert report["data"]["lost"] == 0
    return report


def _burst_real() -> Report:
    report = run_burst_real_proportions(4, arrival_seconds=0.1, concurrency=2)
    assert [label for label, _ in report["data"]["runs"]][1].startswith("what if")
    assert report["data"]["patched"] == 4
    return report


def _token_mint() -> Report:
    report = run_token_mint(4, trials=1)
    for mode in ("lease", "refresher"):
        (run,) = report["data"]["results"][mode]
        assert run["mints"] == 1 and run["distinct_tokens"] == 1 and not run["errors"]
    return report


@pytest.mark.parametrize(
    "scenario",
    [_cold_start, _warm, _economy, _burst, _burst_real, _token_mint],
    ids=["cold_start", "warm_overhead", "economy", "burst", "burst_real", "token_mint"],
)
def test_scenario_runs_at_a_tiny_size(scenario: Callable[[], Report]) -> None:
    report = scenario()

    assert report["tables"] and all(block["rows"] for block in report["tables"])
    assert report["targets"]
    document = render_document([report], {k: "x" for k in _MACHINE_KEYS}, 1.0)
    assert report["title"] in document


def test_make_bench_runs_the_scenarios_one_after_another_in_one_process() -> None:
    # As `make bench` does: a scenario must not break the next (it once did: the warm
    # scenario left the functions' log handler on a closed stream).
    from benchmarks.__main__ import main

    assert main(["--quick", "warm", "economy"]) == 0


_MACHINE_KEYS = ("uname", "cpu", "cpus", "python", "python_full", "date", "commit")


def test_the_mixed_limits_burst_runs_at_a_tiny_size() -> None:
    from benchmarks.burst import run_burst_mixed_limits

    report = run_burst_mixed_limits(4, arrival_seconds=0.1, concurrency=2)
    labels = [label for label, _ in report["data"]["runs"]]
    assert labels[0].startswith("pacing") and labels[1].startswith("today")
    assert all(data["patched"] == 4 for _, data in report["data"]["runs"])
    # one GET and one PATCH per conversation, half of them calls
    requests = report["data"]["requests_by_route"]
    assert requests["GET /api/v2/conversations/calls/{id}"] == 2
    assert requests["PATCH /api/v2/conversations/calls/{id}/participants/{pid}/attributes"] == 2
    document = render_document([report], {k: "x" for k in _MACHINE_KEYS}, 1.0)
    assert report["title"] in document


def test_the_burst_over_several_oauth_clients_runs_at_a_tiny_size() -> None:
    from benchmarks.burst import run_burst_clients

    report = run_burst_clients(12, one_client_size=4, arrival_seconds=0.1, concurrency=2)

    (three, main), (one, single) = report["data"]["runs"]
    assert (three, one) == ("3 clients", "1 clients")
    assert main["patched"] == 12 and main["lost"] == 0 and single["patched"] == 4
    # Conversations spread over the clients: 12 on one client alone has odds of 3 in 3^12.
    assert len(main["requests_by_client"]) >= 2 and len(single["requests_by_client"]) == 1
    assert report["targets"] and report["title"] in render_document(
        [report], {k: "x" for k in _MACHINE_KEYS}, 1.0
    )
