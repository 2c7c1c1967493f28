"""Operational wiring held by template.yaml: no event can fall between two functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from localdev.template import _load_yaml, load_template

REPO = Path(__file__).resolve().parents[2]
RAW: dict[str, Any] = _load_yaml((REPO / "template.yaml").read_text())
RESOURCES: dict[str, Any] = RAW["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
ASYNC_FUNCTIONS = [
    name
    for name, fn in FUNCTIONS.items()
    if any(
        e["Type"] in ("EventBridgeRule", "Schedule")
        for e in fn["Properties"].get("Events", {}).values()
    )
]


def test_the_functions_the_design_names_exist() -> None:
    assert set(FUNCTIONS) == {
        "FetchAttributesFunction",
        "SyncExternalFunction",
        "PatchAttributesFunction",
        "TokenRefresherFunction",
        "AttributesApiFunction",
        "ResolveAttributesFunction",
    }


@pytest.mark.parametrize("function_id", ASYNC_FUNCTIONS)
def test_async_functions_retry_boundedly_then_dead_letter(function_id: str) -> None:
    config = FUNCTIONS[function_id]["Properties"]["EventInvokeConfig"]
    assert 0 <= config["MaximumRetryAttempts"] <= 2
    assert config["MaximumEventAgeInSeconds"] <= 6 * 3600
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    queue = on_failure["Destination"]["Fn::GetAtt"][0]
    assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue"
    env = FUNCTIONS[function_id]["Properties"]["Environment"]["Variables"]
    assert env["DEAD_LETTER_QUEUE_URL"] == {"Ref": queue}, "rejected events go to the same DLQ"


@pytest.mark.parametrize("function_id", ASYNC_FUNCTIONS)
def test_every_rule_target_has_a_retry_policy_and_a_dead_letter_queue(function_id: str) -> None:
    for name, event in FUNCTIONS[function_id]["Properties"]["Events"].items():
        properties = event["Properties"]
        assert properties["RetryPolicy"]["MaximumRetryAttempts"] >= 1, name
        queue = properties["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue", name
        # EventBridge may send to it for this very rule (SAM names the rule function + event)
        (statement,) = [
            s
            for s in RESOURCES[f"{queue}Policy"]["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Allow"
        ]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        rules = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        assert {"Fn::GetAtt": [f"{function_id}{name}", "Arn"]} in rules, name


def test_genesys_rule_listens_on_the_partner_bus_and_internal_rules_on_the_app_bus() -> None:
    events = FUNCTIONS["FetchAttributesFunction"]["Properties"]["Events"]
    genesys_bus = events["GenesysConversationEvent"]["Properties"]["EventBusName"]
    assert genesys_bus["Fn::If"][0] == "CreateGenesysBus"
    for function_id in ("SyncExternalFunction", "PatchAttributesFunction"):
        for event in FUNCTIONS[function_id]["Properties"]["Events"].values():
            assert event["Properties"]["EventBusName"] == {"Ref": "AppEventBus"}


def test_partner_bus_is_created_from_the_event_source_when_asked() -> None:
    bus = RESOURCES["GenesysEventBus"]
    assert bus["Condition"] == "CreateGenesysBus"
    assert bus["Properties"]["Name"] == {"Ref": "GenesysEventSourceName"}
    assert bus["Properties"]["EventSourceName"] == {"Ref": "GenesysEventSourceName"}


def test_the_idempotency_table_expires_its_items() -> None:
    for table in ("IdempotencyTable",):
        ttl = RESOURCES[table]["Properties"]["TimeToLiveSpecification"]
        assert ttl == {"AttributeName": "expiration", "Enabled": True}


def test_genesys_callers_have_bounded_concurrency() -> None:
    for function_id in ("FetchAttributesFunction", "PatchAttributesFunction"):
        properties = FUNCTIONS[function_id]["Properties"]
        assert properties["ReservedConcurrentExecutions"] == {"Ref": "GenesysConcurrency"}


def test_samconfig_has_default_and_a_named_environment_with_lint() -> None:
    import tomllib

    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    assert config["default"]["validate"]["parameters"]["lint"] is True
    assert "prod" in config and config["prod"]["deploy"]["parameters"]["parameter_overrides"]


ON_CALL_TOPIC = "arn:aws:sns:eu-west-1:123456789012:on-call"
QUEUES = sorted(k for k, v in RESOURCES.items() if v["Type"] == "AWS::SQS::Queue")
ALARMS = {k: v["Properties"] for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"}


@pytest.mark.parametrize("queue", QUEUES)
def test_a_message_in_any_dead_letter_queue_raises_an_alarm(queue: str) -> None:
    watching = [
        alarm
        for alarm in ALARMS.values()
        if alarm.get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    ]
    assert len(watching) == 1, f"{queue}: one alarm watches it"
    (alarm,) = watching
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0
    assert alarm["Period"] * alarm["EvaluationPeriods"] <= 300  # within five minutes
    assert alarm["TreatMissingData"] == "notBreaching"  # an idle queue sends no data


@pytest.mark.parametrize(("topic", "actions"), [("", None), (ON_CALL_TOPIC, [ON_CALL_TOPIC])])
def test_dead_letter_alarms_notify_the_topic_when_one_is_given(
    topic: str, actions: list[str] | None
) -> None:
    template = load_template(REPO / "template.yaml", parameter_overrides={"AlarmTopicArn": topic})

    assert ALARMS
    for name, alarm in ALARMS.items():
        resolved = template.resolve(alarm)
        assert resolved.get("AlarmActions") == actions, name
        assert resolved.get("OKActions") == actions, name
