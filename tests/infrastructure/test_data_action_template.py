"""What template.yaml holds for the data-action path: the role Genesys Cloud assumes (its
account, your org id as the external id, this one function), ResolveAttributesFunction's
own grants and wiring, and the parameters that bound it. Only checked on the template
here: no AWS account or Genesys org is at hand (README says how to check once deployed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from localdev.template import _load_yaml, load_template

REPO = Path(__file__).resolve().parents[2]
RAW: dict[str, Any] = _load_yaml((REPO / "template.yaml").read_text(encoding="utf-8"))
RESOURCES: dict[str, Any] = RAW["Resources"]
PARAMETERS: dict[str, Any] = RAW["Parameters"]
ROLE = RESOURCES["GenesysDataActionRole"]
FUNCTION = RESOURCES["ResolveAttributesFunction"]
ORG_ID = "3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d"


def test_genesys_cloud_assumes_the_role_only_with_the_org_id_as_external_id() -> None:
    (statement,) = ROLE["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {
        "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${GenesysCloudAccountId}:root"}
    }
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "GenesysOrgId"}}}
    resolved = load_template(
        REPO / "template.yaml", parameter_overrides={"GenesysOrgId": ORG_ID}
    ).resolve(statement)
    assert resolved["Principal"] == {"AWS": "arn:aws:iam::765628985471:root"}
    assert resolved["Condition"]["StringEquals"]["sts:ExternalId"] == ORG_ID


def test_the_role_may_invoke_this_one_function_and_nothing_else() -> None:
    properties = ROLE["Properties"]
    assert "ManagedPolicyArns" not in properties and "PermissionsBoundary" not in properties
    (policy,) = properties["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]

    assert statement == {
        "Sid": "InvokeResolveAttributes",
        "Effect": "Allow",
        "Action": "lambda:InvokeFunction",
        "Resource": {"Fn::GetAtt": ["ResolveAttributesFunction", "Arn"]},
    }
    others = [k for k, v in RESOURCES.items() if v["Type"] == "AWS::IAM::Role"]
    assert others == ["GenesysDataActionRole"]


@pytest.mark.parametrize(("org_id", "created"), [(None, False), (ORG_ID, True)])
def test_no_role_exists_until_the_org_id_is_given(org_id: str | None, created: bool) -> None:
    overrides = {"GenesysOrgId": org_id} if org_id else {}
    template = load_template(REPO / "template.yaml", parameter_overrides=overrides)

    assert ROLE["Condition"] == "HasGenesysOrgId"
    assert template.condition("HasGenesysOrgId") is created
    assert RAW["Outputs"]["GenesysDataActionRoleArn"]["Condition"] == "HasGenesysOrgId"
    assert re.fullmatch(PARAMETERS["GenesysOrgId"]["AllowedPattern"], ORG_ID)
    assert not re.fullmatch(PARAMETERS["GenesysOrgId"]["AllowedPattern"], "my-org")


def test_the_outputs_give_what_genesys_needs() -> None:
    outputs = RAW["Outputs"]
    assert outputs["ResolveAttributesFunctionArn"]["Value"] == {
        "Fn::GetAtt": ["ResolveAttributesFunction", "Arn"]
    }
    assert outputs["GenesysDataActionRoleArn"]["Value"] == {
        "Fn::GetAtt": ["GenesysDataActionRole", "Arn"]
    }
    assert PARAMETERS["GenesysCloudAccountId"]["Default"] == "765628985471"


def test_the_function_may_emit_only_patched_events_on_the_app_bus() -> None:
    (policy,) = FUNCTION["Properties"]["Policies"]
    (emit,) = [s for s in policy["Statement"] if s.get("Action") == "events:PutEvents"]

    assert emit["Resource"] == {"Fn::GetAtt": ["AppEventBus", "Arn"]}
    assert emit["Condition"] == {
        "StringEquals": {
            "events:detail-type": ["ParticipantAttributesPatched"],
            "events:source": "participant-attributes",
        }
    }


def test_invoked_synchronously_it_has_no_async_retry_but_a_log_group_and_an_alarm() -> None:
    properties = FUNCTION["Properties"]
    assert "EventInvokeConfig" not in properties and "Events" not in properties
    assert "DEAD_LETTER_QUEUE_URL" not in properties["Environment"]["Variables"]
    logs = RESOURCES["ResolveAttributesLogs"]["Properties"]
    assert logs["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${ResolveAttributesFunction}"}
    alarm = RESOURCES["ResolveAttributesErrorsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "ResolveAttributesFunction"}}
    ]


def test_the_budget_always_ends_before_the_function_does() -> None:
    budget = PARAMETERS["ResolveBudgetSeconds"]
    assert budget["MinValue"] >= 1
    assert budget["MaxValue"] + 1 < FUNCTION["Properties"]["Timeout"]
    # the API's function answers POST /resolve with the same budget inside its own timeout
    api_timeout = RAW["Globals"]["Function"]["Timeout"]
    assert budget["Default"] + 1 < api_timeout
    environment = FUNCTION["Properties"]["Environment"]["Variables"]
    assert environment["RESOLVE_BUDGET_SECONDS"] == {"Ref": "ResolveBudgetSeconds"}


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("ani", True),
        ("ani,dnis,direction,queueId,externalContactId,addressFrom,addressTo,messageType", True),
        ("ani,password", False),
        ("ani, dnis", False),
        ("attributes", False),
    ],
)
def test_only_known_context_fields_can_be_configured(value: str, accepted: bool) -> None:
    from attribute_bridge.call_context import KNOWN_CONTEXT_FIELDS

    declared = PARAMETERS["SyncContextFields"]
    assert declared["Default"] == ""  # personal data: none unless asked for
    assert bool(re.fullmatch(declared["AllowedPattern"], value)) is accepted
    assert re.fullmatch(declared["AllowedPattern"], ",".join(KNOWN_CONTEXT_FIELDS))


def test_every_function_knows_the_context_fields_from_one_parameter() -> None:
    globals_env = RAW["Globals"]["Function"]["Environment"]["Variables"]
    assert globals_env["SYNC_CONTEXT_FIELDS"] == {"Ref": "SyncContextFields"}


def test_the_resolve_route_is_on_the_authenticated_api() -> None:
    event = RESOURCES["AttributesApiFunction"]["Properties"]["Events"]["ResolveAttributes"]
    assert event == {
        "Type": "Api",
        "Properties": {
            "RestApiId": {"Ref": "AttributesApi"},
            "Path": "/conversations/{conversationId}/resolve",
            "Method": "POST",
            # with Cognito, the sync scope: resolve is a sync now (docs/SECURITY.md)
            "Auth": {
                "Fn::If": [
                    "ApiUsesCognito",
                    {"Authorizer": "ApiConsumers", "AuthorizationScopes": ["attributes/sync"]},
                    {"Ref": "AWS::NoValue"},
                ]
            },
        },
    }
