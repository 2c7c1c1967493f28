"""Scenario "resolve", the data-action path: what ResolveAttributesFunction costs an
Architect flow that calls it, next to what the asynchronous chain costs.

1. Warm own time of the function (like scenario 4): one warm container, events rendered
   from genesys/data-actions/resolve-attributes-lambda.json as Genesys renders them, the
   time inside every `requests.Session.send` (the external stub, the Genesys emulator)
   and every boto3 call (moto) excluded. Two cases: resolve only (the flow passes the
   participant id: no Genesys call), and resolve + write (read, PATCH, PutEvents).
2. Cold import of the handler module on the built function and layer (.aws-sam/build),
   in a `python -I -S` child as scenario 1 measures it (benchmarks/cold_child.py).
3. Side by side, whole wall time measured here: the data action with write, from the
   invocation to its answer (the attributes are written when it returns), and the
   asynchronous chain, from the customer.start event in to the attributes written
   (FetchAttributes -> SyncExternal -> PatchAttributes, routed by template.yaml's rules
   through moto, as localdev's pipeline does). The hops a deployment adds on top are
   written out in docs/architect.md (estimates, not measured here).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BUILD_DIR,
    REPO_ROOT,
    WORK_DIR,
    Report,
    customer_start_event,
    environment,
    median,
    millis,
    new_id,
    percentile,
    quiet,
    seconds,
    table,
    target,
)
from benchmarks.warm import excluding_io  # scenario 4's rule, with CPU time

FUNCTION_ID = "ResolveAttributesFunction"
ACTION = REPO_ROOT / "genesys" / "data-actions" / "resolve-attributes-lambda.json"
WARM_UP = 20
CHAIN_WARM_UP = 3
TARGET_P50 = 0.005
TARGET_P99 = 0.020
TARGET_COLD_IMPORT = 0.3
ANSWER = {"case_status": "open", "case_priority": "normal", "crm_segment": "warm"}
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")


def _new_call(box: Any, index: int) -> tuple[str, str]:
    conversation_id, participant_id = new_id(), new_id()
    box.emulator.create_conversation(
        media_type="VOICE",
        participants=[
            {"purpose": "customer", "id": participant_id, "attributes": {"case_id": f"C-{index}"}},
            {"purpose": "ivr"},
        ],
        conversation_id=conversation_id,
    )
    return conversation_id, participant_id


def _event(inputs: dict[str, Any]) -> Any:
    """The Lambda event Genesys sends for these inputs: the action's rendered request."""
    from localdev.data_actions import load_action, render_request

    return json.loads(render_request(load_action(ACTION), inputs, {}).body)


def _warm_case(box: Any, write: bool, size: int) -> dict[str, Any]:
    from attribute_bridge import wiring

    from localdev.sandbox import LambdaContext

    spec = box.template.functions[FUNCTION_ID]
    events = []
    for index in range(WARM_UP + size):
        conversation_id, participant_id = _new_call(box, index)
        inputs: dict[str, Any] = {"conversationId": conversation_id, "ani": "tel:+13175550123"}
        if write:
            inputs["write"] = True
        else:
            inputs["participantId"] = participant_id
        events.append(_event(inputs))
    with environment(box.environment(FUNCTION_ID)):
        wiring.reset()  # one container: adapters built on the warm-up invocations
        handler = box.handler(FUNCTION_ID)
        own: list[float] = []
        own_cpu: list[float] = []
        totals: list[float] = []
        statuses: Counter[str] = Counter()
        calls: Counter[str] = Counter()
        with excluding_io() as excluded:
            for index, event in enumerate(events):
                context = LambdaContext(FUNCTION_ID, spec.timeout, spec.memory_size)
                excluded.reset()
                started, started_cpu = time.perf_counter(), time.thread_time()
                answer = handler(event, context)
                total = time.perf_counter() - started
                total_cpu = time.thread_time() - started_cpu
                if index < WARM_UP:
                    continue
                statuses[str(answer["status"])] += 1
                totals.append(total)
                own.append(total - excluded.seconds)
                own_cpu.append(total_cpu - excluded.cpu)
                calls.update(excluded.calls)
    return {
        "own": own,
        "own_cpu": own_cpu,
        "total": totals,
        "statuses": dict(statuses),
        "calls": {name: n / max(1, len(own)) for name, n in calls.items()},
    }


