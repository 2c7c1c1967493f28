"""`localdev doctor` against the local stack (template.yaml in moto, the Genesys emulator
over HTTP with the real SDK): all green on a healthy stack, and each check failing, with
the line saying what to fix, when its piece is broken."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.doctor import (
    PROBE_ATTRIBUTE,
    BotoAws,
    Deployment,
    LayerGenesys,
    Rule,
    deployment_from_cloudformation,
    doctor_main,
    local_deployment,
)
from localdev.sandbox import Sandbox, _client, sandbox

REPO = Path(__file__).resolve().parents[2]
CHECKS = [
    "SSM client id",
    "SSM client secret",
    "token",
    "conversation read",
    "test attribute PATCH",
    "partner event source",
    "rules",
    "dead-letter queues",
]


@pytest.fixture
def stack(box: Sandbox) -> Iterator[tuple[Sandbox, Deployment]]:
    with local_deployment(box) as deployment:
        yield box, deployment


def live_call(box: Sandbox, media_type: str = "VOICE") -> dict[str, Any]:
    conversation: dict[str, Any] = box.emulator.create_conversation(
        media_type=media_type,
        message_type="WEBMESSAGING" if media_type == "MESSAGE" else None,
        participants=[
            {"purpose": "customer", "attributes": {"case_id": "CASE-1"}},
            {"purpose": "ivr" if media_type == "VOICE" else "acd"},
        ],
    )
    return conversation


def run_doctor(
    deployment: Deployment, conversation_id: str, patch: bool = False
) -> tuple[int, dict[str, str]]:
    """Exit status, and each check's line by check name."""
    out = io.StringIO()
    args = argparse.Namespace(
        stack=deployment.stack_name,
        conversation=conversation_id,
        region=None,
        patch_test_attribute=patch,
    )
    status = doctor_main(
        args,
        deployment_for=lambda name: deployment,
        aws=BotoAws(_client),
        genesys_for=LayerGenesys,
        out=out,
    )
    lines = out.getvalue().splitlines()
    assert lines[0] == f"doctor: stack {deployment.stack_name} (stage dev)"
    by_check = {}
    for line in lines[1:]:
        name = line[7:].split(":", 1)[0]
        by_check[name] = line
    extra = [f"{client.name} token" for client in deployment.extra_clients]
    assert list(by_check) == CHECKS[:5] + extra + CHECKS[5:], lines
    return status, by_check


def only_failure(lines: dict[str, str]) -> list[str]:
    return [name for name, line in lines.items() if line.startswith("[FAIL]")]


