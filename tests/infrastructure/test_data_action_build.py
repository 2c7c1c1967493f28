"""ResolveAttributesFunction as `sam build` ships it (localdev/built.py runs it the way
Lambda does): it imports from its function folder and the built layer only and answers
a data-action event rendered from the shipped action, writing through the layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from localdev.built import BUILD_DIR, run_built_function, runtime_packages_dir, served_stack
from localdev.data_actions import load_action, render_request, translate

ACTION = load_action(
    Path(__file__).resolve().parents[2] / "genesys/data-actions/resolve-attributes-lambda.json"
)


def test_the_built_function_answers_a_rendered_data_action_event() -> None:
    if not (BUILD_DIR / "ResolveAttributesFunction" / "app.py").exists():
        pytest.fail("no sam build output for ResolveAttributesFunction: run `make build`")
    with (
        served_stack(parameter_overrides={"SyncContextFields": "ani"}) as stack,
        runtime_packages_dir() as runtime,
    ):
        conversation = stack.emulator.create_conversation(
            media_type="VOICE",
            participants=[{"purpose": "customer", "attributes": {}}, {"purpose": "ivr"}],
        )
        stack.external.add_rule(match={}, answer={"case_status": "open"})
        inputs = {"conversationId": conversation["id"], "ani": "tel:+1317", "write": True}
        event = json.loads(render_request(ACTION, inputs, {}).body)

        try:
            # the token first, as the schedule mints it (a child process cannot invoke the
            # refresher as Lambda would)
            run_built_function(stack, "TokenRefresherFunction", {"force": True}, runtime)
            report = run_built_function(stack, "ResolveAttributesFunction", event, runtime)
        finally:
            # moto's state is per process: leave none for the next served stack
            requests.post(f"{stack.aws_endpoint}/moto-api/reset", timeout=10)

        output = translate(ACTION, json.dumps(report["result"]))
        assert output["status"] == "written", report["stderr"]
        assert json.loads(output["attributesJson"]) == {"case_status": "open"}
        assert report["outside_build"] == []
        customer = conversation["participants"][0]["id"]
        assert stack.emulator.participant_attributes(conversation["id"], customer) == {
            "case_status": "open"
        }
        assert stack.external.received[-1]["context"] == {"ani": "tel:+1317"}
