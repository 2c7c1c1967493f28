"""localdev.template (and the `route` command) against small templates written per test."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from localdev.routing import route_main
from localdev.template import Template, TemplateError, load_template


def write_template(directory: Path, body: str) -> Path:
    path = directory / "template.yaml"
    path.write_text(
        "AWSTemplateFormatVersion: 2010-09-09\n"
        "Transform: AWS::Serverless-2016-10-31\n" + textwrap.dedent(body),
        encoding="utf-8",
    )
    return path


def load(tmp_path: Path, body: str, **kwargs: Any) -> Template:
    return load_template(write_template(tmp_path, body), **kwargs)


GENESYS_SOURCE = "aws.partner/genesys.com/cloud/org-1/topics"

# A template shaped like the project's: partner-bus rules by topic, a false-condition
# function, Globals, a layer, both kinds of rule.
ROUTING_TEMPLATE = """
Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  StartTopics:
    Type: CommaDelimitedList
    Default: "v2.conversations.{id}.customer.start , v2.conversations.{id}.callback.start"
  PartnerBusName:
    Type: String
    Default: aws.partner/genesys.com/cloud/org-1/topics
  TimeoutSeconds:
    Type: Number
    Default: 7
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsNotProd: !Not [!Condition IsProd]
Globals:
  Function:
    Runtime: python3.12
    Timeout: !Ref TimeoutSeconds
    MemorySize: 256
    Layers: [!Ref SharedLayer]
    Environment:
      Variables:
        STAGE: !Ref Stage
        LOG_LEVEL: INFO
Resources:
  SharedLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/shared
  WorkQueue:
    Type: AWS::SQS::Queue
  OnStart:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/on_start
      Handler: app.lambda_handler
      Timeout: 30
      Environment:
        Variables:
          LOG_LEVEL: DEBUG
          QUEUE_URL: !Ref WorkQueue
          QUEUE_ARN: !GetAtt WorkQueue.Arn
          TOPICS: !Ref StartTopics
          RETRIES: 3
          ENABLED: true
          PROD_ONLY: !If [IsProd, "yes", !Ref AWS::NoValue]
      Events:
        Start:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref PartnerBusName
            Pattern:
              source: [{prefix: aws.partner/genesys.com}]
              detail-type: !Ref StartTopics
  OnVoice:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/on_voice
      Handler: app.lambda_handler
      Events:
        Voice:
          Type: CloudWatchEvent
          Properties:
            EventBusName: !Ref PartnerBusName
            Pattern:
              source: [{prefix: aws.partner/genesys.com}]
              detail:
                eventBody:
                  participants:
                    sessions:
                      mediaType: [voice]
  OnEnd:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/on_end
      Handler: app.lambda_handler
  EndRule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref PartnerBusName
      EventPattern:
        source: [{prefix: aws.partner/genesys.com}]
        detail-type: [{suffix: .end}]
      Targets:
        - Id: end
          Arn: !GetAtt OnEnd.Arn
        - Id: queue
          Arn: !GetAtt WorkQueue.Arn
  ProdAudit:
    Type: AWS::Serverless::Function
    Condition: IsProd
    Properties:
      CodeUri: functions/audit
      Handler: app.lambda_handler
      Events:
        All:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [{prefix: aws.partner}]
  DevAudit:
    Type: AWS::Events::Rule
    Condition: IsNotProd
    Properties:
      EventPattern: {source: [{prefix: aws.partner}], detail-type: [{suffix: .audit}]}
      Targets: [{Id: t, Arn: !GetAtt OnEnd.Arn}]
