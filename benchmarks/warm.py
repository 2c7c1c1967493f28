"""Scenario 4, warm overhead: the project's own time per warm invocation of FetchAttributes,
SyncExternal and PatchAttributes, with the time spent waiting on Genesys, the external
system and AWS excluded.

Each function runs like one warm Lambda container: its module loaded once, its environment
from template.yaml (localdev's sandbox: moto in-process, the emulator and the stub over
HTTP on 127.0.0.1), adapters built on the first invocations (discarded as warm-up), then
`size` invocations with a new event each (so Powertools idempotency does its real put +
update every time). Excluded per invocation, measured with wrappers installed only for
the measurement:
- every `requests.Session.send` (the HTTP round trip to the emulator or the stub: urllib3,
  sockets, the server's work; request preparation stays in);
- every boto3 call, whole (`botocore.client.BaseClient._make_api_call`: parameter
  validation, serialization, signing, moto's handling, parsing).
What remains is the project's code and the libraries it drives around those calls:
handler decorators (Powertools Logger, Metrics, Idempotency), parsing and validation,
the use case, the SDK's ApiClient (serialization, deserialization into its models), JSON
log lines (written to /dev/null).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.common import (
    Report,
    app_event,
    customer_start_event,
    environment,
    median,
    millis,
    new_id,
    percentile,
    quiet,
    table,
    target,
)

FUNCTIONS = ("FetchAttributesFunction", "SyncExternalFunction", "PatchAttributesFunction")
WARM_UP = 20
TARGET_P50 = 0.002
TARGET_P99 = 0.010
ANSWER = {"case_status": "open", "case_priority": "normal", "crm_segment": "warm"}


class Excluded:
    """Wall and thread CPU time inside the wrapped calls (outermost only), and how many
    there were. On a busy shared machine the wall clock also counts the time this thread
    waits for a core; the thread's CPU time does not."""

    def __init__(self) -> None:
        self.seconds = self.cpu = 0.0
        self.calls: Counter[str] = Counter()
        self._depth = 0

    def reset(self) -> None:
        self.seconds = self.cpu = 0.0
        self.calls.clear()

    def wrap(self, kind: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            name = kind
            if kind == "aws" and len(args) > 1:
                service = getattr(getattr(args[0], "meta", None), "service_model", None)
                name = f"aws {getattr(service, 'service_name', '?')}.{args[1]}"
            self._depth += 1
            started, started_cpu = time.perf_counter(), time.thread_time()
            try:
                return call(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - started
                    self.cpu += time.thread_time() - started_cpu
                    self.calls[name] += 1

        return timed


@contextmanager
def excluding_io() -> Iterator[Excluded]:
    import requests
    from botocore.client import BaseClient

    excluded = Excluded()
    session: Any = requests.Session
    client: Any = BaseClient  # every boto3 client method goes through _make_api_call
    send, make_api_call = session.send, client._make_api_call
    session.send = excluded.wrap("http", send)
    client._make_api_call = excluded.wrap("aws", make_api_call)
    try:
        yield excluded
    finally:
        session.send = send
        client._make_api_call = make_api_call


def _events(box: Any, function_id: str, count: int) -> list[dict[str, Any]]:
    events = []
    for index in range(count):
        media = "VOICE" if index % 2 == 0 else "MESSAGE"
        cid, pid = new_id(), new_id()
        box.emulator.create_conversation(
            media_type=media,
            message_type="WEBMESSAGING" if media == "MESSAGE" else None,
            participants=[
                {"purpose": "customer", "id": pid, "attributes": {"case_id": f"C-{index}"}},
                {"purpose": "ivr" if media == "VOICE" else "acd"},
            ],
            conversation_id=cid,
        )
        if function_id == "FetchAttributesFunction":
            events.append(customer_start_event(cid, pid, media))
        elif function_id == "SyncExternalFunction":
            events.append(app_event("fetched", cid, pid, media, {"case_id": f"C-{index}"}))
        else:
            events.append(app_event("resolved", cid, pid, media, ANSWER))
    return events


def run_warm_overhead(size: int = 500) -> Report:
    """`size` measured warm invocations per function, after WARM_UP discarded ones."""
    from attribute_bridge import aws as aws_adapters
    from attribute_bridge import wiring

    from localdev.emulator import EmulatorConfig
    from localdev.sandbox import LambdaContext, sandbox

    began = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    try:
        with quiet(), sandbox(emulator_config=EmulatorConfig(rate_limit=10**9)) as box:
            box.external.add_rule(match={}, answer=dict(ANSWER))
            for function_id in FUNCTIONS:
                spec = box.template.functions[function_id]
                with environment(box.environment(function_id)):
                    wiring.reset()  # one container per function: adapters built afresh
                    handler = box.handler(function_id)  # logs follow stdout
                    events = _events(box, function_id, WARM_UP + size)
                    own: list[float] = []
                    totals: list[float] = []
                    excluded_seconds: list[float] = []
                    calls: Counter[str] = Counter()
                    outcomes: Counter[str] = Counter()
                    with excluding_io() as excluded:
                        for index, event in enumerate(events):
                            context = LambdaContext(function_id, spec.timeout, spec.memory_size)
                            excluded.reset()
                            started = time.perf_counter()
                            result = handler(event, context)
                            total = time.perf_counter() - started
                            if index < WARM_UP:
                                continue
                            outcomes[str(result.get("outcome"))] += 1
                            totals.append(total)
                            excluded_seconds.append(excluded.seconds)
                            own.append(total - excluded.seconds)
                            calls.update(excluded.calls)
                    results[function_id] = {
                        "own": own,
                        "total": totals,
                        "excluded": excluded_seconds,
                        "calls": {name: n / max(1, len(own)) for name, n in calls.items()},
                        "outcomes": dict(outcomes),
                    }
            wiring.reset()
    finally:
        aws_adapters.aws_client.cache_clear()
    return _report(size, results, time.perf_counter() - began)


def _report(size: int, results: dict[str, dict[str, Any]], elapsed: float) -> Report:
    rows: list[list[object]] = []
    calls_rows: list[list[object]] = []
    targets = []
    summary: dict[str, dict[str, float]] = {}
    for function_id, data in results.items():
        own = data["own"]
        p50, p99 = median(own), percentile(own, 99)
        summary[function_id] = {"p50": p50, "p99": p99}
        name = function_id.removesuffix("Function")
        rows.append(
            [
                name,
                len(own),
                millis(p50),
                millis(percentile(own, 90)),
                millis(p99),
                millis(max(own)),
                millis(median(data["total"])),
                millis(median(data["excluded"])),
                ", ".join(f"{k}: {v}" for k, v in sorted(data["outcomes"].items())),
            ]
        )
        calls_rows.append(
            [name, ", ".join(f"{k} x{v:.2f}" for k, v in sorted(data["calls"].items()))]
        )
        targets.append(target(f"{name}: p50 own time", "<= 2 ms", millis(p50), p50 <= TARGET_P50))
        targets.append(target(f"{name}: p99 own time", "<= 10 ms", millis(p99), p99 <= TARGET_P99))
    notes = [
        "Own time = the handler call's wall time minus the time inside every "
        "`requests.Session.send` (HTTP to the Genesys emulator and the external stub) and "
        "every whole boto3 call (`BaseClient._make_api_call`: DynamoDB for idempotency, "
        "EventBridge PutEvents, SSM when the token cache expires; moto in-process answers "
        "them). Everything else counts as the project's: Powertools decorators (Logger, "
        "Metrics with its EMF flush, Idempotency's hashing and record handling), event "
        "parsing and validation, the use case, the Genesys SDK ApiClient's serialization and "
        "its deserialization into CallConversation / MessageConversation, the JSON log lines.",
        f"Per function: one module load and {WARM_UP} discarded warm-up invocations (adapters "
        f"and clients built, SDK models loaded), then {size} invocations, each with a new "
        "conversation and a new event (no idempotency hit). The emulator, the stub and moto run "
        "in this process, so their threads can take the GIL briefly outside the excluded "
        "windows: a small upward bias on a 2-core machine.",
    ]
    return {
        "name": "warm_overhead",
        "title": "Warm overhead (own code per event; Genesys, external and AWS time excluded)",
        "command": ".venv/bin/python -m benchmarks warm",
        "size": size,
        "seconds": elapsed,
        "tables": [
            table(
                "Own time per warm invocation",
                [
                    "function",
                    "n",
                    "p50",
                    "p90",
                    "p99",
                    "max",
                    "whole invocation (p50)",
                    "excluded (p50)",
                    "outcomes",
                ],
                rows,
            ),
            table("Excluded calls per invocation (mean)", ["function", "calls"], calls_rows),
        ],
        "targets": targets,
        "notes": notes,
        "data": {"summary": summary},
    }
