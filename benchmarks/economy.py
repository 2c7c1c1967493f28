"""Scenario 2, Genesys economy: Genesys API requests per conversation synced end to end.

The real chain (`localdev.runner.run_chain` in a `localdev.sandbox.sandbox()`: every
function's real handler, routed by template.yaml's rules, moto for AWS, the emulator and
the external stub over HTTP), counted with the emulator's per-route request counters:
- customer.start where the external system changes something: 1 read + 1 PATCH;
- customer.start where nothing changes: 1 read, no PATCH;
- an `attributes` event (it carries the attributes) of a participant the chain saw at its
  customer.start, as it happens in a call: no read;
- the `attributes` event Genesys sends back after our own PATCH: nothing at all;
- `size` voice + web-messaging conversations in one sandbox: exactly 1 token request;
- side by side, `mode_size` conversations in each fetch mode (README "Context-only mode"):
  Genesys requests per conversation with the read (2.0) and context-only (1.0).
Compared with the seeds' workflow (benchmarks/seed_workflow.py) on the same emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

from benchmarks.common import (
    PYTHON,
    REPO_ROOT,
    WORK_DIR,
    Deadline,
    Report,
    attributes_event,
    counter_delta,
    customer_start_event,
    genesys_calls,
    median,
    millis,
    new_id,
    percentile,
    quiet,
    ratio,
    table,
    target,
)

SEED_TIMEOUT = 300.0
ANSWER = {"case_status": "open", "case_priority": "normal", "crm_segment": "gold"}


# The two fetch modes compared: the same deployment (no input attributes, the caller's
# number as context) with the read forced, and with FetchMode auto, which makes it
# context-only.
CONTEXT = "ani,addressFrom"  # the caller's number, the messaging address
NO_INPUTS = {"SyncAllowedAttributes": "", "SyncContextFields": CONTEXT}
FETCH_MODES: dict[str, dict[str, str]] = {
    "read": {"FetchMode": "read", **NO_INPUTS},
    "context-only": {"FetchMode": "auto", **NO_INPUTS},
}
MODE_TARGETS = {"read": 2.0, "context-only": 1.0}


def run_economy(
    size: int = 1000,
    seed_size: int | None = None,
    time_limit: float = 150.0,
    mode_size: int | None = None,
) -> Report:
    """`size` conversations through the chain (stopping early, and saying so, if the run
    passes `time_limit` seconds: `make bench` must stay under 10 minutes on a busy 2-core
    machine), the single cases, then `seed_size` seed-style syncs, then `mode_size`
    conversations in each fetch mode."""
    from attribute_bridge import aws as aws_adapters

    from localdev.emulator import EmulatorConfig
    from localdev.runner import PipelineRun, run_chain
    from localdev.sandbox import Sandbox, sandbox

    began = time.perf_counter()
    seed_size = min(size, 100) if seed_size is None else seed_size
    mode_size = min(size, 100) if mode_size is None else mode_size
    # No rate limit here (scenario 3 is about that): only requests are counted.
    config = EmulatorConfig(rate_limit=10**9)

    def measured(box: Sandbox, event: dict[str, Any]) -> tuple[dict[str, int], PipelineRun]:
        before = box.emulator.counters()["requests"]
        run = run_chain(box, event)
        return counter_delta(before, box.emulator.counters()["requests"]), run

    def outcomes(run: PipelineRun) -> str:
        return ", ".join(
            f"{step.function.removesuffix('Function')}: {step.outcome}" for step in run.steps
        )

    cases: list[dict[str, Any]] = []
    chain_seconds: list[float] = []
    try:
        with quiet(), sandbox(emulator_config=config) as box:
            # 1. The long run: customer.start for `size` new conversations, VOICE and MESSAGE.
            deadline = Deadline(time_limit)
            total: dict[str, int] = {}
            patched = 0
            last_outcomes = ""
            for index in range(size):
                if deadline.passed():
                    break
                media = "VOICE" if index % 2 == 0 else "MESSAGE"
                event = customer_start_event(new_id(), new_id(), media)
                started = time.perf_counter()
                delta, run = measured(box, event)
                chain_seconds.append(time.perf_counter() - started)
                patched += run.steps[-1].outcome == "patched"
                last_outcomes = outcomes(run)
                for route, count in delta.items():
                    total[route] = total.get(route, 0) + count
            done = len(chain_seconds)
            if patched != done:  # never report request counts of a broken chain
                raise RuntimeError(
                    f"economy: only {patched} of {done} conversations ended patched; "
                    f"last chain: {last_outcomes}"
                )
            cases.append(
                {
                    "case": f"customer.start, the external system changes attributes "
                    f"({done} conversations, voice + messaging, one sandbox)",
                    "conversations": done,
                    "calls": genesys_calls(total),
                    "steps": last_outcomes,
                    "patched": patched,
                }
            )
            # 2. Nothing changes: the customer already has what the external system answers.
            cid, pid = new_id(), new_id()
            box.emulator.create_conversation(
                media_type="VOICE",
                participants=[
                    {"purpose": "customer", "id": pid, "attributes": {"case_id": "C-1", **ANSWER}},
                    {"purpose": "ivr"},
                ],
                conversation_id=cid,
            )
            box.external.add_rule(match={"conversationId": cid}, answer=dict(ANSWER))
            delta, run = measured(box, customer_start_event(cid, pid, "VOICE"))
            cases.append(
                {
                    "case": "customer.start, nothing changes",
                    "conversations": 1,
                    "calls": genesys_calls(delta),
                    "steps": outcomes(run),
                }
            )
            # 3. The `attributes` topic carries the attributes: no read. As in a call: the
            # chain meets the customer at customer.start (no input yet: the external system
            # has nothing to answer), then the IVR flow sets case_id and Genesys reports it.
            cid, pid = new_id(), new_id()
            box.emulator.create_conversation(
                media_type="VOICE",
                participants=[
                    {"purpose": "customer", "id": pid, "attributes": {"ivr_language": "en-US"}},
                    {"purpose": "ivr"},
                ],
                conversation_id=cid,
            )
            box.external.add_rule(
                match={"conversationId": cid, "attributes.case_id": "CASE-1001"},
                answer=dict(ANSWER),
            )
            first = outcomes(run_chain(box, customer_start_event(cid, pid, "VOICE")))
            if not first.endswith("SyncExternal: no_change"):
                raise RuntimeError(f"economy: the customer.start before case 3 did {first}")
            _flow_sets(box, cid, pid, {"case_id": "CASE-1001"})
            carried = box.emulator.participant_attributes(cid, pid)
            delta, run = measured(box, attributes_event(cid, pid, carried))
            cases.append(
                {
                    "case": "`attributes` event after the IVR set an input (the participant was "
                    "seen at customer.start), something changes",
                    "conversations": 1,
                    "calls": genesys_calls(delta),
                    "steps": outcomes(run),
                }
            )
            # 4. Genesys echoes our PATCH as another `attributes` event: the chain stops.
            echoed = box.emulator.participant_attributes(cid, pid)
            delta, run = measured(box, attributes_event(cid, pid, echoed))
            cases.append(
                {
                    "case": "`attributes` event echoing our own PATCH",
                    "conversations": 1,
                    "calls": genesys_calls(delta),
                    "steps": outcomes(run),
                }
            )
            whole_run = box.emulator.counters()
            # 5. The seeds' workflow on the same emulator, in its own process.
            seed = _seed_workflow(box, seed_size)
        # 6. The fetch modes side by side, each in its own sandbox (its own template
        # parameters), the same conversations.
        modes = {mode: _fetch_mode_run(mode, mode_size) for mode in FETCH_MODES}
    finally:
        aws_adapters.aws_client.cache_clear()
    return _report(size, cases, chain_seconds, whole_run, seed, time.perf_counter() - began, modes)


def _flow_sets(box: Any, conversation_id: str, participant_id: str, attributes: Any) -> None:
    """Someone else's write (an Architect flow's Set Participant Data), through Genesys's
    API. It uses the token already in SSM: a flow's write costs this stack no token."""
    import boto3
    import requests

    name = box.environment("FetchAttributesFunction")["GENESYS_TOKEN_PARAMETER"]
    stored = boto3.client("ssm", region_name="us-east-1").get_parameter(
        Name=name, WithDecryption=True
    )
    token = json.loads(stored["Parameter"]["Value"])["access_token"]
    route = f"conversations/{conversation_id}/participants/{participant_id}/attributes"
    requests.patch(
        f"{box.emulator.base_url}/api/v2/{route}",
        json={"attributes": dict(attributes)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).raise_for_status()
    box.emulator.take_patched()  # not this stack's write: no echo of it


def _fetch_mode_run(mode: str, count: int, time_limit: float = 60.0) -> dict[str, Any]:
    """`count` customer.start events (voice and web messaging) through the chain with the
    template parameters of `mode` (fewer if `time_limit` seconds pass: the report says how
    many): the Genesys requests the emulator counted."""
    from localdev.emulator import EmulatorConfig
    from localdev.runner import run_chain
    from localdev.sandbox import sandbox

    with (
        quiet(),
        sandbox(
            emulator_config=EmulatorConfig(rate_limit=10**9),
            parameter_overrides=FETCH_MODES[mode],
        ) as box,
    ):
        patched = without_context = done = 0
        deadline = Deadline(time_limit)
        for index in range(count):
            if deadline.passed():
                break
            done += 1
            media = "VOICE" if index % 2 == 0 else "MESSAGE"
            run = run_chain(box, customer_start_event(new_id(), new_id(), media))
            patched += bool(run.steps) and run.steps[-1].outcome == "patched"
            without_context += not box.external.received[-1].get("context")
        requests = dict(box.emulator.counters()["requests"])
    if patched != done or without_context:
        raise RuntimeError(
            f"economy, {mode}: {patched} of {done} conversations patched, "
            f"{without_context} synced without their call context"
        )
    return {
        "conversations": done,
        "asked": count,
        "calls": genesys_calls(requests),
        "patched": patched,
    }


def _seed_workflow(box: Any, count: int) -> dict[str, Any]:
    conversations = []
    for index in range(count):
        media = "VOICE" if index % 2 == 0 else "MESSAGE"
        cid = new_id()
        box.emulator.create_conversation(
            media_type=media,
            message_type="WEBMESSAGING" if media == "MESSAGE" else None,
            participants=[
                {"purpose": "customer", "attributes": {"case_id": f"C-{index}"}},
                {"purpose": "ivr" if media == "VOICE" else "acd"},
            ],
            conversation_id=cid,
        )
        box.external.add_rule(match={"conversationId": cid}, answer=dict(ANSWER))
        conversations.append({"id": cid, "media": media})
    config = {
        "api_url": box.emulator.base_url,
        "client_id": box.emulator.config.client_id,
        "client_secret": box.emulator.config.client_secret,
        "sync_url": box.external.sync_url,
        "conversations": conversations,
    }
    home = WORK_DIR / "home"
    home.mkdir(parents=True, exist_ok=True)  # the eager SDK's watchdog watches ~
    before = box.emulator.counters()["requests"]
    completed = subprocess.run(
        [PYTHON, "-m", "benchmarks.seed_workflow", json.dumps(config)],
        cwd=str(REPO_ROOT),
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=SEED_TIMEOUT,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"seed workflow failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["calls"] = genesys_calls(counter_delta(before, box.emulator.counters()["requests"]))
    result["conversations"] = count
    return result


def _per(value: int, conversations: int) -> str:
    return f"{value / conversations:.3f}" if conversations else "-"


def _report(
    size: int,
    cases: list[dict[str, Any]],
    chain_seconds: list[float],
    whole_run: dict[str, Any],
    seed: dict[str, Any],
    elapsed: float,
    modes: dict[str, dict[str, Any]],
) -> Report:
    rows: list[list[object]] = []
    for case in cases:
        calls, n = case["calls"], case["conversations"]
        rows.append(
            [
                case["case"],
                n,
                calls["token"],
                _per(calls["read"], n),
                _per(calls["patch"], n),
                _per(calls["total"], n),
                case["steps"],
            ]
        )
    seed_calls, seed_n = seed["calls"], seed["conversations"]
    rows.append(
        [
            "seeds' workflow: new token, read, external POST, PATCH, verify read",
            seed_n,
            seed_calls["token"],
            _per(seed_calls["read"], seed_n),
            _per(seed_calls["patch"], seed_n),
            _per(seed_calls["total"], seed_n),
            f"verified {seed['verified']}/{seed_n}",
        ]
    )
    long_run = cases[0]
    done, calls = long_run["conversations"], long_run["calls"]
    ours_per = calls["total"] / done if done else float("nan")
    seed_per = seed_calls["total"] / seed_n if seed_n else float("nan")
    comparison = [
        ["ours (customer.start, something changes)", f"{ours_per:.3f}"],
        ["seeds' workflow", f"{seed_per:.3f}"],
        ["seeds' / ours", ratio(seed_per / ours_per)],
    ]
    timing = [
        [
            "ours: whole chain (3 handlers, moto in-process, routing by the template)",
            done,
            millis(median(chain_seconds)),
            millis(percentile(chain_seconds, 90)),
            millis(max(chain_seconds)) if chain_seconds else "-",
        ],
        [
            "seeds' workflow: one sync (after a one-off SDK import of "
            f"{seed['import_seconds']:.2f} s)",
            seed_n,
            millis(median(seed["durations"])),
            millis(percentile(seed["durations"], 90)),
            millis(max(seed["durations"])) if seed["durations"] else "-",
        ],
    ]
    no_change, carried, echo = cases[1]["calls"], cases[2]["calls"], cases[3]["calls"]
    whole_tokens = whole_run["requests"].get("POST /oauth/token", 0)
    targets = [
        target(
            "something changes: reads, PATCHes per conversation",
            "<= 1 and <= 1",
            f"{_per(calls['read'], done)} and {_per(calls['patch'], done)}",
            done > 0 and calls["read"] <= done and calls["patch"] <= done,
        ),
        target(
            "nothing changes: reads, PATCHes",
            "1 and 0",
            f"{no_change['read']} and {no_change['patch']}",
            no_change["read"] == 1 and no_change["patch"] == 0,
        ),
        target(
            "`attributes` event: reads",
            "0",
            str(carried["read"] + echo["read"]),
            carried["read"] + echo["read"] == 0,
        ),
        target(
            f"token requests, {done} conversations (whole sandbox run: {whole_tokens})",
            "exactly 1",
            str(calls["token"]),
            calls["token"] == 1 and whole_tokens == 1,
        ),
    ]
    mode_rows: list[list[object]] = []
    for mode, result in modes.items():
        mode_calls, n = result["calls"], result["conversations"]
        per = (mode_calls["read"] + mode_calls["patch"]) / n if n else float("nan")
        result["per_conversation"] = per
        mode_rows.append(
            [
                mode,
                n,
                _per(mode_calls["read"], n),
                _per(mode_calls["patch"], n),
                f"{per:.3f}",
                mode_calls["token"],
            ]
        )
        stopped = "" if n == result["asked"] else f" of {result['asked']}: time limit"
        targets.append(
            target(
                f"Genesys requests per conversation, FetchMode {mode} ({n} conversations{stopped})",
                f"{MODE_TARGETS[mode]:.1f}",
                f"{per:.3f}",
                n > 0 and per == MODE_TARGETS[mode],
            )
        )
    if done < size:
        targets.append(
            target(
                "conversations run in the time limit",
                str(size),
                str(done),
                False,
            )
        )
    notes = [
        "Fetch modes: the same deployment (SyncAllowedAttributes empty, SyncContextFields="
        "ani,addressFrom) in two sandboxes, FetchMode read and FetchMode auto (which is "
        "context-only for it), each with new voice and web-messaging conversations whose "
        "customer.start the external system answers with attributes to write; every one "
        "must end patched, with the caller's number (or the messaging address) sent. "
        "Requests per conversation are the reads and PATCHes the emulator counted over the "
        "run, divided by the conversations; the one token request of each run is apart.",
        "Counted by the emulator (every request it receives, per route). A 'read' is a GET "
        "of the conversation, a 'PATCH' a participant-attributes PATCH, 'token' a POST "
        "/oauth/token. The emulator's rate limit is lifted here (scenario 3 covers it).",
        "Ours: the real handlers through `localdev.runner.run_chain` in one `sandbox()`: the "
        "first invocation finds no token in SSM and mints one under the lease; every later "
        "invocation reads it from SSM (the sandbox rebuilds the adapters per invocation, so "
        "this is the worst case for SSM reads, never for token requests).",
        "Seeds' workflow: benchmarks/seed_workflow.py in its own process with the real SDK, "
        "eager import, a new ApiClient + get_client_credentials_token per sync, "
        "ConversationsApi.get_conversations_call / get_conversations_message, POST to the "
        "external stub, patch_conversations_call_participant_attributes / "
        "patch_conversations_message_participant_attributes, then the verify read.",
        "Times are local figures, not Lambda latencies, and the two rows are not comparable: "
        "a chain is three handler invocations, each with Powertools idempotency (two DynamoDB "
        "calls) and a PutEvents against in-process moto, adapters rebuilt and the token read "
        "from SSM on every invocation (sandbox.invoke resets them), the emitted event routed "
        "by the template's patterns and read back from an SQS capture queue; the seeds' "
        "workflow touches no AWS at all. Most of a chain's time is that local machinery "
        "(moto in-process; localdev's Sandbox also builds a new boto3 SQS client each time it "
        "drains the capture queue, several per chain). Scenario 4 has the per-invocation "
        "cost of warm handlers with the I/O separated out.",
    ]
    return {
        "name": "economy",
        "title": "Genesys economy (requests per conversation, end to end)",
        "command": ".venv/bin/python -m benchmarks economy",
        "size": size,
        "seconds": elapsed,
        "tables": [
            table(
                "Genesys requests by case",
                [
                    "case",
                    "conversations",
                    "token requests (total)",
                    "reads / conversation",
                    "PATCHes / conversation",
                    "all requests / conversation",
                    "steps",
                ],
                rows,
            ),
            table("Requests per synced conversation", ["workflow", "requests"], comparison),
            table(
                "Genesys requests per conversation by fetch mode (no input attributes, "
                "SyncContextFields=ani,addressFrom; the one token request apart)",
                [
                    "FetchMode",
                    "conversations",
                    "reads / conversation",
                    "PATCHes / conversation",
                    "requests / conversation",
                    "token requests (total)",
                ],
                mode_rows,
            ),
            table("Time per conversation", ["what", "n", "median", "p90", "max"], timing),
        ],
        "targets": targets,
        "notes": notes,
        "data": {
            "cases": cases,
            "seed": {k: v for k, v in seed.items() if k != "durations"},
            "conversations_done": done,
            "whole_run_requests": whole_run["requests"],
            "chain_median_seconds": median(chain_seconds),
            "fetch_modes": modes,
        },
    }