"""


def genesys_event(topic: str, **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": topic,
        "source": GENESYS_SOURCE,
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


@pytest.fixture
def routing_template(tmp_path: Path) -> Template:
    return load(tmp_path, ROUTING_TEMPLATE)


def test_parameters_defaults_are_resolved_and_typed(routing_template: Template) -> None:
    assert routing_template.parameters == {
        "Stage": "dev",
        "StartTopics": [
            "v2.conversations.{id}.customer.start",
            "v2.conversations.{id}.callback.start",
        ],
        "PartnerBusName": GENESYS_SOURCE,
        "TimeoutSeconds": "7",  # CloudFormation hands a Number parameter out as a string
    }


def test_functions_listed_and_false_condition_omitted(routing_template: Template) -> None:
    assert sorted(routing_template.functions) == ["OnEnd", "OnStart", "OnVoice"]


def test_function_settings_from_function_then_globals(routing_template: Template) -> None:
    on_start = routing_template.functions["OnStart"]
    assert on_start.code_uri == "functions/on_start"
    assert on_start.handler == "app.lambda_handler"
    assert on_start.timeout == 30  # the function's own
    assert on_start.memory_size == 256  # from Globals
    assert routing_template.functions["OnVoice"].timeout == 7  # Globals, via a Number Ref
    assert on_start.layers == ["SharedLayer"]
    assert routing_template.layers["SharedLayer"].content_uri == "layers/shared"


def test_environment_merges_globals_and_stringifies(routing_template: Template) -> None:
    assert routing_template.functions["OnStart"].environment == {
        "STAGE": "dev",
        "LOG_LEVEL": "DEBUG",  # the function overrides Globals
        "QUEUE_URL": "WorkQueue",
        "QUEUE_ARN": "arn:aws:sqs:us-east-1:123456789012:WorkQueue",
        "TOPICS": "v2.conversations.{id}.customer.start,v2.conversations.{id}.callback.start",
        "RETRIES": "3",
        "ENABLED": "true",
        # PROD_ONLY: Fn::If chose AWS::NoValue, so the key is gone
    }
    assert routing_template.functions["OnEnd"].environment == {"STAGE": "dev", "LOG_LEVEL": "INFO"}


def test_rules_from_sam_events_and_events_rule_resources(routing_template: Template) -> None:
    on_start = routing_template.functions["OnStart"].rules
    assert [(r.name, r.event_bus, r.target_function) for r in on_start] == [
        ("Start", GENESYS_SOURCE, "OnStart")
    ]
    assert on_start[0].pattern == {
        "source": [{"prefix": "aws.partner/genesys.com"}],
        "detail-type": [
            "v2.conversations.{id}.customer.start",
            "v2.conversations.{id}.callback.start",
        ],
    }
    assert [r.name for r in routing_template.functions["OnVoice"].rules] == ["Voice"]
    # EndRule targets OnEnd and a queue: only the function counts. DevAudit's condition holds.
    assert [(r.name, r.target_function) for r in routing_template.functions["OnEnd"].rules] == [
        ("EndRule", "OnEnd"),
        ("DevAudit", "OnEnd"),
    ]
    assert {r.name for r in routing_template.rules} == {"Start", "Voice", "EndRule", "DevAudit"}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (genesys_event("v2.conversations.{id}.customer.start"), ["OnStart"]),
        (genesys_event("v2.conversations.{id}.callback.start"), ["OnStart"]),
        (genesys_event("v2.conversations.{id}.customer.end"), ["OnEnd"]),
        (genesys_event("x.audit"), ["OnEnd"]),
        (
            genesys_event(
                "v2.conversations.{id}.customer.start",
                eventBody={"participants": [{"sessions": [{"mediaType": "voice"}]}]},
            ),
            ["OnStart", "OnVoice"],
        ),
        (genesys_event("v2.conversations.{id}.customer.other"), []),
        ({**genesys_event("v2.conversations.{id}.customer.start"), "source": "my.app"}, []),
    ],
)
def test_route(routing_template: Template, event: dict[str, Any], expected: list[str]) -> None:
    assert routing_template.route(event) == expected
    assert sorted({r.target_function for r in routing_template.rules_matching(event)}) == expected


def test_overrides_switch_conditions_and_values(tmp_path: Path) -> None:
    template = load(
        tmp_path,
        ROUTING_TEMPLATE,
        parameter_overrides={"Stage": "prod", "StartTopics": "a.start,  b.start"},
    )
    assert sorted(template.functions) == ["OnEnd", "OnStart", "OnVoice", "ProdAudit"]
    assert template.parameters["StartTopics"] == ["a.start", "b.start"]
    assert template.functions["OnStart"].rules[0].pattern["detail-type"] == ["a.start", "b.start"]
    assert template.functions["OnStart"].environment["PROD_ONLY"] == "yes"
    assert [r.name for r in template.functions["OnEnd"].rules] == ["EndRule"]  # DevAudit gone
    assert template.route(genesys_event("a.start")) == ["OnStart", "ProdAudit"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Nope": "x"}, "undeclared"),
        ({"Stage": "qa"}, "AllowedValues"),
    ],
)
def test_bad_overrides_are_refused(tmp_path: Path, overrides: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        load(tmp_path, ROUTING_TEMPLATE, parameter_overrides=overrides)


def test_parameter_without_default_needs_an_override(tmp_path: Path) -> None:
    body = """
    Parameters:
      Secret: {Type: String}
    Resources:
      Fn:
        Type: AWS::Serverless::Function
        Properties: {CodeUri: f, Handler: app.h, Environment: {Variables: {S: !Ref Secret}}}
    """
    with pytest.raises(TemplateError, match="Secret"):
        load(tmp_path, body)
    template = load(tmp_path, body, parameter_overrides={"Secret": "s3cr3t"})
    assert template.functions["Fn"].environment == {"S": "s3cr3t"}


def test_list_parameter_inside_a_pattern_list_is_flattened(tmp_path: Path) -> None:
    template = load(
        tmp_path,
        """
        Parameters:
          Topics: {Type: CommaDelimitedList, Default: "a,b"}
          Sources: {Type: "List<String>", Default: "s1, s2"}
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: f
              Handler: app.h
              Events:
                E:
                  Type: EventBridgeRule
                  Properties:
                    Pattern:
                      source: !Ref Sources
                      detail-type: [!Ref Topics, "c", {prefix: "d."}]
        """,
    )
    assert template.functions["Fn"].rules[0].pattern == {
        "source": ["s1", "s2"],
        "detail-type": ["a", "b", "c", {"prefix": "d."}],
    }
    assert template.route({"source": "s2", "detail-type": "b"}) == ["Fn"]
    assert template.route({"source": "s2", "detail-type": "d.x"}) == ["Fn"]
    assert template.route({"source": "s3", "detail-type": "b"}) == []


def test_intrinsic_functions(tmp_path: Path) -> None:
    template = load(
        tmp_path,
        """
        Parameters:
          Env: {Type: String, Default: dev}
          Names: {Type: CommaDelimitedList, Default: "x,y,z"}
          Started: {Type: String, Default: 2024-01-02}
        Mappings:
          Sizes:
            dev: {memory: 512}
        Conditions:
          Both: !And [!Equals [!Ref Env, dev], !Not [!Equals [!Ref "AWS::Region", eu-west-1]]]
          Either: !Or [!Equals [a, b], !Condition Both]
        Resources:
          Queue:
            Type: AWS::SQS::Queue
          Bus:
            Type: AWS::Events::EventBus
            Properties: {Name: bus}
          Table:
            Type: AWS::DynamoDB::Table
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: f
              Handler: app.h
              MemorySize: !FindInMap [Sizes, !Ref Env, memory]
              Environment:
                Variables:
                  SUB: !Sub "${AWS::StackName}-${Env}-${AWS::Region}-${AWS::AccountId}-${Queue}"
                  SUB_ATT: !Sub "${Queue.Arn}|${Bus.Name}|${!Literal}"
                  SUB_LIST: !Sub ["${A}/${B}", {A: !Ref Env, B: !GetAtt Table.Arn}]
                  GETATT_LIST: !GetAtt [Queue, Arn]
                  GETATT_LONG: {"Fn::GetAtt": [Bus, Arn]}
                  GETATT_OTHER: !GetAtt Queue.QueueUrl
                  FN_ARN: !GetAtt Fn.Arn
                  ROLE: !GetAtt Fn.Arn
                  JOIN: !Join ["-", [a, !Ref Env, 3]]
                  JOIN_LIST: !Join [":", !Ref Names]
                  SELECT: !Select [1, !Ref Names]
                  SPLIT_SELECT: !Select [2, !Split [",", "p,q,r"]]
                  IF: !If [Either, "on", "off"]
                  IMPORT: !ImportValue {"Fn::Sub": "${Env}-export"}
                  PARTITION: !Ref AWS::Partition
                  STARTED: !Ref Started
        """,
        stack_name="stack",
    )
    function = template.functions["Fn"]
    assert function.memory_size == 512
    assert function.environment == {
        "SUB": "stack-dev-us-east-1-123456789012-Queue",
        "SUB_ATT": "arn:aws:sqs:us-east-1:123456789012:Queue|Bus|${Literal}",
        "SUB_LIST": "dev/arn:aws:dynamodb:us-east-1:123456789012:table/Table",
        "GETATT_LIST": "arn:aws:sqs:us-east-1:123456789012:Queue",
        "GETATT_LONG": "arn:aws:events:us-east-1:123456789012:event-bus/Bus",
        "GETATT_OTHER": "Queue.QueueUrl",
        "FN_ARN": "arn:aws:lambda:us-east-1:123456789012:function:Fn",
        "ROLE": "arn:aws:lambda:us-east-1:123456789012:function:Fn",
        "JOIN": "a-dev-3",
        "JOIN_LIST": "x:y:z",
        "SELECT": "y",
        "SPLIT_SELECT": "r",
        "IF": "on",
        "IMPORT": "dev-export",
        "PARTITION": "aws",
        "STARTED": "2024-01-02",  # YAML dates stay strings, as in CloudFormation
    }
    assert template.condition("Both") is True
    assert template.resolve({"Fn::If": ["Both", {"Ref": "Env"}, "no"]}) == "dev"


def test_resource_names_map_refs_arns_and_rule_targets(tmp_path: Path) -> None:
    body = """
    Resources:
      Queue:
        Type: AWS::SQS::Queue
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: f
          Handler: app.h
          Environment: {Variables: {Q: !Ref Queue, QA: !GetAtt Queue.Arn}}
      Rule:
        Type: AWS::Events::Rule
        Properties:
          EventPattern: {source: [app]}
          Targets: [{Id: fn, Arn: !GetAtt Fn.Arn}]
    """
    template = load(tmp_path, body, resource_names={"Queue": "local-queue", "Fn": "local-fn"})
    assert template.functions["Fn"].environment == {
        "Q": "local-queue",
        "QA": "arn:aws:sqs:us-east-1:123456789012:local-queue",
    }
    assert template.route({"source": "app"}) == ["Fn"]


def test_events_rule_targets_by_arn_forms_and_skipped_rules(tmp_path: Path) -> None:
    template = load(
        tmp_path,
        """
        Parameters:
          RuleState: {Type: String, Default: DISABLED}
        Conditions:
          Never: !Equals [a, b]
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: f, Handler: app.h}
          ByRef:
            Type: AWS::Events::Rule
            Properties:
              EventBusName: !Sub "arn:aws:events:${AWS::Region}:${AWS::AccountId}:event-bus/mine"
              EventPattern: {source: [by-ref]}
              Targets: [{Id: a, Arn: !Ref Fn}]
          BySub:
            Type: AWS::Events::Rule
            Properties:
              EventBusName: default
              EventPattern: '{"source": ["by-sub"], "detail": {"gone": [null]}}'
              Targets:
                - Id: a
                  Arn: !Sub "arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:function:${Fn}:live"
          ByIf:
            Type: AWS::Events::Rule
            Properties:
              EventPattern: {source: [by-if]}
              Targets: !If [Never, [], [{Id: a, Arn: !GetAtt Fn.Arn}]]
          Disabled:
            Type: AWS::Events::Rule
            Properties:
              State: !Ref RuleState
              EventPattern: {source: [by-ref]}
              Targets: [{Id: a, Arn: !GetAtt Fn.Arn}]
          Scheduled:
            Type: AWS::Events::Rule
            Properties:
              ScheduleExpression: rate(5 minutes)
              Targets: [{Id: a, Arn: !GetAtt Fn.Arn}]
          Conditional:
            Type: AWS::Events::Rule
            Condition: Never
            Properties:
              EventPattern: {source: [by-ref]}
              Targets: [{Id: a, Arn: !GetAtt Fn.Arn}]
          OtherLambda:
            Type: AWS::Events::Rule
            Properties:
              EventPattern: {source: [by-ref]}
              Targets: [{Id: a, Arn: "arn:aws:lambda:us-east-1:123456789012:function:elsewhere"}]
        """,
    )
    rules = template.functions["Fn"].rules
    assert [(r.name, r.event_bus) for r in rules] == [
        ("ByRef", "mine"),
        ("BySub", None),
        ("ByIf", None),
    ]
    assert rules[1].pattern == {"source": ["by-sub"], "detail": {"gone": [None]}}
    assert template.route({"source": "by-sub", "detail": {"gone": None}}) == ["Fn"]
    assert template.route({"source": "by-sub", "detail": {}}) == []
    assert template.route({"source": "by-if"}) == ["Fn"]
    assert [r.name for r in template.rules_matching({"source": "by-ref"})] == ["ByRef"]


def test_sam_event_types_and_disabled_events(tmp_path: Path) -> None:
    template = load(
        tmp_path,
        """
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: f
              Handler: app.h
              Events:
                Api:
                  Type: Api
                  Properties: {Path: /, Method: get}
                Tick:
                  Type: Schedule
                  Properties: {Schedule: rate(1 minute)}
                Disabled:
                  Type: EventBridgeRule
                  Properties: {State: DISABLED, Pattern: {source: [app]}}
                Enabled:
                  Type: EventBridgeRule
                  Properties: {Pattern: {source: [app]}, EventBusName: default}
        """,
    )
    assert [(r.name, r.event_bus) for r in template.functions["Fn"].rules] == [("Enabled", None)]


def test_defaults_without_globals(tmp_path: Path) -> None:
    template = load(
        tmp_path,
        """
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              InlineCode: "def h(e, c): pass"
              Handler: index.h
              Layers: ["arn:aws:lambda:us-east-1:123456789012:layer:x:1"]
        """,
    )
    function = template.functions["Fn"]
    assert (function.code_uri, function.timeout, function.memory_size) == ("", 3, 128)
    assert function.environment == {}
    assert function.layers == []  # only the template's own layers are listed
    assert function.rules == []
    assert template.route({"source": "anything"}) == []


IF_PATTERN_TEMPLATE = """
Parameters:
  Stage: {Type: String, Default: dev}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: f
      Handler: app.h
      Events:
        E:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [app]
              detail-type: !If [IsProd, [prod.x], [dev.x, !Sub "${Stage}.y"]]
              detail:
                kind: [call]
                debug: !If [IsProd, !Ref AWS::NoValue, [{exists: true}]]