def _async_chain(box: Any, size: int) -> dict[str, Any]:
    from localdev.runner import run_chain

    walls: list[float] = []
    written = 0
    for index in range(CHAIN_WARM_UP + size):
        conversation_id, participant_id = _new_call(box, index)
        event = customer_start_event(conversation_id, participant_id, "VOICE")
        started = time.perf_counter()
        run_chain(box, event)
        if index < CHAIN_WARM_UP:  # module loads, clients, SDK models: not the steady state
            continue
        walls.append(time.perf_counter() - started)
        attributes = box.emulator.participant_attributes(conversation_id, participant_id)
        written += all(attributes.get(k) == v for k, v in ANSWER.items())
    return {"wall": walls, "written": written}


# ---------------------------------------------------------------------------- cold import


COMPARED_WITH = "FetchAttributesFunction"  # scenario 1's function, imported in the same runs


def _cold_imports(runs: int) -> dict[str, Any]:
    """`runs` cold imports of the built handler module, interleaved with as many of
    FetchAttributes' (one round first, discarded), by scenario 1's import child."""
    import sysconfig

    from benchmarks.cold_start import import_child
    from localdev.template import load_template

    layer_dir = BUILD_DIR / "SharedLayer" / "python"
    scratch = WORK_DIR / f"resolve-cold-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    runtime, home = scratch / "runtime", scratch / "home"
    runtime.mkdir(parents=True)
    home.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for name in RUNTIME_PROVIDED:
        if (site / name).exists():
            (runtime / name).symlink_to(site / name)
    template = load_template(REPO_ROOT / "template.yaml")
    found: dict[str, dict[str, list[float]]] = {
        f: {"imports": [], "cpu": []} for f in (FUNCTION_ID, COMPARED_WITH)
    }
    try:
        for run in range(runs + 1):
            for function_id in (FUNCTION_ID, COMPARED_WITH):
                function = template.functions[function_id]
                report = import_child(function, layer_dir, runtime, home, scratch)
                if run:
                    found[function_id]["imports"].append(report["import_seconds"])
                    found[function_id]["cpu"].append(report["cpu_seconds"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "imports": found[FUNCTION_ID]["imports"],
        "cpu": found[FUNCTION_ID]["cpu"],
        "compared": found[COMPARED_WITH],
    }


# ---------------------------------------------------------------------------- the scenario


def run_resolve(size: int = 300, chain_size: int = 30, cold_runs: int = 7) -> Report:
    from attribute_bridge import aws as aws_adapters
    from attribute_bridge import wiring

    from localdev.emulator import EmulatorConfig
    from localdev.sandbox import sandbox

    began = time.perf_counter()
    try:
        with (
            quiet(),
            sandbox(
                emulator_config=EmulatorConfig(rate_limit=10**9),
                parameter_overrides={"SyncContextFields": "ani"},
            ) as box,
        ):
            box.external.add_rule(match={}, answer=dict(ANSWER))
            warm = {
                "resolve only": _warm_case(box, write=False, size=size),
                "resolve + write": _warm_case(box, write=True, size=size),
            }
            wiring.reset()
            chain = _async_chain(box, chain_size)
            wiring.reset()
    finally:
        aws_adapters.aws_client.cache_clear()
    cold = _cold_imports(cold_runs) if cold_runs else {"imports": [], "cpu": [], "compared": {}}
    return _report(size, chain_size, warm, chain, cold, time.perf_counter() - began)


def _report(
    size: int,
    chain_size: int,
    warm: dict[str, dict[str, Any]],
    chain: dict[str, Any],
    cold: dict[str, Any],
    elapsed: float,
) -> Report:
    rows, targets, summary = [], [], {}
    for case, data in warm.items():
        own = data["own"]
        p50, p99 = median(own), percentile(own, 99)
        summary[case] = {
            "p50": p50,
            "p99": p99,
            "cpu_p50": median(data["own_cpu"]),
            "cpu_p99": percentile(data["own_cpu"], 99),
            "total_p50": median(data["total"]),
        }
        rows.append(
            [
                case,
                len(own),
                millis(p50),
                millis(percentile(own, 90)),
                millis(p99),
                millis(max(own)),
                millis(median(data["own_cpu"])),
                millis(percentile(data["own_cpu"], 99)),
                millis(median(data["total"])),
                ", ".join(f"{k}: {v}" for k, v in sorted(data["statuses"].items())),
                ", ".join(f"{k} x{v:.2f}" for k, v in sorted(data["calls"].items())),
            ]
        )
        targets.append(target(f"{case}: p50 own time", "<= 5 ms", millis(p50), p50 <= TARGET_P50))
        targets.append(target(f"{case}: p99 own time", "<= 20 ms", millis(p99), p99 <= TARGET_P99))
    imports = cold["imports"]
    if imports:
        cold_median = median(imports)
        summary["cold_import"] = {
            "median": cold_median,
            "max": max(imports),
            "fetch_median": median(cold["compared"]["imports"]),
        }
        targets.append(
            target(
                "cold import of the handler module (built layer)",
                "<= 0.3 s",
                seconds(cold_median),
                cold_median <= TARGET_COLD_IMPORT,
            )
        )
    write_total = warm["resolve + write"]["total"]
    walls = chain["wall"]
    summary["side_by_side"] = {
        "data_action_p50": median(write_total),
        "chain_p50": median(walls),
        "chain_written": chain["written"],
    }
    side = [
        [
            "data action, write=true (invocation -> answer, attributes written)",
            len(write_total),
            millis(median(write_total)),
            millis(percentile(write_total, 90)),
            millis(max(write_total)),
        ],
        [
            "async chain (customer.start in -> attributes written; 3 invocations, 2 bus hops)",
            len(walls),
            millis(median(walls)),
            millis(percentile(walls, 90)),
            millis(max(walls)),
        ],
    ]
    tables = [
        table(
            "Data action: own time per warm invocation",
            [
                "case",
                "n",
                "p50",
                "p90",
                "p99",
                "max",
                "CPU p50",
                "CPU p99",
                "whole (p50)",
                "statuses",
                "excluded calls",
            ],
            rows,
        ),
        table(
            "Side by side, whole wall time measured locally",
            ["path", "n", "p50", "p90", "max"],
            side,
        ),
    ]
    if imports:
        tables.append(
            table(
                "Cold import of the handler module (.aws-sam/build, python -I -S), interleaved",
                ["handler", "runs", "median", "min", "max", "child CPU, whole process (median)"],
                [
                    [
                        name,
                        len(data["imports"]),
                        seconds(median(data["imports"])),
                        seconds(min(data["imports"])),
                        seconds(max(data["imports"])),
                        seconds(median(data["cpu"])),
                    ]
                    for name, data in (
                        ("ResolveAttributes", cold),
                        ("FetchAttributes (scenario 1's, same runs)", cold["compared"]),
                    )
                ],
            )
        )
    notes = [
        "Own time = the handler call's wall time minus every requests `Session.send` (the "
        "external stub, the Genesys emulator) and every whole boto3 call (moto): what is "
        "left is the project's code and the libraries it drives (Powertools Logger and "
        "Metrics, input parsing, payload, answer mapping, the SDK's (de)serialization, the "
        "flat answer, its log line). The external system's delay is excluded by construction. "
        "The targets are on wall time, as scenario 4's; the CPU columns are the same "
        "difference in this thread's CPU time (time.thread_time), which a busy machine "
        "inflates far less.",
        f"Events rendered from resolve-attributes-lambda.json as Genesys renders them; "
        f"{WARM_UP} discarded warm-up invocations per case, then {size}, each a new "
        "conversation. 'resolve only': the flow passes participantId, no Genesys call. "
        "'resolve + write': one conversation read, one PATCH, one PutEvents.",
        f"Side by side: the same local parts; the chain is {chain_size} customer.start events "
        f"(after {CHAIN_WARM_UP} discarded ones: the three functions' first loads) "
        f"through localdev's pipeline ({chain['written']} of them had the answer written "
        "when it returned). Locally each hop is a function call and moto; a deployment adds "
        "EventBridge delivery and Lambda invocations per hop, and the flow's Get Participant "
        "Data loop only sees the values on its next poll: docs/architect.md writes those out.",
        "Cold import: the child process as scenario 1 runs it (benchmarks/cold_child.py, "
        "mode import), on the built function folder and layer, one discarded run first. "
        "The import is wall time inside the child; its CPU time (user + system, interpreter "
        "start included) moves less when the shared 2-core machine is busy.",
    ]
    return {
        "name": "resolve",
        "title": "Data-action path (ResolveAttributes: warm own time, cold import, vs the chain)",
        "command": ".venv/bin/python -m benchmarks resolve",
        "size": size,
        "seconds": elapsed,
        "tables": tables,
        "targets": targets,
        "notes": notes,
        "data": {"summary": summary},
    }
