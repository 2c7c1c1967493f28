"""`python -m benchmarks [SCENARIO ...] [--quick]`: run the scenarios, print the results.

With no scenario named and no --quick, every scenario runs at full size and
benchmarks/RESULTS.md is (re)written; otherwise the results are only printed.
Raw numbers of the last run go to benchmarks/.work/results.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import WORK_DIR, Report, machine, use_layer_source
from benchmarks.report import render_document

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _cold_start(quick: bool) -> Report:
    from benchmarks.cold_start import run_cold_start

    return run_cold_start(1, no_pyc_runs=0) if quick else run_cold_start(7, no_pyc_runs=3)


def _warm(quick: bool) -> Report:
    from benchmarks.warm import run_warm_overhead

    return run_warm_overhead(10 if quick else 500)


def _economy(quick: bool) -> Report:
    from benchmarks.economy import run_economy

    return run_economy(4, seed_size=2) if quick else run_economy(1000, seed_size=100)


def _burst(quick: bool) -> Report:
    from benchmarks.burst import run_burst

    if quick:
        return run_burst(20, rate_limit=20, arrival_seconds=0.2)
    return run_burst(1000, rate_limit=50, window_seconds=1.0, arrival_seconds=2.0)


def _burst_real(quick: bool) -> Report:
    from benchmarks.burst import run_burst_real_proportions

    if quick:
        return run_burst_real_proportions(20, arrival_seconds=0.2)
    return run_burst_real_proportions(1000, arrival_seconds=2.0)


def _burst_mixed(quick: bool) -> Report:
    from benchmarks.burst import run_burst_mixed_limits

    if quick:
        return run_burst_mixed_limits(20, arrival_seconds=0.2)
    return run_burst_mixed_limits(1000, arrival_seconds=2.0)


def _burst_clients(quick: bool) -> Report:
    from benchmarks.burst import run_burst_clients

    if quick:
        return run_burst_clients(30, one_client_size=30, arrival_seconds=0.2)
    return run_burst_clients(3000, one_client_size=500, arrival_seconds=6.0, compress=1.5)


def _token_mint(quick: bool) -> Report:
    from benchmarks.token_mint import run_token_mint

    return run_token_mint(8, trials=1) if quick else run_token_mint(50, trials=5)


def _resolve(quick: bool) -> Report:
    from benchmarks.resolve import run_resolve

    return run_resolve(10, chain_size=3, cold_runs=1) if quick else run_resolve(300, 30, 7)


# Order: the in-process warm measurement runs before the scenarios that fill the process
# with thousands of conversations' worth of objects.
SCENARIOS: dict[str, Callable[[bool], Report]] = {
    "cold-start": _cold_start,
    "warm": _warm,
    "resolve": _resolve,
    "economy": _economy,
    "burst": _burst,
    "burst-real": _burst_real,
    "burst-mixed": _burst_mixed,
    "burst-clients": _burst_clients,
    "token-mint": _token_mint,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    names: list[str] = args.scenarios or list(SCENARIOS)
    write = not args.scenarios and not args.quick
    use_layer_source()
    began = time.perf_counter()
    reports: list[Report] = []
    loads: dict[str, tuple[float, float]] = {}
    for name in names:
        print(f"running {name}...", file=sys.stderr, flush=True)
        started, load_before = time.perf_counter(), os.getloadavg()[0]
        report = SCENARIOS[name](args.quick)
        reports.append(report)
        loads[report["name"]] = (load_before, os.getloadavg()[0])
        print(f"  {name} done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    elapsed = time.perf_counter() - began
    document = render_document(reports, machine(), elapsed, loads)
    print(document)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    (WORK_DIR / "results.json").write_text(
        json.dumps(reports, indent=2, default=str), encoding="utf-8"
    )
    if write:
        RESULTS.write_text(document, encoding="utf-8")
        print(f"wrote {RESULTS}", file=sys.stderr)
    missed = [t["what"] for report in reports for t in report["targets"] if not t["met"]]
    if missed:
        print(f"targets not met: {len(missed)} (see the summary)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