"""


@pytest.mark.parametrize(
    ("stage", "pattern"),
    [
        (
            "dev",
            {
                "source": ["app"],
                "detail-type": ["dev.x", "dev.y"],
                "detail": {"kind": ["call"], "debug": [{"exists": True}]},
            },
        ),
        ("prod", {"source": ["app"], "detail-type": ["prod.x"], "detail": {"kind": ["call"]}}),
    ],
)
def test_fn_if_inside_patterns(tmp_path: Path, stage: str, pattern: dict[str, Any]) -> None:
    template = load(tmp_path, IF_PATTERN_TEMPLATE, parameter_overrides={"Stage": stage})
    assert template.functions["Fn"].rules[0].pattern == pattern


def test_fn_if_pattern_routes(tmp_path: Path) -> None:
    template = load(tmp_path, IF_PATTERN_TEMPLATE)
    event = {"source": "app", "detail-type": "dev.y", "detail": {"kind": "call", "debug": 1}}
    assert template.route(event) == ["Fn"]
    assert template.route({**event, "detail": {"kind": "call"}}) == []
    assert template.route({**event, "detail-type": "prod.x"}) == []


def test_no_value_setting_falls_back_to_globals(tmp_path: Path) -> None:
    template = load(
        tmp_path,
        """
        Conditions:
          Never: !Equals [a, b]
        Globals:
          Function: {Timeout: 12}
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: f
              Handler: app.h
              Timeout: !If [Never, 99, !Ref AWS::NoValue]
              MemorySize: !If [Never, 99, !Ref AWS::NoValue]
        """,
    )
    assert (template.functions["Fn"].timeout, template.functions["Fn"].memory_size) == (12, 128)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
            "    Properties: {Handler: h, Environment: {Variables: {A: !Ref Nope}}}\n",
            "Nope",
        ),
        (
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
            "    Properties: {Handler: h, Environment: {Variables: {A: !GetAtt Nope.Arn}}}\n",
            "Nope",
        ),
        (
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
            "    Properties: {Handler: h, Environment: {Variables: {A: !If [Nope, a, b]}}}\n",
            "Nope",
        ),
        (
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
            "    Properties: {Handler: h, Timeout: soon}\n",
            "soon",
        ),
        (
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n"
            "      Events: {E: {Type: EventBridgeRule, Properties: {Pattern: '{bad'}}}\n",
            "JSON",
        ),
        (
            "Conditions:\n  A: !Condition B\n  B: !Not [!Condition A]\nResources:\n  F:\n"
            "    Type: AWS::Serverless::Function\n    Condition: A\n    Properties: {Handler: h}\n",
            "depends on itself",
        ),
        ("Parameters: {}\n", "Resources"),
        ("Resources: [unclosed\n", "YAML"),
    ],
)
def test_template_errors_are_clear(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        load(tmp_path, body)


def test_missing_template_file(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(tmp_path / "absent.yaml")


# --- `python -m localdev route EVENT_FILE` --------------------------------------------------


def test_route_main_prints_matching_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_template(tmp_path, ROUTING_TEMPLATE)
    monkeypatch.chdir(tmp_path)
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(genesys_event("v2.conversations.{id}.customer.end")))
    assert route_main(str(event_file)) == 0
    assert json.loads(capsys.readouterr().out) == ["OnEnd"]

    event_file.write_text(json.dumps(genesys_event("nothing.listens")))
    assert route_main(str(event_file)) == 0
    assert capsys.readouterr().out.strip() == "[]"


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("{not json", "not valid JSON"), ("[1, 2]", "JSON object")],
)
def test_route_main_rejects_bad_event_files(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    message: str,
) -> None:
    write_template(tmp_path, ROUTING_TEMPLATE)
    monkeypatch.chdir(tmp_path)
    event_file = tmp_path / "event.json"
    if content is not None:
        event_file.write_text(content)
    assert route_main(str(event_file)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "/app/prod/token"),
        ({"TokenName": "/mine/token"}, "/mine/token"),
    ],
)
def test_an_empty_parameter_chooses_a_per_stage_default_through_fn_if_in_fn_sub(
    tmp_path: Path, overrides: dict[str, str], expected: str
) -> None:
    # The shape template.yaml uses for the SSM names: "" -> /participant-attributes/{Stage}/...
    template = load(
        tmp_path,
        """
        Parameters:
          Stage: {Type: String, Default: prod}
          TokenName: {Type: String, Default: ""}
          Other: {Type: String, Default: ""}
        Conditions:
          HasTokenName: !Not [!Equals [!Ref TokenName, ""]]
          HasBoth: !And [!Condition HasTokenName, !Not [!Equals [!Ref Other, ""]]]
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: f
              Handler: app.h
              Environment:
                Variables:
                  NAME: !If [HasTokenName, !Ref TokenName, !Sub "/app/${Stage}/token"]
                  ARN: !Sub
                    - "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${Name}"
                    - {Name: !If [HasTokenName, !Ref TokenName, !Sub "/app/${Stage}/token"]}
                  BOTH: !If [HasBoth, "yes", "no"]
        """,
        parameter_overrides=overrides,
    )
    environment = template.functions["Fn"].environment
    assert environment["NAME"] == expected
    assert environment["ARN"] == f"arn:aws:ssm:us-east-1:123456789012:parameter{expected}"
    assert environment["BOTH"] == "no"
    assert template.condition("HasTokenName") is bool(overrides)
