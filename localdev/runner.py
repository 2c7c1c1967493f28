"""`invoke` and `pipeline`: docker-less equivalents of `sam local invoke`, plus the whole
chain an event starts, routed by template.yaml's own rules (events the functions emit
are read back from moto and matched against the template's patterns).

Lambda's asynchronous invocation is imitated where it matters for "nothing lost": a
function that raises is retried as its EventInvokeConfig allows (2 retries, immediately
here), then its event goes to the function's dead-letter queue as an OnFailure record.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localdev.genesys_events import attributes_event
from localdev.sandbox import Sandbox, load_env_vars_file, sandbox

ASYNC_RETRIES = 2  # EventInvokeConfig.MaximumRetryAttempts in template.yaml
ECHO_ROUNDS = 10  # --echo-attributes: at most this many `attributes` events per run
API_FUNCTION = "AttributesApiFunction"


class UsageError(Exception):
    """A bad command line or input file: one line on stderr, exit status 2."""


@dataclass
class Step:
    function: str
    detail_type: str | None
    outcome: str
    result: Any = None
    event: str = ""  # the event file whose chain this step belongs to

    @property
    def reason(self) -> str:
        if not isinstance(self.result, Mapping):
            return ""
        if "statusCode" in self.result:  # an API answer: its error, if any
            try:
                body = json.loads(self.result.get("body") or "{}")
            except ValueError:
                return ""
            errors = body.get("errors") if isinstance(body, dict) else None
            return (
                "; ".join(map(str, errors)) if self.result["statusCode"] >= 400 and errors else ""
            )
        return str(self.result.get("reason") or self.result.get("error") or "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "function": self.function,
            "detail-type": self.detail_type,
            "outcome": self.outcome,
            "reason": self.reason,
        }


@dataclass
class PipelineRun:
    steps: list[Step] = field(default_factory=list)
    conversation_ids: set[str] = field(default_factory=set)
    echoes: int = 0
    echo_stopped: bool = False

    def attributes(self, box: Sandbox) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for conversation_id in sorted(self.conversation_ids):
            conversation = box.emulator.get_conversation(conversation_id)
            for participant in (conversation or {}).get("participants", []):
                found[participant["id"]] = dict(participant.get("attributes") or {})
        return found


def invoke_async(box: Sandbox, function_id: str, event: Any) -> Step:
    """One asynchronous delivery: the first try and Lambda's retries, then the DLQ."""
    detail_type = event.get("detail-type") if isinstance(event, Mapping) else None
    error: BaseException | None = None
    for _attempt in range(1 + ASYNC_RETRIES):
        try:
            result = box.invoke(function_id, event)
        except Exception as failure:
            error = failure
            continue
        outcome = result.get("outcome", "done") if isinstance(result, Mapping) else "done"
        if isinstance(result, Mapping) and "statusCode" in result:
            outcome = f"http {result['statusCode']}"
        return Step(function_id, detail_type, str(outcome), result)
    if error is None:  # the loop always runs at least once
        raise RuntimeError("no invocation was made")
    box.send_dead_letter(function_id, _on_failure_record(function_id, event, error))
    return Step(function_id, detail_type, "dead_lettered", {"error": str(error)})