def test_a_healthy_stack_passes_every_check(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    conversation = live_call(box)
    status, lines = run_doctor(deployment, conversation["id"])
    assert status == 0, lines
    assert all(line.startswith("[ok  ]") for name, line in lines.items() if "PATCH" not in name)
    assert lines["test attribute PATCH"].startswith("[skip]")
    assert "VOICE, live, 2 participants, a customer" in lines["conversation read"]
    assert "no stored token yet" in lines["token"]
    assert f"{len(deployment.rules)} enabled" in lines["rules"]
    assert len(deployment.rules) == len(box.template.rules) >= 4  # the template's rules
    assert "4 empty" in lines["dead-letter queues"]
    # Without the flag nothing was written.
    customer = conversation["participants"][0]["id"]
    assert PROBE_ATTRIBUTE not in box.emulator.participant_attributes(conversation["id"], customer)


@pytest.mark.parametrize("media_type", ["VOICE", "MESSAGE"])
def test_the_flag_writes_the_test_attribute_on_the_customer(
    stack: tuple[Sandbox, Deployment], media_type: str
) -> None:
    box, deployment = stack
    conversation = live_call(box, media_type)
    status, lines = run_doctor(deployment, conversation["id"], patch=True)
    assert status == 0, lines
    assert "read back" in lines["test attribute PATCH"]
    customer = conversation["participants"][0]["id"]
    attributes = box.emulator.participant_attributes(conversation["id"], customer)
    assert attributes["case_id"] == "CASE-1"  # merged, not replaced
    assert attributes[PROBE_ATTRIBUTE].isdigit()
    assert f"{media_type}, live" in lines["conversation read"]


def test_a_stored_token_is_reported(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    box.invoke("TokenRefresherFunction", {"force": True})
    _, lines = run_doctor(deployment, live_call(box)["id"])
    assert "the stored token works" in lines["token"]


def test_missing_client_secret(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    _client("ssm").delete_parameter(Name=deployment.client_secret_parameter)
    status, lines = run_doctor(deployment, live_call(box)["id"])
    assert status == 1
    assert only_failure(lines) == ["SSM client secret"]
    assert f"{deployment.client_secret_parameter} does not exist" in lines["SSM client secret"]
    assert "fix: apply Terraform stage 1 (genesys/terraform/connect)" in lines["SSM client secret"]
    assert lines["token"].startswith("[skip] token: not tried: the SSM credentials above failed")
    assert lines["conversation read"].startswith("[skip]")


def test_a_credential_stored_as_plain_string(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    _client("ssm").put_parameter(
        Name=deployment.client_id_parameter, Value="x", Type="String", Overwrite=True
    )
    status, lines = run_doctor(deployment, live_call(box)["id"])
    assert status == 1
    assert "is a String, not a SecureString" in lines["SSM client id"]
    assert "--type SecureString" in lines["SSM client id"]


def test_a_wrong_client_secret(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    _client("ssm").put_parameter(
        Name=deployment.client_secret_parameter,
        Value="not-the-secret",
        Type="SecureString",
        Overwrite=True,
    )
    status, lines = run_doctor(deployment, live_call(box)["id"])
    assert status == 1
    assert only_failure(lines) == ["token"]
    assert "refused the client credentials (401)" in lines["token"]
    assert "client_secret_version" in lines["token"]


def test_a_role_without_the_view_permission(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    conversation = live_call(box)
    box.emulator.inject_fault(
        method="GET", path_pattern=f"/api/v2/conversations/{conversation['id']}$", status=403
    )
    status, lines = run_doctor(deployment, conversation["id"], patch=True)
    assert status == 1
    assert only_failure(lines) == ["conversation read"]
    assert lines["test attribute PATCH"].startswith("[skip]")
    assert "refused (403)" in lines["conversation read"]
    assert "conversation:communication:view" in lines["conversation read"]
    assert "division_ids" in lines["conversation read"]


def test_an_unknown_conversation(stack: tuple[Sandbox, Deployment]) -> None:
    _, deployment = stack
    status, lines = run_doctor(deployment, "6f0a2c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b")
    assert status == 1
    assert "not found" in lines["conversation read"]
    assert "live conversation of this org and region" in lines["conversation read"]


def test_a_refused_patch(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    conversation = live_call(box)
    box.emulator.inject_fault(method="PATCH", path_pattern="/attributes$", status=403)
    status, lines = run_doctor(deployment, conversation["id"], patch=True)
    assert status == 1
    assert only_failure(lines) == ["test attribute PATCH"]
    assert "refused (403)" in lines["test attribute PATCH"]
    assert "genesyscloud_auth_role.service" in lines["test attribute PATCH"]


def test_an_ended_conversation_cannot_take_the_test_write(
    stack: tuple[Sandbox, Deployment],
) -> None:
    box, deployment = stack
    box.emulator.configure(ended_conversation_writes="not_found")
    conversation = live_call(box)
    box.emulator.end_conversation(conversation["id"])
    status, lines = run_doctor(deployment, conversation["id"], patch=True)
    assert status == 1
    assert "ended" in lines["conversation read"]
    assert "PATCH not applied: not_found" in lines["test attribute PATCH"]


def test_a_partner_event_source_genesys_never_created(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    other = "aws.partner/genesys.com/cloud/11111111-2222-3333-4444-555555555555/wrong-suffix"
    status, lines = run_doctor(
        dataclasses.replace(deployment, event_source_name=other), live_call(box)["id"]
    )
    assert status == 1
    assert only_failure(lines) == ["partner event source"]
    assert f"{other} does not exist" in lines["partner event source"]
    assert "terraform output partner_event_source_name" in lines["partner event source"]


def test_a_deleted_partner_event_source(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    _client("events").delete_partner_event_source(
        Name=deployment.event_source_name, Account="123456789012"
    )
    status, lines = run_doctor(deployment, live_call(box)["id"])
    assert status == 1
    assert "is DELETED, not associated" in lines["partner event source"]


def test_a_partner_event_source_without_its_bus(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    pending = "aws.partner/genesys.com/cloud/11111111-2222-3333-4444-555555555555/no-bus"
    _client("events").create_partner_event_source(Name=pending, Account="123456789012")
    status, lines = run_doctor(
        dataclasses.replace(deployment, event_source_name=pending), live_call(box)["id"]
    )
    assert status == 1
    assert "no event bus of that name exists" in lines["partner event source"]
    assert "CreateGenesysEventBus=true" in lines["partner event source"]


def test_a_disabled_rule(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    genesys_rule = next(r for r in deployment.rules if "GenesysConversationEvent" in r.name)
    _client("events").disable_rule(
        Name=genesys_rule.name, EventBusName=deployment.event_source_name
    )
    status, lines = run_doctor(deployment, live_call(box)["id"])
    assert status == 1
    assert only_failure(lines) == ["rules"]
    assert f"{genesys_rule.name} on {deployment.event_source_name} is DISABLED" in lines["rules"]
    assert f"aws events enable-rule --name {genesys_rule.name}" in lines["rules"]


def test_a_missing_rule(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    gone = dataclasses.replace(deployment, rules=(*deployment.rules, Rule("deleted-rule", None)))
    status, lines = run_doctor(gone, live_call(box)["id"])
    assert status == 1
    assert "deleted-rule is missing" in lines["rules"]
    assert "deploy the stack again" in lines["rules"]


def test_a_dead_letter_waiting(stack: tuple[Sandbox, Deployment]) -> None:
    box, deployment = stack
    box.send_dead_letter("PatchAttributesFunction", json.dumps({"detail": {}}))
    status, lines = run_doctor(deployment, live_call(box)["id"])
    assert status == 1
    assert only_failure(lines) == ["dead-letter queues"]
    assert "PatchAttributesDLQ holds 1 message(s)" in lines["dead-letter queues"]
    assert (
        "python scripts/replay_dead_letters.py --stack local --function PatchAttributesFunction"
        in lines["dead-letter queues"]
    )


def test_each_extra_oauth_client_is_minted_and_a_broken_one_named() -> None:
    """GenesysExtraClientCount=2: client-2 and client-3 each get a line; the one whose
    secret is missing fails, saying which parameter, and nothing else does."""
    with (
        sandbox(parameter_overrides={"GenesysExtraClientCount": "2"}) as box,
        local_deployment(box) as deployment,
    ):
        assert [c.name for c in deployment.extra_clients] == ["client-2", "client-3"]
        conversation = live_call(box)["id"]
        status, lines = run_doctor(deployment, conversation)
        assert status == 0, lines
        assert lines["client-2 token"].startswith(
            "[ok  ] client-2 token: /participant-attributes/dev/genesys/client-2/client-id "
            "and .../client-secret decrypt; minted"
        )
        assert lines["client-3 token"].startswith("[ok  ]")
        minted = box.emulator.counters()["tokens_minted_by_client"]
        assert minted["local-client-2-id"] == minted["local-client-3-id"] == 1

        broken = deployment.extra_clients[1].client_secret_parameter
        _client("ssm").delete_parameter(Name=broken)
        status, lines = run_doctor(deployment, conversation)
    assert status == 1
    assert only_failure(lines) == ["client-3 token"]
    assert f"SSM {broken} does not exist" in lines["client-3 token"]


def test_a_stack_that_cannot_be_read() -> None:
    out = io.StringIO()
    args = argparse.Namespace(
        stack="nope",
        conversation="6f0a2c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
        region=None,
        patch_test_attribute=False,
    )

    def no_stack(name: str) -> Deployment:
        raise LookupError(f"Stack with id {name} does not exist")

    status = doctor_main(args, deployment_for=no_stack, aws=BotoAws(_client), out=out)
    assert status == 1
    assert out.getvalue().startswith("[FAIL] stack: nope cannot be read")
    assert "samconfig.toml's stack_name" in out.getvalue()


def test_the_stack_is_read_from_cloudformation() -> None:
    """The real-use reader against moto's CloudFormation: parameters (empty SSM names
    mean the per-stage ones), dead-letter queues, rules and the app bus output."""
    from localdev.moto_aws import local_aws

    source = "aws.partner/genesys.com/cloud/0f5e2a94-7c1b-4f0e-9a63-2b8d1c4e6f70/pa-prod"
    template = {
        "Parameters": {
            name: {"Type": "String", "Default": ""}
            for name in (
                "Stage",
                "GenesysRegion",
                "GenesysEventSourceName",
                "GenesysClientIdParameter",
                "GenesysClientSecretParameter",
                "GenesysTokenParameter",
                "GenesysExtraClientCount",
            )
        },
        "Resources": {
            "FetchAttributesDLQ": {"Type": "AWS::SQS::Queue"},
            "NotADeadLetterQueue": {"Type": "AWS::SQS::Queue"},
            "AppEventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "app-prod"}},
            "SyncRule": {
                "Type": "AWS::Events::Rule",
                "DependsOn": "AppEventBus",
                "Properties": {"EventBusName": "app-prod", "EventPattern": {"source": ["x"]}},
            },
        },
        "Outputs": {"AppEventBusName": {"Value": "app-prod"}},
    }
    with local_aws():
        import boto3

        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        cloudformation.create_stack(
            StackName="participant-attributes-prod",
            TemplateBody=json.dumps(template),
            Parameters=[
                {"ParameterKey": "Stage", "ParameterValue": "prod"},
                {"ParameterKey": "GenesysRegion", "ParameterValue": "mypurecloud.de"},
                {"ParameterKey": "GenesysEventSourceName", "ParameterValue": source},
                {"ParameterKey": "GenesysTokenParameter", "ParameterValue": "/custom/token"},
                {"ParameterKey": "GenesysExtraClientCount", "ParameterValue": "1"},
            ],
        )
        deployment = deployment_from_cloudformation(cloudformation, "participant-attributes-prod")
        events = boto3.client("events", region_name="us-east-1")
        found = BotoAws(lambda service: events).rule_state(
            deployment.rules[0], deployment.event_buses
        )
    assert deployment.stage == "prod"
    assert deployment.genesys_region == "mypurecloud.de"
    assert deployment.client_id_parameter == "/participant-attributes/prod/genesys/client-id"
    assert deployment.client_secret_parameter == (
        "/participant-attributes/prod/genesys/client-secret"
    )
    assert deployment.token_parameter == "/custom/token"
    (extra,) = deployment.extra_clients
    assert (extra.name, extra.client_id_parameter, extra.client_secret_parameter) == (
        "client-2",
        "/participant-attributes/prod/genesys/client-2/client-id",
        "/participant-attributes/prod/genesys/client-2/client-secret",
    )
    assert deployment.event_source_name == source
    assert deployment.event_buses == (source, "app-prod", "default")
    assert list(deployment.dead_letter_queues) == ["FetchAttributesDLQ"]
    assert deployment.dead_letter_queues["FetchAttributesDLQ"].startswith("https://")
    assert len(deployment.rules) == 1
    assert found == ("app-prod", "ENABLED")


def _doctor_process(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localdev", "doctor", *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--stack", "s"), "the following arguments are required: --conversation"),
        (("--stack", "s", "--conversation", "nope"), "must be a conversation id (UUID)"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(arguments: tuple[str, ...], message: str) -> None:
    result = _doctor_process(*arguments)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr


def test_the_command_reads_a_cloudformation_stack_end_to_end(
    stack: tuple[Sandbox, Deployment], capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m localdev doctor` as an operator runs it, with nothing injected: the
    stack comes from (moto's) CloudFormation, AWS from boto3, Genesys from the layer."""
    from localdev.__main__ import main

    box, local = stack
    template = {
        "Parameters": {
            name: {"Type": "String"}
            for name in (
                "Stage",
                "GenesysRegion",
                "GenesysEventSourceName",
                "GenesysClientIdParameter",
                "GenesysClientSecretParameter",
                "GenesysTokenParameter",
                "GenesysExtraClientCount",
            )
        },
        "Resources": {
            "SyncExternalDLQ": {"Type": "AWS::SQS::Queue"},
            "SyncRule": {
                "Type": "AWS::Events::Rule",
                "Properties": {"EventBusName": "AppEventBus", "EventPattern": {"source": ["x"]}},
            },
        },
        "Outputs": {"AppEventBusName": {"Value": "AppEventBus"}},
    }
    values = {
        "Stage": "dev",
        "GenesysRegion": box.emulator.base_url,
        "GenesysEventSourceName": local.event_source_name,
        "GenesysClientIdParameter": local.client_id_parameter,
        "GenesysClientSecretParameter": local.client_secret_parameter,
        "GenesysTokenParameter": local.token_parameter,
        "GenesysExtraClientCount": "0",
    }
    _client("cloudformation").create_stack(
        StackName="participant-attributes-dev",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
    )
    conversation = live_call(box, "MESSAGE")
    arguments = ["doctor", "--stack", "participant-attributes-dev", "--region", "us-east-1"]
    status = main([*arguments, "--conversation", conversation["id"], "--patch-test-attribute"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0, lines
    assert lines[0] == "doctor: stack participant-attributes-dev (stage dev)"
    assert [line[:6] for line in lines[1:]] == ["[ok  ]"] * 8
    assert "rules: 1 enabled" in lines[7] and "dead-letter queues: 1 empty" in lines[8]

    status = main([*arguments, "--conversation", conversation["id"], "--stack", "missing"])
    assert status == 1
    assert capsys.readouterr().out.startswith("[FAIL] stack: missing cannot be read")
