"""Nothing is lost under faults.

Every test runs the real chain (the handlers from template.yaml, the Genesys emulator over
HTTP with the real SDK ApiClient, moto for SSM, EventBridge, SQS and DynamoDB), delivered
the way Lambda delivers asynchronous events (`localdev.runner`: 2 retries, then the
function's dead-letter queue), with one fault switched on. For every input event it asserts
that the event ends in exactly one recorded outcome:

- patched (the attributes are in the emulator), no change needed,
- dropped / not found, with the reason in the log,
- or in a dead-letter queue, with the error;

and that replaying the dead-letter queue once the fault has cleared finishes the work
(with scripts/replay_dead_letters.py's own `replay`, as an operator would). When a Ledger
closes it also asserts that nothing was written twice: Genesys applied exactly one PATCH
per input event that ended `patched` (the emulator's `attribute_writes` counter).

Sections: Genesys, AWS, external system, delivery, then "exactly once, in order" (issue
11: idempotency keys, event time, best-effort side effects, configuration errors). Stale
writes and loops belong to that last section too: a test there opens `Ledger(box, fault,
how)` and delivers through it; the ledger's checks and the report come with it.

`RELIABILITY_SUMMARY=DIR` writes the tally to DIR; `scripts/reliability_report.py` runs
this file and test_bad_input.py that way and regenerates docs/RELIABILITY.md from it.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import logging
import math
import os
import re
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from attribute_bridge import aws as aws_adapters
from attribute_bridge import wiring
from attribute_bridge.dead_letters import original_event
from attribute_bridge.events import correlation_id_of
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError

from localdev.emulator import EmulatorConfig
from localdev.runner import PipelineRun, invoke_async
from localdev.sandbox import LambdaContext, Sandbox, sandbox

EVENTS = Path(__file__).resolve().parents[2] / "events"
FETCH, SYNC, PATCH = "FetchAttributesFunction", "SyncExternalFunction", "PatchAttributesFunction"
CHAIN = (FETCH, SYNC, PATCH)
CALL_GET = "GET /api/v2/conversations/calls/{id}"
CALL_PATCH = "PATCH /api/v2/conversations/calls/{id}/participants/{pid}/attributes"
MESSAGE_PATCH = "PATCH /api/v2/conversations/messages/{id}/participants/{pid}/attributes"
TOKEN = "POST /oauth/token"
PATCH_PATH = r"/participants/[^/]+/attributes$"
GET_PATH = r"^/api/v2/conversations/(calls|messages)/[^/]+$"
# One event's work: 3 Lambda attempts (first try + 2 retries) of 1 + 3 Genesys retries.
REQUESTS_PER_EVENT_DELIVERY = 3 * 4

PASSING = frozenset({"fetched", "synced"})  # a step that hands the event on
# finished, recorded (refused / stale: the write rules said no, per key, with the reason)
DONE = frozenset({"patched", "no_change", "dropped", "not_found", "refused", "stale"})
DEAD_LETTERED = frozenset({"dead_lettered", "rejected", "failed"})  # in a DLQ with the error

SUMMARY: list[dict[str, Any]] = []
REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_replay_script() -> Any:
    """scripts/replay_dead_letters.py, the operator's tool, loaded as a module."""
    path = REPO_ROOT / "scripts" / "replay_dead_letters.py"
    spec = importlib.util.spec_from_file_location("replay_dead_letters", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


replay_script = _load_replay_script()


# ---------------------------------------------------------------------------- the stack


# The whole stack, as the `box` fixture builds it (for tests that configure it).
stack = sandbox


@dataclass
class Live:
    """A live conversation in the emulator, and what the external system answers for it."""

    conversation_id: str
    participant_id: str
    media: str
    before: dict[str, str]
    answer: dict[str, str]

    @property
    def expected(self) -> dict[str, str]:
        return {**self.before, **self.answer}

    def attributes(self, box: Sandbox) -> dict[str, str]:
        return box.emulator.participant_attributes(self.conversation_id, self.participant_id)

    def event(self, kind: str = "customer.start", **body: Any) -> dict[str, Any]:
        """A Genesys event for this conversation, from the sample in events/, sent now."""
        sample = {
            ("customer.start", "VOICE"): "genesys-voice-customer-start.json",
            ("customer.start", "MESSAGE"): "genesys-message-customer-start.json",
        }.get((kind, self.media), "genesys-voice-attributes-update.json")
        event = json.loads((EVENTS / sample).read_text(encoding="utf-8"))
        event["id"] = str(uuid.uuid4())
        detail = event["detail"]
        detail["topicName"] = f"v2.detail.events.conversation.{self.conversation_id}.{kind}"
        detail["metadata"]["CorrelationId"] = str(uuid.uuid4())
        detail["eventBody"].update(
            conversationId=self.conversation_id,
            participantId=self.participant_id,
            eventTime=int(time.time() * 1000),
        )
        if kind == "attributes":
            detail["eventBody"]["attributes"] = dict(self.before)
            detail["eventBody"]["communications"][0]["mediaType"] = self.media
        detail["eventBody"].update(body)
        return event

    def update_requested(self, attributes: dict[str, str]) -> dict[str, Any]:
        """ParticipantAttributesUpdateRequested: a write asked for on the app's bus."""
        event = json.loads((EVENTS / "app-update-requested.json").read_text(encoding="utf-8"))
        event["id"] = str(uuid.uuid4())
        event["detail"].update(
            conversationId=self.conversation_id,
            participantId=self.participant_id,
            mediaType=self.media,
            attributes=attributes,
            basedOn=dict.fromkeys(attributes),  # a write over absent keys...
            readAtMs=int(time.time() * 1000),  # ... asked for now
            correlationId=str(uuid.uuid4()),
            sourceEventId=event["id"],
        )
        return event


def seed(box: Sandbox, media: str = "VOICE", number: int = 1) -> Live:
    before = {"case_id": f"CASE-{9000 + number}", "ivr_language": "en-US"}
    conversation = box.emulator.create_conversation(
        media_type=media,
        message_type="WEBMESSAGING" if media == "MESSAGE" else None,
        participants=[
            {"purpose": "customer", "attributes": before},
            {"purpose": "ivr" if media == "VOICE" else "acd"},
        ],
    )
    customer = next(p for p in conversation["participants"] if p["purpose"] == "customer")
    answer = {"case_status": "open", "crm_ref": f"REF-{conversation['id'][:8]}"}
    box.external.add_rule(match={"conversationId": conversation["id"]}, answer=answer)
    return Live(conversation["id"], customer["id"], media, before, answer)


def requests_to(box: Sandbox, route: str) -> int:
    return int(box.emulator.counters()["requests"].get(route, 0))


# ---------------------------------------------------------------------------- the ledger


def terminal(run: PipelineRun) -> str:
    """The one outcome an event's chain ended in. Every step before the last handed the
    event on; the last one finished it or dead-lettered it."""
    outcomes = [step.outcome for step in run.steps]
    assert outcomes, "no function received the event"
    *handed_on, last = outcomes
    assert all(outcome in PASSING for outcome in handed_on), outcomes
    assert last in DONE | DEAD_LETTERED, f"the chain stopped without an outcome: {outcomes}"
    return last


@dataclass
class Ledger:
    """What became of every input event, keyed by its correlation id (or `input_id`)."""

    box: Sandbox
    fault: str
    how: str = ""  # how the fault is made, for docs/RELIABILITY.md
    outcomes: dict[str, str] = field(default_factory=dict)
    first: Counter[str] = field(default_factory=Counter)
    replayed: Counter[str] = field(default_factory=Counter)
    in_queue: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    redelivered: int = 0
    replay_report: list[dict[str, Any]] = field(default_factory=list)  # the script's lines
    replayed_events: list[dict[str, Any]] = field(default_factory=list)  # as it delivered them
    writes_before: int = 0
    test: str = ""

    def __post_init__(self) -> None:
        self.writes_before = applied_writes(self.box)
        # "path::test[id] (call)": the node id, whose parameter ids may hold spaces
        self.test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]

    def run(
        self, event: dict[str, Any], input_id: str | None = None, **after: Callable[[], Any]
    ) -> PipelineRun:
        """Deliver one input event through the chain; `after[function]()` runs once that
        function's step is done (to change the world mid-chain). `input_id` names an input
        whose correlation id another input shares (a client reusing its request)."""
        correlation = input_id or correlation_id_of(event)
        assert correlation and correlation not in self.outcomes, "one id per input event"
        run = run_chain_with(self.box, event, after)
        outcome = terminal(run)
        self.outcomes[correlation] = outcome
        self.first[outcome] += 1
        return run

    def deliver(self, *events: dict[str, Any]) -> list[str]:
        return [terminal(self.run(event)) for event in events]

    def note(self, event: dict[str, Any], outcome: str) -> str:
        """An input event handled outside the chain runner (a warm container's invoke)."""
        correlation = correlation_id_of(event)
        assert correlation and correlation not in self.outcomes, "one id per input event"
        assert outcome in DONE | DEAD_LETTERED, outcome
        self.outcomes[correlation] = outcome
        self.first[outcome] += 1
        return outcome

    def redeliver(
        self, event: dict[str, Any], as_sent: dict[str, Any] | None = None
    ) -> PipelineRun:
        """The same input event again (Genesys redelivers for days; EventBridge delivers
        at least once), `as_sent` if the redelivery differs in what a sender may change:
        its outcome stays the one it already has."""
        assert correlation_id_of(event) in self.outcomes, "deliver it first"
        self.redelivered += 1
        return run_chain_with(self.box, as_sent or event, {})

    def dead_letters(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Drain every DLQ; check that each dead-lettered event is there exactly once, with
        its error, and nothing else is. {correlation id: (function, message body)}."""
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        for function in CHAIN:
            for body in self.box.dead_letters(function):
                message = json.loads(body)
                event = original_event(body)
                assert event is not None, f"a dead letter that cannot be replayed: {body[:200]}"
                correlation = correlation_id_of(event)
                assert correlation in self.outcomes, f"a dead letter for no input: {body[:200]}"
                assert correlation not in found, "an event dead-lettered twice"
                assert error_of(message), f"a dead letter without its error: {body[:200]}"
                found[correlation] = (function, message)
        expected = {c for c, outcome in self.outcomes.items() if outcome in DEAD_LETTERED}
        assert set(found) == expected, "every dead-lettered event, and only those, is queued"
        self.in_queue = found
        return found

    def replay(self) -> list[str]:
        """Put the drained dead letters back, one at a time, and replay that function's
        queue with scripts/replay_dead_letters.py (its checks, its `replay: true` mark)."""
        found = []
        queued, self.in_queue = self.in_queue, {}
        for correlation, (function, message) in queued.items():
            self.box.send_dead_letter(function, json.dumps(message))
            (run,) = replay_queue(self.box, function, self.replay_report, self.replayed_events)
            outcome = terminal(run)
            self.outcomes[correlation] = outcome
            self.replayed[outcome] += 1
            found.append(outcome)
        return found

    def lost(self) -> int:
        """Input events neither finished nor waiting in a dead-letter queue."""
        waiting: set[str] = set(self.in_queue)
        for function in CHAIN:  # peek: drain and put back
            for body in self.box.dead_letters(function):
                waiting.add(str(correlation_id_of(original_event(body))))
                self.box.send_dead_letter(function, body)
        return sum(
            1
            for correlation, outcome in self.outcomes.items()
            if outcome not in DONE and not (outcome in DEAD_LETTERED and correlation in waiting)
        )

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if kind is not None:
            return
        lost = self.lost()
        patched = sum(1 for outcome in self.outcomes.values() if outcome == "patched")
        writes = applied_writes(self.box) - self.writes_before
        SUMMARY.append(
            {
                "test": self.test,
                "fault": self.fault,
                "how": self.how,
                "writes": writes,
                "written_twice": max(0, writes - patched),
                "events": len(self.outcomes),
                "redelivered": self.redelivered,
                "first_delivery": dict(sorted(self.first.items())),
                "after_replay": dict(sorted(self.replayed.items())),
                "final": dict(sorted(Counter(self.outcomes.values()).items())),
                "lost": lost,
            }
        )
        assert lost == 0, f"{lost} event(s) lost under: {self.fault}"
        assert writes == patched, (
            f"{writes} PATCH(es) applied by Genesys for {patched} event(s) ending patched "
            f"under: {self.fault}"
        )


def applied_writes(box: Sandbox) -> int:
    """PATCHes Genesys (the emulator) applied so far."""
    return int(box.emulator.counters()["attribute_writes"])


def stack_identity(box: Sandbox, function: str) -> Any:
    """What the replay script checks a dead letter against, for the local stack: the ARN
    Lambda (localdev's context) gives the function, the app's event source and the
    Genesys partner source of the sample events in events/."""
    sample = json.loads((EVENTS / "genesys-voice-customer-start.json").read_text("utf-8"))
    return replay_script.StackIdentity(
        logical_id=function,
        function_arn=LambdaContext(function, 1, 128).invoked_function_arn,
        event_sources=frozenset({box.environment(function)["APP_EVENT_SOURCE"], sample["source"]}),
    )


def replay_queue(
    box: Sandbox,
    function: str,
    report: list[dict[str, Any]] | None = None,
    delivered: list[dict[str, Any]] | None = None,
) -> list[PipelineRun]:
    """scripts/replay_dead_letters.py's `replay` on the function's queue (moto SQS), each
    replayed event run through the chain from that function."""
    runs: list[PipelineRun] = []
    out = io.StringIO()

    def deliver(event: dict[str, Any]) -> None:
        if delivered is not None:
            delivered.append(event)
        runs.append(run_chain_with(box, event, {}, first=function))

    replay_script.replay(
        sandbox_client("sqs"),
        box.dead_letter_queue_url(function),
        deliver,
        stack_identity(box, function),
        out=out,
    )
    if report is not None:
        report.extend(json.loads(line) for line in out.getvalue().splitlines())
    return runs


def error_of(message: dict[str, Any]) -> str:
    if "deadLetter" in message:
        return str(message["deadLetter"].get("error") or "")
    if "responsePayload" in message:
        return str((message["responsePayload"] or {}).get("errorMessage") or "")
    return ""


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    """RELIABILITY_SUMMARY=DIR: write DIR/fault-matrix.json, the figures in RELIABILITY.md."""
    yield
    folder = os.environ.get("RELIABILITY_SUMMARY")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        text = json.dumps(SUMMARY, indent=2) + "\n"
        (Path(folder) / "fault-matrix.json").write_text(text, encoding="utf-8")


def run_chain_with(
    box: Sandbox,
    event: dict[str, Any],
    after: dict[str, Callable[[], Any]],
    first: str | None = None,
) -> PipelineRun:
    """`localdev.runner.run_chain` (each step an asynchronous Lambda delivery with its
    retries and OnFailure DLQ, each emitted event routed by template.yaml's rules), minus
    its seeding of unknown conversations, plus `after` hooks between steps."""
    run = PipelineRun()
    box.emitted_events()
    targets = [first] if first else box.template.route(event)
    pending = deque((function, event) for function in targets)
    while pending:
        function, delivered = pending.popleft()
        run.steps.append(invoke_async(box, function, delivered))
        if function in after:
            after.pop(function)()
        for emitted in box.emitted_events():
            pending.extend((target, emitted) for target in box.template.route(emitted))
    return run


def step_logs(caplog: pytest.LogCaptureFixture, outcome: str) -> list[logging.LogRecord]:
    """The handlers' "Step done" log records of that outcome."""
    return [
        record
        for record in caplog.records
        if record.getMessage() == "Step done" and getattr(record, "outcome", None) == outcome
    ]


def only_dead_letter(ledger: Ledger) -> tuple[str, str]:
    """(function, error) of the one dead letter a single-event test expects."""
    ((function, message),) = ledger.dead_letters().values()
    return function, error_of(message)


# ---------------------------------------------------------------------------- control


def test_without_faults_voice_and_messaging_are_patched(box: Sandbox) -> None:
    lives = [seed(box, "VOICE", 1), seed(box, "MESSAGE", 2)]
    with Ledger(box, "none (control run)") as ledger:
        assert ledger.deliver(*(live.event() for live in lives)) == ["patched", "patched"]
    for live in lives:
        assert live.attributes(box) == live.expected
    assert requests_to(box, CALL_PATCH) == 1 and requests_to(box, MESSAGE_PATCH) == 1


# ---------------------------------------------------------------------------- Genesys


def test_a_short_429_is_waited_out_within_the_invocation(
    box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    live = seed(box)
    box.emulator.inject_fault("PATCH", PATCH_PATH, status=429, count=1, retry_after=1)
    with Ledger(
        box,
        "Genesys 429, Retry-After 1 s (fits in the invocation)",
        "emulator 429 once on PATCH, `Retry-After: 1`",
    ) as ledger:
        assert ledger.deliver(live.event()) == ["patched"]
    assert live.attributes(box) == live.expected
    assert requests_to(box, CALL_PATCH) == 2  # the 429, then the write after waiting
    waits = [r for r in caplog.records if r.getMessage() == "Genesys rate limit: waiting"]
    assert [getattr(r, "retry_after", None) for r in waits] == [1.0]


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_a_429_longer_than_the_invocation_is_dead_lettered_then_replayed(
    box: Sandbox, method: str
) -> None:
    live = seed(box)
    path = GET_PATH if method == "GET" else PATCH_PATH
    # Retry-After 120 s > the 75 s timeout of the Genesys callers: every attempt hands
    # the wait back to Lambda's retry instead of sleeping through the invocation.
    box.emulator.inject_fault(method, path, status=429, count=3, retry_after=120)
    with Ledger(
        box,
        f"Genesys 429 storm on {method}, Retry-After 120 s",
        "429 x3 with `Retry-After: 120`: beyond the 60 s window, handed back at once",
    ) as ledger:
        started = time.monotonic()
        assert ledger.deliver(live.event()) == ["dead_lettered"]
        assert time.monotonic() - started < 5, "nobody slept through the Retry-After"
        function, error = only_dead_letter(ledger)
        assert function == (FETCH if method == "GET" else PATCH)
        assert "rate limited for 60 s" in error  # capped to the rate window
        assert live.attributes(box) == live.before
        assert ledger.replay() == ["patched"]  # the storm is over
    assert live.attributes(box) == live.expected
    assert box.emulator.counters()["faults_served"] == 3


def test_a_real_rate_limit_storm_over_many_events_loses_none() -> None:
    # The emulator's own limiter: 6 requests per token per 10 minutes.
    config = EmulatorConfig(rate_limit=6, rate_window_seconds=600)
    with stack(emulator_config=config) as box:
        lives = [seed(box, media, n) for n, media in enumerate(["VOICE", "MESSAGE"] * 3)]
        with Ledger(
            box,
            "Genesys rate limit exhausted for 10 min (6 events)",
            "the emulator's own limiter: 6 requests per token per 600 s",
        ) as ledger:
            first = ledger.deliver(*(live.event() for live in lives))
            # GET + PATCH per event: three events fit in the window, three do not
            assert first == ["patched"] * 3 + ["dead_lettered"] * 3
            assert {f for f, _ in ledger.dead_letters().values()} == {FETCH}
            assert box.emulator.counters()["rate_limited"] == 9  # 3 events x 3 attempts
            box.emulator.configure(rate_limit=300)  # the window is over
            assert ledger.replay() == ["patched"] * 3
        for live in lives:
            assert live.attributes(box) == live.expected


@pytest.fixture
def backoff_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The Genesys client's backoff waits, recorded instead of slept (they are budget-aware:
    the decisions are the same, the suite is seconds faster)."""
    from attribute_bridge.genesys import client

    waits: list[float] = []
    monkeypatch.setattr(
        client, "RetryPolicy", functools.partial(client.RetryPolicy, sleep=waits.append)
    )
    return waits


@pytest.fixture
def short_genesys_timeouts(monkeypatch: pytest.MonkeyPatch, backoff_waits: list[float]) -> None:
    """Genesys read timeout 0.25 s instead of 5 s, so that a hang costs this suite 0.25 s;
    the code path (timeout -> retry -> give the event back to Lambda) is the same."""
    from attribute_bridge.genesys import client

    monkeypatch.setattr(
        client, "RetryPolicy", functools.partial(client.RetryPolicy, read_timeout=0.25)
    )


def test_a_few_409_conflicts_are_retried_within_the_invocation(
    box: Sandbox, backoff_waits: list[float]
) -> None:
    live = seed(box)
    box.emulator.inject_fault("PATCH", PATCH_PATH, status=409, count=2)
    with Ledger(box, "Genesys 409 twice", "409 x2 on PATCH") as ledger:
        assert ledger.deliver(live.event()) == ["patched"]
    assert live.attributes(box) == live.expected
    assert requests_to(box, CALL_PATCH) == 3 and len(backoff_waits) == 2


def test_persistent_409_conflicts_are_dead_lettered_then_replayed(
    box: Sandbox, backoff_waits: list[float]
) -> None:
    live = seed(box)
    box.emulator.inject_fault("PATCH", PATCH_PATH, status=409, count=REQUESTS_PER_EVENT_DELIVERY)
    with Ledger(box, "Genesys 409 on every attempt", "409 x12 (3 attempts x 4 tries)") as ledger:
        assert ledger.deliver(live.event()) == ["dead_lettered"]
        function, error = only_dead_letter(ledger)
        assert function == PATCH and "409" in error
        assert len(backoff_waits) == 3 * 3  # 3 conflict retries in each of 3 attempts
        assert ledger.replay() == ["patched"]
    assert live.attributes(box) == live.expected
    assert requests_to(box, CALL_PATCH) == REQUESTS_PER_EVENT_DELIVERY + 1


@pytest.mark.parametrize("status", [500, 503])
def test_a_few_server_errors_are_retried_within_the_invocation(
    box: Sandbox, status: int, backoff_waits: list[float]
) -> None:
    live = seed(box)
    box.emulator.inject_fault("GET", GET_PATH, status=status, count=1)
    box.emulator.inject_fault("PATCH", PATCH_PATH, status=status, count=2)
    with Ledger(box, f"Genesys {status} on the first tries", "GET x1 and PATCH x2") as ledger:
        assert ledger.deliver(live.event()) == ["patched"]
    assert live.attributes(box) == live.expected
    assert requests_to(box, CALL_GET) == 2 and requests_to(box, CALL_PATCH) == 3
    assert len(backoff_waits) == 3


@pytest.mark.parametrize("status", [500, 503])
def test_persistent_server_errors_are_dead_lettered_then_replayed(
    box: Sandbox, status: int, backoff_waits: list[float]
) -> None:
    live = seed(box, "MESSAGE")
    box.emulator.inject_fault("PATCH", PATCH_PATH, status=status, count=REQUESTS_PER_EVENT_DELIVERY)
    with Ledger(box, f"Genesys {status} on every attempt", "x12 on PATCH (messaging)") as ledger:
        assert ledger.deliver(live.event()) == ["dead_lettered"]
        function, error = only_dead_letter(ledger)
        assert function == PATCH and str(status) in error
        assert len(backoff_waits) == 3 * 3  # 3 server-error retries in each of 3 attempts
        assert ledger.replay() == ["patched"]
    assert live.attributes(box) == live.expected


@pytest.mark.usefixtures("short_genesys_timeouts")
def test_a_hanging_request_times_out_and_is_retried(box: Sandbox) -> None:
    live = seed(box)
    box.emulator.inject_fault("GET", GET_PATH, status=None, count=1, delay_seconds=1.0)
    with Ledger(
        box, "Genesys hangs once (read timeout)", "GET delayed past the read timeout"
    ) as ledger:
        assert ledger.deliver(live.event()) == ["patched"]
    assert live.attributes(box) == live.expected
    assert requests_to(box, CALL_GET) == 2


@pytest.mark.usefixtures("short_genesys_timeouts")
def test_requests_that_keep_hanging_are_dead_lettered_then_replayed(box: Sandbox) -> None:
    live = seed(box)
    box.emulator.inject_fault(
        "GET", GET_PATH, status=None, count=REQUESTS_PER_EVENT_DELIVERY, delay_seconds=0.6
    )
    with Ledger(box, "Genesys hangs on every attempt", "12 hanging GETs") as ledger:
        assert ledger.deliver(live.event()) == ["dead_lettered"]
        function, error = only_dead_letter(ledger)
        assert function == FETCH and "Timeout" in error
        assert ledger.replay() == ["patched"]
    assert live.attributes(box) == live.expected


def test_a_token_revoked_mid_run_is_replaced_and_the_work_goes_on(box: Sandbox) -> None:
    lives = [seed(box, media, n) for n, media in enumerate(["VOICE", "MESSAGE"] * 2)]
    with Ledger(
        box,
        "Genesys token revoked mid-run",
        "`revoke_tokens()` between events and between two steps of one event",
    ) as ledger:
        assert ledger.deliver(lives[0].event(), lives[1].event()) == ["patched"] * 2
        box.emulator.revoke_tokens()
        assert ledger.deliver(lives[2].event()) == ["patched"]
        # ... and again between FetchAttributes and PatchAttributes of one event
        run = ledger.run(lives[3].event(), **{SYNC: box.emulator.revoke_tokens})
        assert terminal(run) == "patched"
    for live in lives:
        assert live.attributes(box) == live.expected
    assert box.emulator.counters()["tokens_minted"] == 3


def test_token_endpoint_down_is_dead_lettered_then_replayed(box: Sandbox) -> None:
    first, second = seed(box, "VOICE", 1), seed(box, "MESSAGE", 2)
    box.emulator.inject_fault("POST", r"^/oauth/token$", status=503, count=3)
    with Ledger(
        box,
        "Genesys token endpoint down (no token yet)",
        "503 x3 on `/oauth/token`; then down again with a good token in SSM",
    ) as ledger:
        assert ledger.deliver(first.event()) == ["dead_lettered"]
        function, error = only_dead_letter(ledger)
        assert function == FETCH and "token endpoint answered 503" in error
        assert ledger.replay() == ["patched"]
        # Down again, while a good token is in SSM: nobody needs the endpoint.
        box.emulator.inject_fault("POST", r"^/oauth/token$", status=503, count=50)
        assert ledger.deliver(second.event()) == ["patched"]
    assert first.attributes(box) == first.expected and second.attributes(box) == second.expected
    assert requests_to(box, TOKEN) == 4 and box.emulator.counters()["tokens_minted"] == 1


@pytest.mark.parametrize(("writes", "outcome"), [("accept", "patched"), ("not_found", "not_found")])
def test_a_conversation_that_ends_mid_chain_is_recorded_either_way(
    writes: str, outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    # GENESYS.md: UNKNOWN whether Genesys takes a write to an ended conversation.
    with stack(emulator_config=EmulatorConfig(ended_conversation_writes=writes)) as box:
        live = seed(box)
        answer = {"accept": "takes the write", "not_found": "answers 404"}[writes]
        with Ledger(
            box,
            f"conversation ended mid-chain (Genesys {answer})",
            "the conversation ends after FetchAttributes",
        ) as ledger:
            end = functools.partial(box.emulator.end_conversation, live.conversation_id)
            assert terminal(ledger.run(live.event(), **{FETCH: end})) == outcome
        if outcome == "patched":
            assert live.attributes(box) == live.expected
        else:
            assert live.attributes(box) == live.before
            (record,) = step_logs(caplog, "not_found")
            assert "not found (gone)" in record.reason


def test_ended_gone_or_missing_participants_end_dropped_with_a_reason(
    box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    ended, live = seed(box, "VOICE", 1), seed(box, "MESSAGE", 2)
    box.emulator.end_conversation(ended.conversation_id)
    gone = Live(str(uuid.uuid4()), str(uuid.uuid4()), "VOICE", {}, {})  # Genesys never had it
    stranger = str(uuid.uuid4())
    with Ledger(box, "conversation ended or gone, participant missing (read)") as ledger:
        outcomes = [
            terminal(ledger.run(ended.event())),
            terminal(ledger.run(gone.event())),
            terminal(ledger.run(live.event(participantId=stranger))),
        ]
    assert outcomes == ["dropped", "not_found", "not_found"]
    reasons = [getattr(r, "reason", "") for r in caplog.records if r.getMessage() == "Step done"]
    assert "conversation has ended" in reasons
    assert "conversation not found (gone)" in reasons
    assert f"participant {stranger} is not in conversation {live.conversation_id}" in reasons
    assert requests_to(box, CALL_PATCH) + requests_to(box, MESSAGE_PATCH) == 0
    assert ended.attributes(box) == ended.before and live.attributes(box) == live.before


def test_a_write_for_a_participant_that_is_not_there_is_not_found(
    box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    live = seed(box, "MESSAGE")
    missing = Live(live.conversation_id, str(uuid.uuid4()), "MESSAGE", {"case_id": "C-1"}, {})
    with Ledger(
        box,
        "participant missing (write)",
        "UpdateRequested and an `attributes` event for a stranger",
    ) as ledger:
        assert ledger.deliver(missing.update_requested({"case_status": "open"})) == ["not_found"]
        # the `attributes` topic names no purpose: the read that learns it finds out
        assert ledger.deliver(missing.event("attributes")) == ["not_found"]
    assert live.attributes(box) == live.before
    records = step_logs(caplog, "not_found")
    unknown = f"participant {missing.participant_id} is not in conversation {live.conversation_id}"
    assert [r.reason for r in records] == [f"{unknown} (gone?)", unknown]
    assert requests_to(box, MESSAGE_PATCH) == 0  # the read showed it: no write was tried


# ---------------------------------------------------------------------------- AWS


def aws_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, operation)


class SsmOutage:
    """SSM GetParameter fails for the layer's own (cached) boto3 client."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.calls = 0
        self._client = aws_adapters.aws_client("ssm")
        self._client.meta.events.register("before-call.ssm.GetParameter", self)

    def __call__(self, **_: Any) -> None:
        self.calls += 1
        if self.kind == "throttled":
            raise aws_error("ThrottlingException", "GetParameter")
        raise EndpointConnectionError(endpoint_url="https://ssm.us-east-1.amazonaws.com/")

    def end(self) -> None:
        self._client.meta.events.unregister("before-call.ssm.GetParameter", self)


class WarmContainer:
    """One function's Lambda container kept warm: its handler called again without
    rebuilding the layer's adapters and caches (`box.invoke` starts every call cold)."""

    def __init__(self, box: Sandbox, function: str) -> None:
        self.box, self.function = box, function
        with mock.patch.dict(os.environ, box.environment(function)):
            self._module = box._module(function)  # the sandbox's own loaded handler module
            wiring.reset()

    def invoke(self, event: dict[str, Any]) -> Any:
        spec = self.box.template.functions[self.function]
        with mock.patch.dict(os.environ, self.box.environment(self.function)):
            context = LambdaContext(self.function, spec.timeout, spec.memory_size)
            return self._module.lambda_handler(event, context)


@pytest.mark.parametrize("kind", ["throttled", "unreachable"])
def test_ssm_down_in_a_cold_container_is_dead_lettered_then_replayed(
    box: Sandbox, kind: str
) -> None:
    live = seed(box)
    outage = SsmOutage(kind)
    with Ledger(
        box, f"SSM {kind}, no token cached", "botocore hook on the layer's cached SSM client"
    ) as ledger:
        assert ledger.deliver(live.event()) == ["dead_lettered"]
        function, error = only_dead_letter(ledger)
        assert function == FETCH and "SSM unavailable and no cached token" in error
        assert outage.calls >= 3 and requests_to(box, CALL_GET) == 0
        outage.end()
        assert ledger.replay() == ["patched"]
    assert live.attributes(box) == live.expected


def test_ssm_down_a_warm_container_uses_its_cached_token_until_it_expires(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ttl = 2.0
    every_read_goes_to_ssm = {"TOKEN_CACHE_SECONDS": "0", "TOKEN_EXPIRY_SKEW_SECONDS": "0"}
    with stack(
        emulator_config=EmulatorConfig(token_ttl_seconds=ttl),
        env_overrides={"Parameters": every_read_goes_to_ssm},
    ) as box:
        lives = [seed(box, "VOICE", n) for n in range(3)]
        container = WarmContainer(box, PATCH)
        with Ledger(
            box,
            "SSM throttled, warm container (cached token, then expiry)",
            "cached token used until it expires",
        ) as ledger:
            first = lives[0].update_requested(lives[0].answer)
            assert ledger.note(first, container.invoke(first)["outcome"]) == "patched"
            expires_at = stored_token(box)["expires_at"]
            outage = SsmOutage("throttled")
            second = lives[1].update_requested(lives[1].answer)
            assert ledger.note(second, container.invoke(second)["outcome"]) == "patched"
            assert outage.calls >= 1, "the token was read from SSM, which failed"
            assert any(
                r.getMessage() == "SSM unavailable; using the cached token until it expires"
                for r in caplog.records
            )
            time.sleep(max(0.0, expires_at + 0.1 - time.time()))  # the token expires
            late = lives[2].update_requested(lives[2].answer)
            with pytest.raises(Exception, match="SSM unavailable and no cached token"):
                container.invoke(late)  # Lambda will retry it...
            assert ledger.deliver(late) == ["dead_lettered"]  # ... and finally dead-letter it
            only_dead_letter(ledger)
            outage.end()
            assert ledger.replay() == ["patched"]
        for live in lives:
            assert live.attributes(box) == live.expected
        assert box.emulator.counters()["tokens_minted"] == 2


class PutEventsFault:
    """EventBridge answers PutEvents with failed entries (HTTP 200, FailedEntryCount > 0) or
    an error, for the layer's own boto3 client. Entries that do not fail reach moto."""

    def __init__(
        self, box: Sandbox, attempts: int, fail: Callable[[int], bool] = bool, error: bool = False
    ) -> None:
        self.remaining, self.fail, self.error = attempts, fail, error
        self.failed_entries = 0
        self._passthrough = sandbox_client("events")
        aws_adapters.aws_client("events").meta.events.register(
            "before-call.eventbridge.PutEvents", self
        )

    def __call__(self, params: dict[str, Any], **_: Any) -> Any:
        if self.remaining <= 0:
            return None
        self.remaining -= 1
        if self.error:
            raise aws_error("InternalException", "PutEvents")
        entries = json.loads(params["body"])["Entries"]
        failing = {index for index in range(len(entries)) if self.fail(index + 1)}
        self.failed_entries += len(failing)
        passing = [entry for index, entry in enumerate(entries) if index not in failing]
        accepted = iter(self._passthrough.put_events(Entries=passing)["Entries"] if passing else [])
        results = [
            {"ErrorCode": "ThrottlingException", "ErrorMessage": "Request rate exceeded"}
            if index in failing
            else next(accepted)
            for index in range(len(entries))
        ]
        response = AWSResponse("https://events.us-east-1.amazonaws.com/", 200, {}, None)
        return response, {"FailedEntryCount": len(failing), "Entries": results}


def sandbox_client(service: str) -> Any:
    """A boto3 client of the test's own (the layer's cached clients may carry faults)."""
    import boto3

    return boto3.client(service, region_name="us-east-1")


def stored_token(box: Sandbox) -> dict[str, Any]:
    name = box.environment("FetchAttributesFunction")["GENESYS_TOKEN_PARAMETER"]
    value = sandbox_client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
    return dict(json.loads(value["Value"]))


def test_putevents_failed_entries_are_retried_not_dropped(box: Sandbox) -> None:
    from attribute_bridge.aws import EventPublisher

    # Three events in one call, the second refused the first time.
    fault = PutEventsFault(box, attempts=1, fail=lambda position: position == 2)
    publisher = EventPublisher(box.resource_names["AppEventBus"], "participant-attributes")
    publisher.publish("Probe", [{"n": 1}, {"n": 2}, {"n": 3}])
    emitted = sorted(event["detail"]["n"] for event in box.emitted_events())
    assert emitted == [1, 2, 3] and fault.failed_entries == 1

    # In the chain: the Fetched event is refused once, retried, and delivered once.
    live = seed(box)
    PutEventsFault(box, attempts=1)
    with Ledger(
        box, "EventBridge PutEvents: entry refused once", "200 with `FailedEntryCount`"
    ) as ledger:
        run = ledger.run(live.event())
        assert [step.function for step in run.steps] == list(CHAIN)  # one Fetched, once
        assert terminal(run) == "patched"
    assert live.attributes(box) == live.expected


@pytest.mark.parametrize("error", [False, True], ids=["entries-refused", "api-error"])
def test_putevents_failing_every_time_is_dead_lettered_then_replayed(
    box: Sandbox, error: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []  # the publisher's backoff, recorded instead of slept
    monkeypatch.setattr(
        aws_adapters,
        "EventPublisher",
        functools.partial(aws_adapters.EventPublisher, sleep=waits.append),
    )
    live = seed(box)
    # 3 attempts of the publisher per invocation (1 if the call itself errors), 3 invocations
    fault = PutEventsFault(box, attempts=3 if error else 9, error=error)
    with Ledger(
        box,
        f"EventBridge PutEvents {'error' if error else 'refusing every entry'}",
        "`InternalException` x3" if error else "9 refused attempts",
    ) as ledger:
        assert ledger.deliver(live.event()) == ["dead_lettered"]
        function, message = only_dead_letter(ledger)
        assert function == FETCH
        assert ("InternalException" if error else "not accepted by EventBridge") in message
        assert fault.remaining == 0
        assert waits == ([] if error else [0.2, 0.4] * 3)
        assert ledger.replay() == ["patched"]
    assert live.attributes(box) == live.expected


class TableOutage:
    """DynamoDB fails for one table (the idempotency table), for the layer's client."""

    def __init__(self, table: str) -> None:
        self.table, self.calls = table, 0
        self._client = aws_adapters.aws_client("dynamodb")
        self._client.meta.events.register("before-parameter-build.dynamodb", self)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if params.get("TableName") == self.table:
            self.calls += 1
            raise aws_error("InternalServerError", model.name)

    def end(self) -> None:
        self._client.meta.events.unregister("before-parameter-build.dynamodb", self)


def test_idempotency_table_down_is_dead_lettered_then_replayed(box: Sandbox) -> None:
    first, second = seed(box, "VOICE", 1), seed(box, "MESSAGE", 2)
    table = box.resource_names["IdempotencyTable"]
    with Ledger(
        box,
        "DynamoDB idempotency table unavailable",
        "for the whole chain, then only during PatchAttributes",
    ) as ledger:
        outage = TableOutage(table)
        assert ledger.deliver(first.event()) == ["dead_lettered"]
        assert requests_to(box, CALL_GET) == 0  # nothing is done without the table
        outage.end()
        # ... and down only while PatchAttributes runs, for the second event
        outages: list[TableOutage] = []
        run = ledger.run(second.event(), **{SYNC: lambda: outages.append(TableOutage(table))})
        assert terminal(run) == "dead_lettered"
        outages[0].end()
        functions = sorted(function for function, _ in ledger.dead_letters().values())
        assert functions == [FETCH, PATCH]
        assert ledger.replay() == ["patched", "patched"]
    assert first.attributes(box) == first.expected and second.attributes(box) == second.expected


# ---------------------------------------------------------------------------- external system


@pytest.fixture
def external_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The external client's backoff waits, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(
        wiring, "ExternalSystem", functools.partial(wiring.ExternalSystem, sleep=waits.append)
    )
    return waits


def test_a_few_external_500s_are_retried_within_the_invocation(
    box: Sandbox, external_waits: list[float]
) -> None:
    live = seed(box)
    box.external.fail_next("500", count=2)
    with Ledger(box, "external system 500 twice", "stub answers 500 twice") as ledger:
        assert ledger.deliver(live.event()) == ["patched"]
    assert live.attributes(box) == live.expected
    assert len(box.external.received) == 3 and len(external_waits) == 2


@pytest.mark.parametrize("mode", ["500", "slow"])
def test_an_external_system_that_keeps_failing_is_dead_lettered_then_replayed(
    mode: str, external_waits: list[float]
) -> None:
    # Its timeout is a setting (3 s in template.yaml); 0.25 s here, against 0.8 s answers.
    faster = {SYNC: {"EXTERNAL_TIMEOUT_SECONDS": "0.25"}}
    with stack(env_overrides=faster) as box:
        live = seed(box)
        box.external.fail_next(mode, count=3 * 3, seconds=0.8)  # 3 tries x 3 invocations
        what = "answers 500" if mode == "500" else "slower than its timeout"
        with Ledger(
            box,
            f"external system {what} on every attempt",
            "9 failures (3 tries x 3 invocations), timeout 0.25 s",
        ) as ledger:
            assert ledger.deliver(live.event()) == ["dead_lettered"]
            function, error = only_dead_letter(ledger)
            assert function == SYNC
            assert ("answered 500" if mode == "500" else "Timeout") in error
            assert len(box.external.received) == 9 and len(external_waits) == 2 * 3
            assert ledger.replay() == ["patched"]
        assert live.attributes(box) == live.expected


@pytest.mark.parametrize(
    ("mode", "error"),
    [("invalid_json", "answered invalid JSON"), ("401", "refused our credentials (401)")],
)
def test_an_unusable_external_answer_is_dead_lettered_with_the_reason_then_replayed(
    box: Sandbox, mode: str, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    live = seed(box)
    box.external.fail_next(mode)
    with Ledger(
        box, f"external system: {mode}", "dead-lettered by the handler at once, with the reason"
    ) as ledger:
        # retrying cannot help: dead-lettered by the handler, at once, with the reason
        assert ledger.deliver(live.event()) == ["failed"]
        function, found = only_dead_letter(ledger)
        assert function == SYNC and error in found
        assert len(box.external.received) == 1
        assert any(
            r.getMessage() == "Step failed; dead-lettered" and error in getattr(r, "error", "")
            for r in caplog.records
        )
        assert ledger.replay() == ["patched"]  # once the external system is fixed
    assert live.attributes(box) == live.expected


def test_non_string_external_values_become_strings_and_the_unusable_ones_are_named(
    box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    live = seed(box)
    box.env_overrides["Parameters"] = {
        # the answer's keys, not the input case_id (a key both sent and written would loop)
        "WRITABLE_ATTRIBUTES": "case_status,case_priority,case_score,case_ratio,"
        "case_escalated,crm_*"
    }
    box.external.fail_next("non_string")
    with Ledger(
        box,
        "external system: non-string values",
        "numbers/booleans written as strings; object and list refused by key",
    ) as ledger:
        assert ledger.deliver(live.event()) == ["patched"]
    assert live.attributes(box) == {
        **live.expected,
        "case_score": "42",
        "case_ratio": "0.5",
        "case_escalated": "true",
    }  # case_owner (null) means no value; the object and the list are refused
    (record,) = [r for r in caplog.records if r.getMessage() == "Keys not written"]
    assert record.refused == {"case_details": "dict value", "case_tags": "list value"}


def test_an_oversized_external_value_is_refused_by_key_and_the_rest_written(
    box: Sandbox, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    live = seed(box, "MESSAGE")
    box.external.fail_next("oversized")
    with Ledger(
        box,
        "external system: oversized value",
        "a 10,000-character value refused by key, the rest written",
    ) as ledger:
        assert ledger.deliver(live.event()) == ["patched"]
    assert live.attributes(box) == live.expected  # all but case_notes
    (record,) = [r for r in caplog.records if r.getMessage() == "Keys not written"]
    assert record.refused == {"case_notes": "value of 10000 characters"}
    metrics = [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"_aws"' in line]
    assert any(metric.get("AttributeRefused") == [1.0] for metric in metrics)


# ---------------------------------------------------------------------------- delivery


def test_the_same_event_three_times_does_the_work_once(box: Sandbox) -> None:
    live = seed(box)
    event = live.event()
    with Ledger(box, "the same event delivered three times") as ledger:
        first = ledger.run(event)
        assert terminal(first) == "patched"
        for _ in range(2):
            again = ledger.redeliver(event)
            # FetchAttributes answers what it answered the first time, and emits nothing
            assert [(step.function, step.result) for step in again.steps] == [
                (FETCH, first.steps[0].result)
            ]
    counters = box.emulator.counters()["requests"]
    assert counters[CALL_GET] == 1 and counters[CALL_PATCH] == 1
    assert len(box.external.received) == 1
    assert live.attributes(box) == live.expected


def test_every_step_does_its_work_once_when_its_input_comes_three_times(box: Sandbox) -> None:
    live = seed(box)
    fetched = box.invoke(FETCH, live.event())
    assert fetched["outcome"] == "fetched"
    (fetched_event,) = box.emitted_events()
    for _ in range(3):
        box.invoke(SYNC, fetched_event)
    resolved_events = box.emitted_events()
    assert len(resolved_events) == 1 and len(box.external.received) == 1
    for _ in range(3):
        box.invoke(PATCH, resolved_events[0])
    assert requests_to(box, CALL_PATCH) == 1
    assert [e["detail-type"] for e in box.emitted_events()] == ["ParticipantAttributesPatched"]
    assert live.attributes(box) == live.expected


def test_events_out_of_order_end_in_the_same_attributes(box: Sandbox) -> None:
    live = seed(box, "VOICE")
    with Ledger(
        box,
        "events out of order (attributes before customer.start)",
        "`attributes` before `customer.start`, then the echo of the write",
    ) as ledger:
        assert ledger.deliver(live.event("attributes")) == ["patched"]
        assert ledger.deliver(live.event("customer.start")) == ["no_change"]
        # the write makes Genesys send an `attributes` event: it must end the loop
        echo = live.event("attributes", attributes=live.attributes(box))
        assert ledger.deliver(echo) == ["no_change"]
    assert live.attributes(box) == live.expected
    assert requests_to(box, CALL_PATCH) == 1


def test_an_event_days_old_is_dropped_with_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    # The template's default age limit (the sandbox lifts it for the fixed sample events).
    with stack(parameter_overrides={"MaxEventAgeSeconds": "14400"}) as box:
        old, fresh = seed(box, "VOICE", 1), seed(box, "MESSAGE", 2)
        three_days_ago = int((time.time() - 3 * 24 * 3600) * 1000)
        with Ledger(
            box,
            "an event three days old (default MaxEventAgeSeconds)",
            "template default `MaxEventAgeSeconds` (14400)",
        ) as ledger:
            assert ledger.deliver(old.event(eventTime=three_days_ago)) == ["dropped"]
            assert ledger.deliver(fresh.event()) == ["patched"]
        assert old.attributes(box) == old.before
        assert requests_to(box, CALL_GET) == 0  # dropped before asking Genesys
        (record,) = step_logs(caplog, "dropped")
        assert re.fullmatch(r"event is 259\d{3} s old", record.reason)


# ------------------------------------------------------------------ exactly once, in order
#
# Issue 11. Idempotency keys that mean "the same delivery"; event times that fail closed;
# side effects after the write that are best effort; configuration errors that are not
# retried. (The integrator adds the stale-write and loop cases here.)


def iso_now(offset_seconds: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_seconds))


def as_redelivered_by_genesys(event: dict[str, Any]) -> dict[str, Any]:
    """The same Genesys event as a later redelivery carries it: a new PutEvents (new
    envelope `id` and `time`), a new `detail.timestamp`, even a new CorrelationId; the
    topic and `eventBody` as they were."""
    again = json.loads(json.dumps(event))
    again["id"] = str(uuid.uuid4())
    again["time"] = iso_now(3600)
    again["detail"]["timestamp"] = iso_now(3600).replace("Z", ".500Z")
    return again


def resolved_events(box: Sandbox) -> list[dict[str, Any]]:
    return [e for e in box.emitted_events() if e["detail-type"] == "ParticipantAttributesResolved"]


def idempotency_records(box: Sandbox) -> list[dict[str, Any]]:
    table = box.resource_names["IdempotencyTable"]
    items: list[dict[str, Any]] = sandbox_client("dynamodb").scan(TableName=table)["Items"]
    return items


def let_time_pass(box: Sandbox, *, in_progress: bool = False, records: bool = False) -> None:
    """What waiting does to the idempotency records, without waiting: an in-progress
    record's window (the function's timeout) passes before Lambda's retry (1 and 2 min
    later); every record expires after the idempotency window (24 h, 5 days)."""
    table = box.resource_names["IdempotencyTable"]
    dynamodb = sandbox_client("dynamodb")
    past_s = int(time.time()) - 1
    for item in idempotency_records(box):
        changes: dict[str, Any] = {}
        if in_progress and item.get("status", {}).get("S") == "INPROGRESS":
            changes["in_progress_expiration"] = {"N": str(past_s * 1000)}
        if records:
            changes["expiration"] = {"N": str(past_s)}
        if changes:
            dynamodb.update_item(
                TableName=table,
                Key={"id": item["id"]},
                UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in changes),
                ExpressionAttributeNames={f"#{k}": k for k in changes},
                ExpressionAttributeValues={f":{k}": v for k, v in changes.items()},
            )


def emf_metrics(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF metric documents the handlers printed (to stderr, in the sandbox)."""
    return [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"_aws"' in line]


def logged(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(message)]


def test_open_closed_open_update_requests_are_three_writes(box: Sandbox) -> None:
    live = seed(box, "MESSAGE")
    opened = live.update_requested({"case_status": "open"})
    with Ledger(
        box,
        "legitimate A -> B -> A updates",
        "3 UpdateRequested: open, closed, then open again with the first one's detail",
    ) as ledger:
        assert terminal(ledger.run(opened)) == "patched"
        closed = asked_later(live.update_requested({"case_status": "closed"}), than=opened)
        assert terminal(ledger.run(closed)) == "patched"
        # The client asks for `open` again: the first request's detail and correlation id,
        # re-sent through the API, which stamps the time it was asked (readAtMs); a new
        # PutEvents entry, so a new envelope id, so a new event (not a duplicate of the first).
        reopened = asked_later(
            {**json.loads(json.dumps(opened)), "id": str(uuid.uuid4())}, than=closed
        )
        assert terminal(ledger.run(reopened, input_id="reopened")) == "patched"
    assert live.attributes(box)["case_status"] == "open"
    assert requests_to(box, MESSAGE_PATCH) == 3 and applied_writes(box) == 3


def test_an_old_request_replayed_after_a_newer_write_is_stale(box: Sandbox) -> None:
    """The same three requests, but the third is the first one to the byte, read time
    included (a copy from an old DLQ message or log): it is based on a read from before the
    `closed` write, so it is compared-and-set and refused as stale; `closed` stays."""
    live = seed(box, "MESSAGE")
    opened = live.update_requested({"case_status": "open"})
    closed = asked_later(live.update_requested({"case_status": "closed"}), than=opened)
    old_copy = {**json.loads(json.dumps(opened)), "id": str(uuid.uuid4())}
    with Ledger(
        box,
        "an old request re-sent to the byte",
        "open, closed, then the first one again, read time included",
    ) as ledger:
        assert ledger.deliver(opened, closed) == ["patched", "patched"]
        assert terminal(ledger.run(old_copy, input_id="old copy")) == "stale"
    assert live.attributes(box)["case_status"] == "closed"
    assert requests_to(box, MESSAGE_PATCH) == 2


def asked_later(event: dict[str, Any], than: dict[str, Any]) -> dict[str, Any]:
    """`event` asked for after `than` (a later readAtMs), whatever the clock's resolution."""
    before = than["detail"]["readAtMs"]
    event["detail"]["readAtMs"] = max(int(time.time() * 1000), before + 1)
    return event


def test_a_to_b_to_a_through_the_sync_is_three_writes(box: Sandbox) -> None:
    live = seed(box)
    with Ledger(
        box, "legitimate A -> B -> A answers of the external system", "3 customer.start"
    ) as ledger:
        for status in ("open", "closed", "open"):
            box.external.add_rule(
                match={"conversationId": live.conversation_id}, answer={"case_status": status}
            )
            assert ledger.deliver(live.event()) == ["patched"]
    assert live.attributes(box)["case_status"] == "open"
    assert requests_to(box, CALL_PATCH) == 3


def test_a_genesys_redelivery_with_a_new_timestamp_does_nothing(
    box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    live = seed(box)
    event = live.event()
    with Ledger(
        box,
        "the same Genesys event redelivered later",
        "new envelope id, time, detail.timestamp and CorrelationId; same topic and eventBody",
    ) as ledger:
        assert ledger.deliver(event) == ["patched"]
        again = ledger.redeliver(event, as_sent=as_redelivered_by_genesys(event))
        assert [step.function for step in again.steps] == [FETCH]  # and it emitted nothing
    assert requests_to(box, CALL_GET) == 1 and requests_to(box, CALL_PATCH) == 1
    assert len(box.external.received) == 1
    assert len(logged(caplog, "Duplicate delivery")) == 1


def test_the_external_system_gets_an_idempotency_key_from_the_source_event(
    box: Sandbox,
) -> None:
    first, second = seed(box, "VOICE", 1), seed(box, "MESSAGE", 2)
    events = [first.event(), second.event()]
    with Ledger(box, "Idempotency-Key to the external system", "2 events") as ledger:
        assert ledger.deliver(*events) == ["patched", "patched"]
    assert box.external.idempotency_keys == [event["id"] for event in events]


NOW_MS = int(time.time() * 1000)
TOMORROW_MS = NOW_MS + 24 * 3600 * 1000
THREE_DAYS_AGO = "three days ago"  # resolved when the test runs


@pytest.mark.parametrize(
    ("event_time", "envelope_time", "outcome", "error", "how"),
    [
        (float(NOW_MS), iso_now(), "patched", None, "eventTime a float, envelope time now"),
        (str(NOW_MS), THREE_DAYS_AGO, "dropped", None, "eventTime a string, envelope 3 days old"),
        (None, THREE_DAYS_AGO, "dropped", None, "no eventTime, envelope time 3 days old"),
        (None, "yesterday", "rejected", "no usable time", "no eventTime, envelope `yesterday`"),
        ("soon", None, "rejected", "no usable time", "eventTime `soon`, no envelope time"),
        (TOMORROW_MS, iso_now(), "rejected", "in the future", "eventTime tomorrow"),
    ],
    ids=[
        "float-eventTime-falls-back-to-the-envelope-time",
        "string-eventTime-and-an-old-envelope-time",
        "no-eventTime-and-an-old-envelope-time",
        "no-eventTime-and-an-unreadable-envelope-time",
        "neither-readable",
        "eventTime-tomorrow",
    ],
)
def test_event_time_checks_fail_closed(
    event_time: Any,
    envelope_time: str | None,
    outcome: str,
    error: str | None,
    how: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The template's default age limit (the sandbox lifts it for the fixed sample events).
    with stack(parameter_overrides={"MaxEventAgeSeconds": "14400"}) as box:
        live = seed(box)
        event = live.event()
        body = event["detail"]["eventBody"]
        body.pop("eventTime")
        if event_time is not None:
            body["eventTime"] = event_time
        event.pop("time")
        if envelope_time is not None:
            three_days_ago = iso_now(-3 * 24 * 3600)
            event["time"] = three_days_ago if envelope_time == THREE_DAYS_AGO else envelope_time
        with Ledger(
            box,
            "an event time that is not an integer, missing or in the future",
            how,
        ) as ledger:
            assert ledger.deliver(event) == [outcome]
            if error is not None:
                function, found = only_dead_letter(ledger)
                assert function == FETCH and error in found
        if outcome == "patched":
            assert live.attributes(box) == live.expected
        else:
            assert live.attributes(box) == live.before
            assert requests_to(box, CALL_GET) == 0  # decided before asking Genesys
        if outcome == "dropped":
            (record,) = step_logs(caplog, "dropped")
            assert re.fullmatch(r"event is 259\d{3} s old", record.reason)


def test_a_failed_audit_publish_after_the_patch_never_patches_again(
    box: Sandbox,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    live = seed(box)
    faults: list[PutEventsFault] = []
    with Ledger(
        box,
        "ParticipantAttributesPatched publish fails after the PATCH",
        "PutEvents InternalException while PatchAttributes publishes",
    ) as ledger:
        run = ledger.run(
            live.event(), **{SYNC: lambda: faults.append(PutEventsFault(box, 1, error=True))}
        )
        assert terminal(run) == "patched"
        assert run.steps[-1].result["emitted"] is None
    assert faults[0].remaining == 0  # the publish was tried, and failed
    assert requests_to(box, CALL_PATCH) == 1 and live.attributes(box) == live.expected
    (record,) = logged(caplog, "Publishing ParticipantAttributesPatched failed after the write")
    assert "InternalException" in record.error
    assert any(m.get("AuditPublishFailed") == [1.0] for m in emf_metrics(capfd))


class OperationOutage(TableOutage):
    """DynamoDB fails for one table and some operations only (PutItem works, UpdateItem
    fails: the idempotency store failing half-way)."""

    def __init__(self, table: str, operations: set[str], times: int = 1_000_000) -> None:
        self.operations, self.times = operations, times
        super().__init__(table)

    def __call__(self, params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        if model.name in self.operations and self.calls < self.times:
            super().__call__(params=params, model=model, **kwargs)


def test_an_idempotency_store_failing_half_way_does_not_redo_the_step(
    box: Sandbox, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    live = seed(box)
    table = box.resource_names["IdempotencyTable"]
    outages: list[OperationOutage] = []
    with Ledger(
        box,
        "idempotency store fails half-way (save_success)",
        "UpdateItem on the idempotency table fails while SyncExternal runs; PutItem works",
    ) as ledger:
        run = ledger.run(
            live.event(),
            **{
                FETCH: lambda: outages.append(OperationOutage(table, {"UpdateItem"})),
                SYNC: lambda: outages[0].end(),
            },
        )
        assert [step.outcome for step in run.steps] == ["fetched", "synced", "patched"]
    assert outages[0].calls == 2  # save_success, tried twice, failed
    assert len(box.external.received) == 1  # one CRM call ...
    assert requests_to(box, CALL_PATCH) == 1  # ... one Resolved, one PATCH
    assert len(logged(caplog, "Step done, but its idempotency record could not be completed")) == 1
    assert any(m.get("IdempotencyRecordNotSaved") == [1.0] for m in emf_metrics(capfd))


def test_a_dead_letter_whose_idempotency_record_cannot_be_deleted_is_replayable(
    box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    live = seed(box)
    table = box.resource_names["IdempotencyTable"]
    box.external.fail_next("401")
    with Ledger(
        box,
        "dead-lettered, then the idempotency record's delete fails once",
        "external 401; DeleteItem on the idempotency table fails once",
    ) as ledger:
        outage = OperationOutage(table, {"DeleteItem"}, times=1)
        assert ledger.deliver(live.event()) == ["failed"]
        outage.end()
        assert outage.calls == 1
        only_dead_letter(ledger)  # one dead letter: the retry did not write another
        assert len(logged(caplog, "Dead-lettered, but its idempotency record")) == 1
        assert ledger.replay() == ["patched"]  # the record is gone: the replay runs
    assert len(box.external.received) == 2 and live.attributes(box) == live.expected


class LambdaTimedOut(BaseException):
    """The Lambda runtime ending an invocation at its timeout: nothing in the function
    catches it (not `except Exception`), no idempotency record is cleaned up."""


class KillOnPutEvents:
    """The invocation is cut off the next time it calls PutEvents."""

    def __init__(self) -> None:
        self._client = aws_adapters.aws_client("events")
        self._client.meta.events.register("before-call.eventbridge.PutEvents", self)

    def __call__(self, **_: Any) -> None:
        self._client.meta.events.unregister("before-call.eventbridge.PutEvents", self)
        raise LambdaTimedOut("Task timed out")


def test_a_timeout_that_leaves_an_in_progress_record_is_retried_once_it_expires(
    box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
    )

    live = seed(box)
    event = live.event()
    with Ledger(
        box,
        "Lambda timeout leaves an in-progress record",
        "SyncExternal cut off after its CRM call, before it publishes",
    ) as ledger:
        assert box.invoke(FETCH, event)["outcome"] == "fetched"
        (fetched,) = box.emitted_events()
        KillOnPutEvents()
        with pytest.raises(LambdaTimedOut):
            box.invoke(SYNC, fetched)
        statuses = [item["status"]["S"] for item in idempotency_records(box)]
        assert statuses.count("INPROGRESS") == 1
        # A retry within the in-progress window (the function's timeout) is told so...
        with pytest.raises(IdempotencyAlreadyInProgressError):
            box.invoke(SYNC, fetched)
        assert len(logged(caplog, "The same delivery is in progress")) == 1
        # ... Lambda's next retry comes after it: the step runs again, from the start.
        let_time_pass(box, in_progress=True)
        run = ledger.run(fetched)
        assert [step.outcome for step in run.steps] == ["synced", "patched"]
    # The CRM was called twice, with the same Idempotency-Key: it can tell the retry.
    assert box.external.idempotency_keys == [event["id"], event["id"]]
    assert requests_to(box, CALL_PATCH) == 1 and live.attributes(box) == live.expected


def test_concurrent_duplicate_deliveries_do_the_work_once(
    box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
    )

    live = seed(box)
    with Ledger(
        box,
        "concurrent duplicate deliveries",
        "the same Fetched event to two SyncExternal invocations at once (CRM answers in 1 s)",
    ) as ledger:
        assert box.invoke(FETCH, live.event())["outcome"] == "fetched"
        (fetched,) = box.emitted_events()
        box.external.fail_next("slow", seconds=1.0)
        results: list[Any] = []
        first = threading.Thread(target=lambda: results.append(box.invoke(SYNC, fetched)))
        first.start()
        deadline = time.monotonic() + 5
        while not box.external.received and time.monotonic() < deadline:
            time.sleep(0.02)  # the first invocation is in its CRM call
        with pytest.raises(IdempotencyAlreadyInProgressError):
            box.invoke(SYNC, fetched)  # the duplicate: Lambda retries it later
        first.join()
        assert results[0]["outcome"] == "synced"
        (resolved,) = resolved_events(box)
        # The duplicate's retry finds the first one's result, and emits nothing.
        assert box.invoke(SYNC, fetched) == results[0]
        assert resolved_events(box) == []
        assert terminal(ledger.run(resolved)) == "patched"
    assert len(box.external.received) == 1 and requests_to(box, CALL_PATCH) == 1
    assert len(logged(caplog, "The same delivery is in progress")) == 1
    assert live.attributes(box) == live.expected


def test_a_replay_after_the_idempotency_window_writes_once(
    box: Sandbox, backoff_waits: list[float]
) -> None:
    live = seed(box)
    box.emulator.inject_fault("PATCH", PATCH_PATH, status=429, count=3, retry_after=120)
    with Ledger(
        box,
        "a replay after the idempotency window",
        "PATCH dead-lettered (429 storm), replayed by the script once every record expired",
    ) as ledger:
        assert ledger.deliver(live.update_requested(live.answer)) == ["dead_lettered"]
        ledger.dead_letters()
        let_time_pass(box, records=True)  # 24 h later: no idempotency record is left
        assert ledger.replay() == ["patched"]
        (line,) = ledger.replay_report
        assert line["action"] == "replayed" and line["kind"] == "lambda-on-failure"
        assert line["conversationId"] == live.conversation_id
    assert live.attributes(box) == live.expected
    assert applied_writes(box) == 1
    # marked as a replay, for PatchAttributes' compare-and-set
    assert [event["detail"].get("replay") for event in ledger.replayed_events] == [True]


@pytest.mark.parametrize(
    ("retry_after", "first"),
    [
        ("http-date-in-2-s", "patched"),
        ("86400", "dead_lettered"),
        ("http-date-tomorrow", "dead_lettered"),
    ],
)
def test_retry_after_as_an_http_date_or_an_absurd_number(
    box: Sandbox, backoff_waits: list[float], retry_after: str, first: str
) -> None:
    from email.utils import formatdate

    live = seed(box)
    # An HTTP date has whole seconds: round up, so the date is 2 to 3 s ahead when sent
    # (formatdate truncates; time.time() + 2 could name a second already half gone).
    ahead = math.ceil(time.time()) + 2
    header = {
        "http-date-in-2-s": formatdate(ahead, usegmt=True),
        "http-date-tomorrow": formatdate(ahead + 24 * 3600, usegmt=True),
    }.get(retry_after, retry_after)
    count = 1 if first == "patched" else 3  # once, or on each of Lambda's 3 attempts
    box.emulator.inject_fault("PATCH", PATCH_PATH, status=429, count=count, retry_after=header)
    how = {
        "http-date-in-2-s": "429 once, Retry-After an HTTP date 2 s ahead",
        "86400": "429 on each attempt, Retry-After 86400 (a day)",
        "http-date-tomorrow": "429 on each attempt, Retry-After an HTTP date a day ahead",
    }[retry_after]
    with Ledger(box, f"Genesys 429 with Retry-After {retry_after}", how) as ledger:
        started = time.monotonic()
        assert ledger.deliver(live.event()) == [first]
        assert time.monotonic() - started < 10
        if first == "patched":
            (wait,) = backoff_waits  # the date, as seconds from now, waited out
            assert 0 < wait <= 3
        else:
            # beyond Genesys's 60 s window: not slept on, handed to Lambda's retries
            assert backoff_waits == []
            function, error = only_dead_letter(ledger)
            assert function == PATCH and "rate limited for 60 s" in error
            assert ledger.replay() == ["patched"]
    assert live.attributes(box) == live.expected


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_a_genesys_403_is_a_configuration_error_not_gone(
    box: Sandbox, method: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    live = seed(box)
    path = GET_PATH if method == "GET" else PATCH_PATH
    box.emulator.inject_fault(method, path, status=403, count=1)
    with Ledger(
        box,
        f"Genesys 403 on {method} (the OAuth client's role or division)",
        "emulator answers 403 once",
    ) as ledger:
        assert ledger.deliver(live.event()) == ["failed"]  # not retried, not "not found"
        function, error = only_dead_letter(ledger)
        assert function == (FETCH if method == "GET" else PATCH)
        assert "403" in error and "check the OAuth client's roles and their divisions" in error
        assert requests_to(box, CALL_GET if method == "GET" else CALL_PATCH) == 1
        assert len(logged(caplog, "Configuration error; dead-lettered")) == 1
        assert any(m.get("ConfigurationError") == [1.0] for m in emf_metrics(capfd))
        assert ledger.replay() == ["patched"]  # once the role is fixed
    assert live.attributes(box) == live.expected


def test_an_external_url_that_is_not_https_is_a_configuration_error(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    plain = {SYNC: {"EXTERNAL_SYSTEM_URL": "http://crm.example.com/sync"}}
    with stack(env_overrides=plain) as box:
        live = seed(box)
        with Ledger(
            box, "external system URL is not https", "EXTERNAL_SYSTEM_URL=http://crm.example.com"
        ) as ledger:
            assert ledger.deliver(live.event()) == ["failed"]  # at once: not retried
            function, error = only_dead_letter(ledger)
            assert function == SYNC and "must be an https:// URL" in error
            assert len(logged(caplog, "Configuration error; dead-lettered")) == 1
            assert not logged(caplog, "Unexpected failure")  # no traceback, no retry
            assert box.external.received == []
            assert any(m.get("ConfigurationError") == [1.0] for m in emf_metrics(capfd))
            box.env_overrides[SYNC] = {}  # the configuration is fixed
            assert ledger.replay() == ["patched"]
        assert live.attributes(box) == live.expected