def _on_failure_record(function_id: str, event: Any, error: BaseException) -> str:
    """The shape of a Lambda OnFailure destination record."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "requestContext": {
                "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{function_id}",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 1 + ASYNC_RETRIES,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": type(error).__name__, "errorMessage": str(error)},
        }
    )


def run_chain(
    box: Sandbox,
    event: Any,
    first: list[str] | None = None,
    source: str = "",
    echo_rounds: int = 0,
) -> PipelineRun:
    """Deliver `event` to the functions whose rules match it (or to `first`), then every
    event they emit to the functions whose rules match that, until nothing is left. With
    `echo_rounds`, each PATCH the emulator accepts comes back as the `attributes` event
    Genesys would send (at most that many), routed like any event."""
    run = PipelineRun()
    conversation_id = box.ensure_conversation(event)
    if conversation_id:
        run.conversation_ids.add(conversation_id)
    box.emitted_events()  # start from a clean capture queue
    box.emulator.take_patched()
    targets = first or box.template.route(event)
    if not targets and isinstance(event, Mapping) and "httpMethod" in event:
        targets = [API_FUNCTION]  # API Gateway invokes it directly (no rule)
    pending = deque((function_id, event) for function_id in targets)
    while pending:
        function_id, delivered = pending.popleft()
        step = invoke_async(box, function_id, delivered)
        step.event = source
        run.steps.append(step)
        emitted = box.emitted_events()
        for patched in box.emulator.take_patched():
            if run.echoes < echo_rounds:
                run.echoes += 1
                emitted.append(attributes_event(box.emulator, *patched))
            else:
                run.echo_stopped = echo_rounds > 0
        for next_event in emitted:
            # Events no rule matches (ParticipantAttributesPatched: for audit) end here.
            pending.extend((target, next_event) for target in box.template.route(next_event))
    return run


def why_nothing_ran(box: Sandbox, event: Any) -> list[str]:
    """For each rule, the event's top-level fields its pattern did not match."""
    from localdev.eventpattern import matches

    if not isinstance(event, dict):
        return ["the event is not a JSON object"]
    lines = []
    for rule in box.template.rules:
        failing = [key for key, sub in rule.pattern.items() if not matches({key: sub}, event)]
        if failing:
            lines.append(f"{rule.target_function} ({rule.name}): {', '.join(failing)} differ")
    return lines


def replay_dead_letters(box: Sandbox, function_id: str) -> list[PipelineRun]:
    """Take every message from the function's DLQ and run its event again from there."""
    from attribute_bridge.dead_letters import original_event

    runs = []
    for body in box.dead_letters(function_id):
        event = original_event(body)
        if event is not None:
            runs.append(run_chain(box, event, first=[function_id]))
    return runs


