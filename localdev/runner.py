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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localdev.sandbox import Sandbox, load_env_vars_file, sandbox

ASYNC_RETRIES = 2  # EventInvokeConfig.MaximumRetryAttempts in template.yaml


@dataclass
class Step:
    function: str
    detail_type: str | None
    outcome: str
    result: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"function": self.function, "detail-type": self.detail_type, "outcome": self.outcome}


@dataclass
class PipelineRun:
    steps: list[Step] = field(default_factory=list)
    conversation_ids: set[str] = field(default_factory=set)

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


def run_chain(box: Sandbox, event: Any, first: list[str] | None = None) -> PipelineRun:
    """Deliver `event` to the functions whose rules match it (or to `first`), then every
    event they emit to the functions whose rules match that, until nothing is left."""
    run = PipelineRun()
    conversation_id = box.ensure_conversation(event)
    if conversation_id:
        run.conversation_ids.add(conversation_id)
    box.emitted_events()  # start from a clean capture queue
    pending = deque((function_id, event) for function_id in (first or box.template.route(event)))
    while pending:
        function_id, delivered = pending.popleft()
        run.steps.append(invoke_async(box, function_id, delivered))
        for emitted in box.emitted_events():
            # Events no rule matches (ParticipantAttributesPatched: for audit) end here.
            pending.extend((target, emitted) for target in box.template.route(emitted))
    return run


def replay_dead_letters(box: Sandbox, function_id: str) -> list[PipelineRun]:
    """Take every message from the function's DLQ and run its event again from there."""
    from attribute_bridge.dead_letters import original_event

    runs = []
    for body in box.dead_letters(function_id):
        event = original_event(body)
        if event is not None:
            runs.append(run_chain(box, event, first=[function_id]))
    return runs


def _read_event(path: str) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def invoke_main(function_id: str, event_file: str, env_vars: str | None) -> int:
    event = _read_event(event_file)
    with sandbox(env_overrides=load_env_vars_file(env_vars)) as box:
        if function_id not in box.template.functions:
            known = ", ".join(sorted(box.template.functions))
            print(f"unknown function {function_id!r}; template.yaml has: {known}", file=sys.stderr)
            return 2
        box.ensure_conversation(event)
        result = box.invoke(function_id, event)
    print(json.dumps(result, indent=2, default=str))
    return 0


def pipeline_main(event_file: str, env_vars: str | None) -> int:
    event = _read_event(event_file)
    with sandbox(env_overrides=load_env_vars_file(env_vars)) as box:
        run = run_chain(box, event)
        output = {
            "steps": [step.as_dict() for step in run.steps],
            "attributes": run.attributes(box),
        }
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