def read_json(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: no such file") from None
    except (OSError, UnicodeError) as error:
        raise UsageError(f"{what} {path}: cannot read it ({error})") from None
    except ValueError as error:
        raise UsageError(f"{what} {path}: not valid JSON ({error})") from None


def read_external_answer(path: str) -> str:
    """The answer the stub gives every sync (`{now}`: epoch ms), checked to be JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--external-answer {path}: cannot read it ({error})") from None
    try:
        json.loads(text.replace("{now}", "0"))
    except ValueError as error:
        raise UsageError(f"--external-answer {path}: not valid JSON ({error})") from None
    return text


def seed_conversations(box: Sandbox, path: str) -> list[str]:
    """--conversation FILE: one conversation or a list, in the emulator's seeding format
    (docs/emulator.md), created before the events run. Their ids."""
    document = read_json(path, "--conversation")
    conversations = document if isinstance(document, list) else [document]
    ids = []
    for index, conversation in enumerate(conversations):
        where = f"--conversation {path} [{index}]"
        if not isinstance(conversation, dict):
            raise UsageError(f"{where}: each conversation must be a JSON object")
        unknown = conversation.keys() - {"id", "media_type", "message_type", "participants"}
        if unknown:
            raise UsageError(f"{where}: unknown fields {sorted(unknown)}")
        try:
            created = box.emulator.create_conversation(
                media_type=str(conversation.get("media_type", "VOICE")),
                message_type=conversation.get("message_type"),
                participants=_lower_ids(conversation.get("participants")),
                conversation_id=_lower(conversation.get("id")),
            )
        except (ValueError, TypeError) as error:
            raise UsageError(f"{where}: {error}") from None
        ids.append(str(created["id"]))
    return ids


def _lower(value: Any) -> Any:
    """Genesys ids are lower-case UUIDs and compared case-insensitively."""
    return value.lower() if isinstance(value, str) else value


def _lower_ids(participants: Any) -> Any:
    if not isinstance(participants, list):
        return participants
    return [
        {**p, "id": _lower(p["id"])} if isinstance(p, dict) and "id" in p else p
        for p in participants
    ]


def _environment(env_vars: str | None) -> dict[str, dict[str, str]]:
    try:
        return load_env_vars_file(env_vars)
    except FileNotFoundError:
        raise UsageError(f"--env-vars {env_vars}: no such file") from None
    except ValueError as error:
        raise UsageError(f"--env-vars: {error}") from None


def _prepare(box: Sandbox, conversation: str | None, external_answer: str | None) -> list[str]:
    seeded = seed_conversations(box, conversation) if conversation else []
    if external_answer:
        box.external.answer_always(read_external_answer(external_answer))
    _note_local_event_age(box)
    return seeded


def _note_local_event_age(box: Sandbox) -> None:
    """The sandbox lets old events through (the samples carry fixed timestamps): say so."""
    from localdev.template import load_template

    local = box.template.parameters.get("MaxEventAgeSeconds")
    default = load_template(box.template.path).parameters.get("MaxEventAgeSeconds")
    if str(local) != str(default):
        print(
            f"note: MaxEventAgeSeconds is {local} locally (template default {default}): the "
            "sample events carry fixed timestamps; set MAX_EVENT_AGE_SECONDS with --env-vars "
            "to try the real one",
            file=sys.stderr,
        )


def invoke_main(
    function_id: str,
    event_file: str,
    env_vars: str | None,
    conversation: str | None = None,
    external_answer: str | None = None,
) -> int:
    event = read_json(event_file, "event file")
    with sandbox(env_overrides=_environment(env_vars)) as box:
        if function_id not in box.template.functions:
            known = ", ".join(sorted(box.template.functions))
            raise UsageError(f"unknown function {function_id!r}; template.yaml has: {known}")
        _prepare(box, conversation, external_answer)
        box.ensure_conversation(event)
        result = box.invoke(function_id, event)
    print(json.dumps(result, indent=2, default=str))
    return 0


def pipeline_main(
    event_files: Sequence[str],
    env_vars: str | None,
    conversation: str | None = None,
    external_answer: str | None = None,
    echo_attributes: bool = False,
    extra_clients: int = 0,
) -> int:
    events = [(path, read_json(path, "event file")) for path in event_files]
    # GenesysExtraClientCount locally: the emulator gets that many more OAuth clients.
    parameters = {"GenesysExtraClientCount": str(extra_clients)} if extra_clients else None
    with sandbox(env_overrides=_environment(env_vars), parameter_overrides=parameters) as box:
        conversation_ids = set(_prepare(box, conversation, external_answer))
        steps: list[Step] = []
        for path, event in events:
            run = run_chain(
                box,
                event,
                source=Path(path).name,
                echo_rounds=ECHO_ROUNDS if echo_attributes else 0,
            )
            if not run.steps:
                print(f"{Path(path).name}: no rule matched, nothing ran:", file=sys.stderr)
                for line in why_nothing_ran(box, event):
                    print(f"  {line}", file=sys.stderr)
            if run.echo_stopped:
                print(
                    f"{Path(path).name}: --echo-attributes stopped after {ECHO_ROUNDS} rounds",
                    file=sys.stderr,
                )
            steps.extend(run.steps)
            conversation_ids |= run.conversation_ids
        output = {
            "steps": [step.as_dict() for step in steps],
            "attributes": PipelineRun(conversation_ids=conversation_ids).attributes(box),
            "requests": dict(sorted(box.emulator.counters()["requests"].items())),
        }
        if extra_clients:  # which OAuth client's token carried how many requests
            output["requests_by_client"] = box.emulator.counters()["requests_by_client"]
    print(json.dumps(output, indent=2))
    return 0


def openapi_main() -> int:
    """Print the AttributesApi OpenAPI document, generated from the handler's routes."""
    from importlib.util import module_from_spec, spec_from_file_location

    from localdev.sandbox import LAYER_SOURCE, REPO_ROOT

    sys.path.insert(0, str(LAYER_SOURCE))
    spec = spec_from_file_location(
        "attributes_api_app", REPO_ROOT / "functions" / "attributes_api" / "app.py"
    )
    if spec is None or spec.loader is None:
        raise FileNotFoundError("functions/attributes_api/app.py")
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    print(module.openapi_json(), end="")
    return 0
