"""Security held by template.yaml, checked on the template AS SAM TRANSFORMS IT (the real
translator, after resolving `Fn::If` as AWS::LanguageExtensions does), for the parameter
values that matter: who may put events on the app bus (and which detail-types), who may
send to a dead-letter queue, who may read the Genesys client secret, the KMS option, and
which API consumer may call which route (COGNITO scopes, AWS_IAM method ARNs, API_KEY),
REGIONAL, the source-IP allow-list and the WAF association.

Where a decision depends on IAM evaluation, a small evaluator below applies the rules that
matter here (explicit Deny wins; in one account an identity or a resource policy Allow is
enough) to the transformed policies. There is no AWS account here: this is the template's
promise, not a deployed stack's (docs/SECURITY.md says what was checked where).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from attribute_bridge.genesys.endpoints import resolve_endpoints

from localdev.template import Template, _load_yaml, load_template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_TEXT = (REPO / "template.yaml").read_text(encoding="utf-8")
RAW: dict[str, Any] = _load_yaml(TEMPLATE_TEXT)
RESOURCES: dict[str, Any] = RAW["Resources"]
PARAMETERS: dict[str, Any] = RAW["Parameters"]
FUNCTIONS = sorted(k for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function")
RESOLVED = load_template(REPO / "template.yaml")

FETCH, SYNC, PATCH = "FetchAttributesFunction", "SyncExternalFunction", "PatchAttributesFunction"
API, REFRESHER = "AttributesApiFunction", "TokenRefresherFunction"
RESOLVE = "ResolveAttributesFunction"
SOURCE = "participant-attributes"
# CONTRACT.md: the detail-types each function may emit (events:source participant-attributes).
EMITS: dict[str, set[str]] = {
    FETCH: {"ParticipantAttributesFetched"},
    SYNC: {"ParticipantAttributesResolved"},
    PATCH: {"ParticipantAttributesPatched"},
    API: {"ParticipantAttributesSyncRequested", "ParticipantAttributesUpdateRequested"},
    REFRESHER: set(),
    RESOLVE: {"ParticipantAttributesPatched"},  # the audit event of a data action's write
}
STAGE_SSM = "/participant-attributes/dev/genesys"
TOKEN, CLIENT_ID, CLIENT_SECRET = (
    f"{STAGE_SSM}/{n}" for n in ("token", "client-id", "client-secret")
)
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OUTSIDER = "arn:aws:iam::123456789012:role/Admin"  # any other principal of the account
SSM_ARN_PREFIX = "arn:aws:ssm:us-east-1:123456789012:parameter"
EXTRA_CLIENT = re.compile(r"/genesys/client-\d+/")  # an extra OAuth client's parameters
# (function, Sid) -> why AWS needs Resource "*" there. None today; add one only with the
# reason (e.g. xray:PutTraceSegments, which has no resource-level permissions).
WILDCARD_RESOURCES_REQUIRED: dict[tuple[str, str], str] = {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------- the stack


@dataclass(frozen=True)
class Deployed:
    """What CloudFormation would make of the template for some parameter values."""

    resources: dict[str, Any]
    outputs: dict[str, Any]
    local: Template  # the same parameters, for conditions and plain intrinsics

    def condition(self, name: str) -> bool:
        return self.local.condition(name)

    @property
    def api_body(self) -> dict[str, Any]:
        (api,) = [r for r in self.resources.values() if r["Type"] == "AWS::ApiGateway::RestApi"]
        body: dict[str, Any] = api["Properties"]["Body"]
        return body

    def methods(self) -> dict[str, dict[str, Any]]:
        return {
            f"{verb.upper()} {path}": operation
            for path, operations in self.api_body["paths"].items()
            for verb, operation in operations.items()
            if verb != "options"
        }

    def types(self) -> set[str]:
        return {r["Type"] for r in self.resources.values() if self.included(r)}

    def included(self, resource: Mapping[str, Any]) -> bool:
        return "Condition" not in resource or self.condition(resource["Condition"])

    def of_type(self, resource_type: str) -> dict[str, Any]:
        return {
            k: v
            for k, v in self.resources.items()
            if v["Type"] == resource_type and self.included(v)
        }

    def ref(self, node: Any) -> tuple[str, str]:
        """What a policy's Resource (or principal) names: ("resource", logical id),
        ("parameter", SSM name), ("key", KMS key ARN) or ("arn", text)."""
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            logical_id, attribute = as_list(node["Fn::GetAtt"])
            assert attribute == "Arn" and logical_id in self.resources, node
            return ("resource", logical_id)
        if node == {"Ref": "KmsKeyArn"}:
            return ("key", str(self.local.parameters["KmsKeyArn"]))
        if isinstance(node, dict) and "Fn::Sub" in node:
            text = str(self.local.resolve(node))
            assert text.startswith(SSM_ARN_PREFIX + "/"), f"not an SSM ARN of this stack: {node}"
            return ("parameter", text.removeprefix(SSM_ARN_PREFIX))
        if isinstance(node, str):
            return ("arn", node)
        raise AssertionError(f"a resource that is not one of the stack's own: {node!r}")

    def role_statements(self, function: str) -> list[dict[str, Any]]:
        role = self.resources[f"{function}Role"]["Properties"]
        return [
            statement
            for policy in role.get("Policies", [])
            for statement in as_list(policy["PolicyDocument"]["Statement"])
        ]

    def grants(self, function: str) -> set[tuple[str, tuple[str, str]]]:
        return {
            (action, self.ref(resource))
            for statement in self.role_statements(function)
            for action in as_list(statement["Action"])
            for resource in as_list(statement["Resource"])
        }

    def environment(self, function: str) -> dict[str, Any]:
        properties = self.resources[function]["Properties"]
        variables: dict[str, Any] = properties.get("Environment", {}).get("Variables", {})
        return variables


def language_extensions(node: Any, condition: Callable[[str], bool]) -> Any:
    """Resolve `Fn::If` and drop `AWS::NoValue` (from maps and lists), as CloudFormation's
    LanguageExtensions transform does when the condition depends on parameters only."""
    if isinstance(node, list):
        items = [language_extensions(item, condition) for item in node]
        return [item for item in items if item != {"Ref": "AWS::NoValue"}]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Fn::If"}:
        name, when_true, when_false = node["Fn::If"]
        return language_extensions(when_true if condition(name) else when_false, condition)
    resolved = {key: language_extensions(value, condition) for key, value in node.items()}
    return {key: value for key, value in resolved.items() if value != {"Ref": "AWS::NoValue"}}


@functools.cache
def _deployed(parameters: tuple[tuple[str, str], ...]) -> Deployed:
    from samtranslator.translator.transform import transform

    overrides = dict(parameters)
    chosen = load_template(REPO / "template.yaml", parameter_overrides=overrides)
    template = language_extensions(_load_yaml(TEMPLATE_TEXT), chosen.condition)
    for resource in template["Resources"].values():  # as `sam package` would leave them
        for uri in ("CodeUri", "ContentUri"):
            if uri in resource.get("Properties", {}):
                resource["Properties"][uri] = "s3://artifacts/code.zip"

    class NoManagedPolicies:  # the template uses inline statements only (tested below)
        def load(self) -> dict[str, str]:
            return {}

    translated = transform(template, overrides, NoManagedPolicies())
    return Deployed(translated["Resources"], translated.get("Outputs", {}), chosen)


def deployed(api_authorization: str | None = None, **parameters: str) -> Deployed:
    if api_authorization:
        parameters["ApiAuthorization"] = api_authorization
    return _deployed(tuple(sorted(parameters.items())))


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the translator wants one


# ---------------------------------------------------------------------------- IAM evaluation


@dataclass(frozen=True)
class Request:
    principal: tuple[str, str]  # ("resource", role logical id) | ("arn", ...) | ("service", ...)
    action: str
    resource: tuple[str, str]
    context: Mapping[str, Any]


def _value(stack: Deployed, node: Any) -> Any:
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        return stack.ref(node)
    return node


def _condition_holds(
    stack: Deployed, conditions: Mapping[str, Any], context: Mapping[str, Any]
) -> bool:
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            wanted = [_value(stack, v) for v in as_list(expected)]
            present = key in context
            actual = context.get(key)
            if operator in ("StringEquals", "ArnEquals", "Bool"):
                holds = present and actual in wanted
            elif operator in ("StringNotEquals", "ArnNotEquals"):
                holds = not present or actual not in wanted
            else:
                raise AssertionError(f"the evaluator does not know {operator}")
            if not holds:
                return False
    return True


def _applies(stack: Deployed, statement: Mapping[str, Any], request: Request) -> bool:
    actions = as_list(statement["Action"])
    if not any(fnmatch.fnmatchcase(request.action, a) for a in actions):
        return False
    if request.resource not in {stack.ref(r) for r in as_list(statement["Resource"])}:
        return False
    if "Principal" in statement:
        principal = statement["Principal"]
        if principal != "*" and principal != {"Service": request.principal[1]}:
            return False
    return _condition_holds(stack, statement.get("Condition", {}), request.context)


def decision(stack: Deployed, request: Request, resource_policy: list[dict[str, Any]]) -> str:
    """ "allowed" or "denied": an explicit Deny anywhere wins; in one account an Allow in
    the principal's own policies or in the resource's policy is enough."""
    identity: list[dict[str, Any]] = []
    if request.principal[0] == "resource":
        identity = stack.role_statements(request.principal[1].removesuffix("Role"))
    statements = [*identity, *resource_policy]
    if any(s["Effect"] == "Deny" and _applies(stack, s, request) for s in statements):
        return "denied"
    if any(s["Effect"] == "Allow" and _applies(stack, s, request) for s in identity):
        return "allowed"
    if request.principal[0] != "resource" and any(
        s["Effect"] == "Allow" and _applies(stack, s, request) for s in resource_policy
    ):
        return "allowed"
    return "denied"


def role(function: str) -> tuple[str, str]:
    return ("resource", f"{function}Role")


def caller_context(principal: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "aws:PrincipalArn": principal,
        "aws:PrincipalIsAWSService": "false",
        "aws:SecureTransport": "true",
        **extra,
    }


# ---------------------------------------------------------------------------- IAM statements


@pytest.mark.parametrize("function", FUNCTIONS)
def test_statements_allow_named_actions_on_named_resources(function: str) -> None:
    for policy in RESOURCES[function]["Properties"].get("Policies", []):
        assert isinstance(policy, dict) and set(policy) == {"Statement"}, (
            f"{function}: only inline statements (no managed policies or SAM policy "
            f"templates, whose scope is not visible here): {policy}"
        )
    for stack in (
        deployed(),
        deployed(
            KmsKeyArn=KEY,
            ApiGenesysClientIdParameter="/a/id",
            ApiGenesysClientSecretParameter="/a/secret",
            GenesysExtraClientCount="4",
        ),
    ):
        for statement in stack.role_statements(function):
            sid = statement.get("Sid", "?")
            assert statement["Effect"] == "Allow", f"{function}/{sid}: only Allow statements"
            assert "NotAction" not in statement and "NotResource" not in statement
            assert "Principal" not in statement
            for action in as_list(statement["Action"]):
                assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z]+", action), f"{function}/{sid}: {action}"
            for resource in as_list(statement["Resource"]):
                if resource == "*":
                    assert (function, sid) in WILDCARD_RESOURCES_REQUIRED, f"{function}/{sid}: *"
                    continue
                assert "*" not in str(resource), f"{function}/{sid}: wildcard in {resource}"
                stack.ref(resource)


def test_each_function_has_exactly_the_access_its_code_uses() -> None:
    stack = deployed()

    def parameter(name: str) -> tuple[str, str]:
        return ("parameter", name)

    read_token = {
        ("ssm:GetParameter", parameter(TOKEN)),
        ("lambda:InvokeFunction", ("resource", REFRESHER)),
    }
    idempotency = {
        (f"dynamodb:{action}", ("resource", "IdempotencyTable"))
        for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
    }
    publish = {("events:PutEvents", ("resource", "AppEventBus"))}
    # the participant record, sync fingerprint and per-key write times (conversation_state.py)
    state = {
        (f"dynamodb:{action}", ("resource", "ConversationStateTable"))
        for action in ("GetItem", "UpdateItem")
    }
    state_updates = {("dynamodb:UpdateItem", ("resource", "ConversationStateTable"))}

    def dead_letters(queue: str) -> set[tuple[str, tuple[str, str]]]:
        return {("sqs:SendMessage", ("resource", queue))}

    expected = {
        FETCH: read_token | idempotency | state | publish | dead_letters("FetchAttributesDLQ"),
        PATCH: read_token | idempotency | state | publish | dead_letters("PatchAttributesDLQ"),
        SYNC: idempotency | state_updates | publish | dead_letters("SyncExternalDLQ"),
        REFRESHER: {
            ("ssm:GetParameter", parameter(CLIENT_ID)),
            ("ssm:GetParameter", parameter(CLIENT_SECRET)),
            ("ssm:GetParameter", parameter(TOKEN)),
            ("ssm:PutParameter", parameter(TOKEN)),
        }
        | dead_letters("TokenRefresherDLQ"),
        API: read_token | state | publish,
        RESOLVE: read_token | state | publish,  # synchronous: no dead-letter queue
    }
    assert {function: stack.grants(function) for function in FUNCTIONS} == expected
    with_auth = deployed(ExternalAuthParameter="/crm/auth")
    assert with_auth.grants(SYNC) - expected[SYNC] == {("ssm:GetParameter", parameter("/crm/auth"))}


@pytest.mark.parametrize(
    "parameters",
    [
        {},
        {"GenesysClientSecretParameter": "/mine/secret", "GenesysClientIdParameter": "/mine/id"},
        {
            "ApiGenesysClientIdParameter": "/api/id",
            "ApiGenesysClientSecretParameter": "/api/secret",
        },
    ],
    ids=["per-stage names", "own names", "the API's own Genesys client"],
)
def test_only_the_token_path_can_read_the_genesys_client_credentials(
    parameters: dict[str, str],
) -> None:
    stack = deployed(**parameters)
    secrets = {
        parameters.get("GenesysClientIdParameter", CLIENT_ID),
        parameters.get("GenesysClientSecretParameter", CLIENT_SECRET),
        *(v for k, v in parameters.items() if k.startswith("ApiGenesys")),
    }
    readers = {
        function
        for function in FUNCTIONS
        for action, (kind, name) in stack.grants(function)
        if kind == "parameter" and name in secrets
    }
    assert readers == {REFRESHER}
    assert {
        name for action, (kind, name) in stack.grants(REFRESHER) if kind == "parameter"
    } >= secrets
    # No other role or policy in the stack names them either.
    for logical_id, resource in stack.resources.items():
        iam = resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        if iam and logical_id != f"{REFRESHER}Role":
            assert not any(s in str(stack.local.resolve(resource)) for s in secrets), logical_id
    # The readers do not even know the names; they know whom to ask for a token.
    for function in FUNCTIONS:
        environment = {**stack.environment(function)}
        if function == REFRESHER:
            assert "GENESYS_CLIENT_SECRET_PARAMETER" in environment
            continue
        assert not {"GENESYS_CLIENT_SECRET_PARAMETER", "GENESYS_CLIENT_ID_PARAMETER"} & set(
            environment
        ), function
        if function != SYNC:
            assert environment["TOKEN_REFRESHER_FUNCTION"] == {"Ref": REFRESHER}


@pytest.mark.parametrize("count", ["0", "1", "2", "3", "4"])
def test_each_extra_client_has_exactly_its_grants_and_names_the_code_derives(count: str) -> None:
    """GenesysExtraClientCount=N: TokenRefresher alone reads client-2..client-(N+1)'s id and
    secret and writes their tokens; Fetch, Patch and Resolve read exactly those tokens (the
    API keeps its own or the pipeline's); the names follow oauth_clients.py's rule."""
    from attribute_bridge.oauth_clients import (
        client_parameters,
        extra_client_names,
        parse_extra_clients,
    )

    stack = deployed(GenesysExtraClientCount=count)
    names = extra_client_names(int(count))
    assert names == tuple(f"client-{n}" for n in range(2, int(count) + 2))
    environment = stack.local.functions[REFRESHER].environment
    assert parse_extra_clients(environment["GENESYS_EXTRA_CLIENTS"]) == names
    extras = [client_parameters(environment["GENESYS_EXTRA_CLIENTS_PREFIX"], n) for n in names]
    assert [e.token for e in extras] == [f"{STAGE_SSM}/client-{n}/token" for n in range(2, 6)][
        : int(count)
    ]

    def ssm(function: str) -> set[tuple[str, str]]:
        return {
            (action, name)
            for action, (kind, name) in stack.grants(function)
            if kind == "parameter" and EXTRA_CLIENT.search(name)
        }

    secrets = {(e.client_id, e.client_secret) for e in extras}
    assert ssm(REFRESHER) == {
        *(("ssm:GetParameter", name) for pair in secrets for name in pair),
        *(("ssm:GetParameter", e.token) for e in extras),
        *(("ssm:PutParameter", e.token) for e in extras),
    }
    for function in (FETCH, PATCH, RESOLVE):
        assert ssm(function) == {("ssm:GetParameter", e.token) for e in extras}, function
        assert (
            stack.local.functions[function].environment["GENESYS_EXTRA_CLIENTS"]
            == (environment["GENESYS_EXTRA_CLIENTS"])
        )
    assert ssm(API) == ssm(SYNC) == set()
    assert "GENESYS_EXTRA_CLIENTS" not in stack.local.functions[API].environment
    # No other role or policy names a secret, and the pipeline's own grants are unchanged.
    for logical_id, resource in stack.resources.items():
        iam = resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        if iam and logical_id != f"{REFRESHER}Role":
            text = str(stack.local.resolve(resource))
            assert not any(s in text for pair in secrets for s in pair), logical_id
    plain = deployed()
    for function in FUNCTIONS:
        assert {g for g in stack.grants(function) if not EXTRA_CLIENT.search(g[1][1])} == (
            plain.grants(function)
        ), function


def test_the_refresher_mints_one_at_a_time_and_nobody_else_writes_a_parameter() -> None:
    stack = deployed(ApiGenesysClientIdParameter="/api/id", ApiGenesysClientSecretParameter="/s")
    assert stack.resources[REFRESHER]["Properties"]["ReservedConcurrentExecutions"] == 1
    writers = {
        function: {
            name for action, (_, name) in stack.grants(function) if action == "ssm:PutParameter"
        }
        for function in FUNCTIONS
    }
    assert writers.pop(REFRESHER) == {TOKEN, f"{STAGE_SSM}/api-token"}
    assert all(not names for names in writers.values()), writers
    assert stack.environment(API)["GENESYS_TOKEN_CLIENT"] == "api"
    assert "TokenLeaseTable" not in stack.resources  # nothing left to lease


def test_ssm_names_default_to_the_stage() -> None:
    for name in (
        "GenesysTokenParameter",
        "GenesysClientIdParameter",
        "GenesysClientSecretParameter",
    ):
        assert PARAMETERS[name]["Default"] == ""
    staged = load_template(REPO / "template.yaml", parameter_overrides={"Stage": "prod"})
    refresher = staged.functions[REFRESHER].environment
    assert (
        refresher["GENESYS_CLIENT_SECRET_PARAMETER"]
        == "/participant-attributes/prod/genesys/client-secret"
    )
    assert (
        refresher["GENESYS_CLIENT_ID_PARAMETER"] == "/participant-attributes/prod/genesys/client-id"
    )
    for function in (FETCH, PATCH, API, REFRESHER):
        assert staged.functions[function].environment["GENESYS_TOKEN_PARAMETER"] == (
            "/participant-attributes/prod/genesys/token"
        )
    own = load_template(
        REPO / "template.yaml", parameter_overrides={"GenesysTokenParameter": "/x/t"}
    )
    assert own.functions[FETCH].environment["GENESYS_TOKEN_PARAMETER"] == "/x/t"


# ---------------------------------------------------------------------------- the app bus


def test_the_app_bus_denies_put_events_to_every_principal_but_the_stacks_emitters() -> None:
    stack = deployed()
    (policy,) = stack.of_type("AWS::Events::EventBusPolicy").values()
    assert policy["Properties"]["EventBusName"] == {"Ref": "AppEventBus"}
    statement = policy["Properties"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert stack.ref(statement["Resource"]) == ("resource", "AppEventBus")
    allowed_roles = {
        stack.ref(r) for r in statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    }
    emitters = {function for function, types in EMITS.items() if types}
    assert allowed_roles == {role(f) for f in emitters}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_role_may_put_exactly_its_own_detail_types(function: str) -> None:
    stack = deployed()
    (bus_policy,) = stack.of_type("AWS::Events::EventBusPolicy").values()
    every_type = set().union(*EMITS.values())
    for detail_type in every_type:
        for source in (SOURCE, "aws.partner/genesys.com/forged"):
            request = Request(
                role(function),
                "events:PutEvents",
                ("resource", "AppEventBus"),
                caller_context(
                    role(function), **{"events:detail-type": detail_type, "events:source": source}
                ),
            )
            expected = (
                "allowed" if detail_type in EMITS[function] and source == SOURCE else "denied"
            )
            assert decision(stack, request, [bus_policy["Properties"]["Statement"]]) == expected, (
                function,
                detail_type,
                source,
            )


def test_a_forged_update_request_from_outside_the_stack_is_refused_even_for_an_admin() -> None:
    stack = deployed()
    (bus_policy,) = stack.of_type("AWS::Events::EventBusPolicy").values()
    admin_policy = [
        {
            "Effect": "Allow",
            "Action": "events:*",
            "Resource": {"Fn::GetAtt": ["AppEventBus", "Arn"]},
        }
    ]
    context = caller_context(
        ("arn", OUTSIDER),
        **{"events:detail-type": "ParticipantAttributesUpdateRequested", "events:source": SOURCE},
    )
    request = Request(("arn", OUTSIDER), "events:PutEvents", ("resource", "AppEventBus"), context)
    statements = [bus_policy["Properties"]["Statement"]]
    assert decision(stack, request, statements) == "denied"
    # (the evaluator's Deny, not a missing Allow: the admin's own Allow does not help)
    assert any(s["Effect"] == "Deny" and _applies(stack, s, request) for s in statements)
    assert _applies(stack, admin_policy[0], request)
    # The one function that may emit it, may.
    api = Request(
        role(API),
        "events:PutEvents",
        ("resource", "AppEventBus"),
        {**context, "aws:PrincipalArn": role(API)},
    )
    assert decision(stack, api, statements) == "allowed"


def test_archive_replay_and_rules_are_not_put_events_and_stay_possible() -> None:
    # The bus policy denies events:PutEvents only: the archive (a rule EventBridge manages)
    # and replays (StartReplay delivers to rules) are not governed by it.
    stack = deployed()
    (bus_policy,) = stack.of_type("AWS::Events::EventBusPolicy").values()
    assert as_list(bus_policy["Properties"]["Statement"]["Action"]) == ["events:PutEvents"]
    archive = stack.resources["AppEventArchive"]["Properties"]
    assert stack.ref(archive["SourceArn"]) == ("resource", "AppEventBus")


# ---------------------------------------------------------------------------- dead-letter queues


def rules_dead_lettering_to(stack: Deployed, queue: str) -> set[tuple[str, str]]:
    return {
        ("resource", logical_id)
        for logical_id, rule in stack.of_type("AWS::Events::Rule").items()
        for target in rule["Properties"]["Targets"]
        if stack.ref(target.get("DeadLetterConfig", {}).get("Arn", "none")) == ("resource", queue)
    }


def own_dead_letter_queue(function: str) -> str:
    destination = RESOURCES[function]["Properties"]["EventInvokeConfig"]["DestinationConfig"]
    return str(destination["OnFailure"]["Destination"]["Fn::GetAtt"][0])


DEAD_LETTERED = [f for f in FUNCTIONS if "EventInvokeConfig" in RESOURCES[f]["Properties"]]


@pytest.mark.parametrize("function", DEAD_LETTERED)
def test_a_dead_letter_queue_takes_messages_from_its_functions_rules_and_role_only(
    function: str,
) -> None:
    stack = deployed()
    queue = own_dead_letter_queue(function)
    (policy,) = [
        p
        for p in stack.of_type("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue}]
    ]
    statements = as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    own_rules = rules_dead_lettering_to(stack, queue)
    assert own_rules, f"{function} has rules that dead-letter to {queue}"
    send = functools.partial(Request, action="sqs:SendMessage", resource=("resource", queue))

    def from_rule(rule: tuple[str, str]) -> Request:
        return send(
            ("service", "events.amazonaws.com"),
            context={
                "aws:SourceArn": rule,
                "aws:PrincipalIsAWSService": "true",
                "aws:SecureTransport": "true",
            },
        )

    for rule in own_rules:
        assert decision(stack, from_rule(rule), statements) == "allowed", rule
    for other in set(stack.of_type("AWS::Events::Rule")) - {r for _, r in own_rules}:
        assert decision(stack, from_rule(("resource", other)), statements) == "denied", other
    # The function's role: its handler's rejections and Lambda's OnFailure destination
    # (Lambda sends it with the function's role; SAM adds that grant).
    me = role(function)
    assert decision(stack, send(me, context=caller_context(me)), statements) == "allowed"
    names = [p["PolicyName"] for p in stack.resources[f"{function}Role"]["Properties"]["Policies"]]
    assert f"{function}EventInvokeConfigOnFailureSQSPolicy" in names
    for other in [*(role(f) for f in FUNCTIONS if f != function), ("arn", OUTSIDER)]:
        context = caller_context(other)
        assert decision(stack, send(other, context=context), statements) == "denied", other
    plain_http = caller_context(me, **{"aws:SecureTransport": "false"})
    assert decision(stack, send(me, context=plain_http), statements) == "denied"


def test_the_api_function_has_no_dead_letter_queue_and_sends_to_none() -> None:
    stack = deployed()
    assert not {a for a, _ in stack.grants(API) if a.startswith("sqs:")}


# ---------------------------------------------------------------------------- API consumers

ATTRIBUTES = "/conversations/{conversationId}/participants/{participantId}/attributes"
ROUTE_SCOPES = {  # docs/SECURITY.md: one scope per route
    f"GET {ATTRIBUTES}": "attributes/read",
    f"PATCH {ATTRIBUTES}": "attributes/write",
    "POST /conversations/{conversationId}/sync": "attributes/sync",
    # a sync now (the web-services data action): the same scope as asking for one
    "POST /conversations/{conversationId}/resolve": "attributes/sync",
}


def test_every_route_is_on_the_one_authenticated_api() -> None:
    apis = [
        k
        for k, v in RESOURCES.items()
        if v["Type"]
        in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi", "AWS::ApiGateway::RestApi")
    ]
    assert apis == ["AttributesApi"]
    routes = 0
    for function in FUNCTIONS:
        properties = RESOURCES[function]["Properties"]
        assert "FunctionUrlConfig" not in properties, f"{function}: a function URL bypasses the API"
        for name, event in properties.get("Events", {}).items():
            assert event["Type"] not in ("HttpApi",), f"{function}/{name}"
            if event["Type"] != "Api":
                continue
            routes += 1
            where = f"{function}/{name}"
            # on the API with the auth settings, never SAM's implicit (unauthenticated) one;
            # a route's own Auth only names its Cognito scope, it never opts out
            assert event["Properties"].get("RestApiId") == {"Ref": "AttributesApi"}, where
            if "Auth" in event["Properties"]:
                condition, when_true, when_false = event["Properties"]["Auth"]["Fn::If"]
                assert condition == "ApiUsesCognito", where
                assert set(when_true) == {"Authorizer", "AuthorizationScopes"}, where
                assert when_false == {"Ref": "AWS::NoValue"}, where
    assert routes == len(ROUTE_SCOPES)


@pytest.mark.parametrize(
    ("api_authorization", "security"),
    [("API_KEY", [{"api_key": []}]), ("AWS_IAM", [{"AWS_IAM": []}])],
)
def test_every_deployed_api_method_requires_the_chosen_auth(
    api_authorization: str, security: list[dict[str, list[str]]]
) -> None:
    stack = deployed(api_authorization)

    methods = stack.methods()
    assert len(methods) == len(ROUTE_SCOPES)
    for method, operation in methods.items():
        assert operation.get("security") == security, method
        # API Gateway invokes the function by its resource-based permission, never with
        # the caller's credentials: execute-api:Invoke is all a caller needs.
        assert "credentials" not in operation["x-amazon-apigateway-integration"], method


def test_cognito_is_the_default_and_each_route_needs_its_own_scope() -> None:
    assert PARAMETERS["ApiAuthorization"]["Default"] == "COGNITO"
    stack = deployed()
    definitions = stack.api_body["securityDefinitions"]
    assert set(definitions) == {"ApiConsumers"}
    authorizer = definitions["ApiConsumers"]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "cognito_user_pools"
    assert authorizer["providerARNs"] == [{"Fn::GetAtt": ["ApiConsumerPool", "Arn"]}]
    scopes = {method: op["security"] for method, op in stack.methods().items()}
    assert scopes == {method: [{"ApiConsumers": [scope]}] for method, scope in ROUTE_SCOPES.items()}
    # The scopes exist on the pool's resource server, and nothing else does.
    (server,) = stack.of_type("AWS::Cognito::UserPoolResourceServer").values()
    identifier = server["Properties"]["Identifier"]
    offered = {f"{identifier}/{s['ScopeName']}" for s in server["Properties"]["Scopes"]}
    assert offered == set(ROUTE_SCOPES.values())
    # No app client (each consumer gets its own, docs/SECURITY.md), no key, no usage plan.
    assert not stack.types() & {
        "AWS::Cognito::UserPoolClient",
        "AWS::ApiGateway::ApiKey",
        "AWS::ApiGateway::UsagePlan",
    }
    for output in ("ApiConsumerPoolId", "ApiTokenUrl"):
        assert stack.condition(stack.outputs[output]["Condition"])


@pytest.mark.parametrize("scope", sorted(set(ROUTE_SCOPES.values())))
def test_a_consumer_with_one_scope_reaches_only_its_routes(scope: str) -> None:
    stack = deployed()
    reachable = {
        method
        for method, operation in stack.methods().items()
        if any(scope in granted for entry in operation["security"] for granted in entry.values())
    }
    assert reachable == {m for m, s in ROUTE_SCOPES.items() if s == scope}
    if scope == "attributes/read":
        assert not any(m.startswith("PATCH") for m in reachable)  # a reader cannot write


def iam_arn(stack: Deployed, output: str) -> str:
    text: str = stack.outputs[output]["Value"]["Fn::Sub"]
    return (
        text.replace("${AWS::Partition}", "aws")
        .replace("${AWS::Region}", "us-east-1")
        .replace("${AWS::AccountId}", "123456789012")
        .replace("${AttributesApi}", "a1b2c3")
        .replace("${Stage}", "dev")
    )


def method_arn(method: str) -> str:
    verb, path = method.split(" ", 1)
    concrete = re.sub(r"\{[^}]+\}", "id-1", path)
    return f"arn:aws:execute-api:us-east-1:123456789012:a1b2c3/dev/{verb}{concrete}"


@pytest.mark.parametrize(
    ("output", "route"),
    [
        ("ApiReadInvokeArn", f"GET {ATTRIBUTES}"),
        ("ApiWriteInvokeArn", f"PATCH {ATTRIBUTES}"),
        ("ApiSyncInvokeArn", "POST /conversations/{conversationId}/sync"),
        ("ApiResolveInvokeArn", "POST /conversations/{conversationId}/resolve"),
    ],
)
def test_with_iam_a_consumer_allowed_one_method_arn_reaches_that_method_only(
    output: str, route: str
) -> None:
    stack = deployed("AWS_IAM")
    granted = iam_arn(stack, output)
    reachable = {m for m in stack.methods() if fnmatch.fnmatchcase(method_arn(m), granted)}
    assert reachable == {route}
    everything = iam_arn(stack, "ApiInvokeArn")
    assert all(fnmatch.fnmatchcase(method_arn(m), everything) for m in stack.methods())


@pytest.mark.parametrize("api_authorization", ["COGNITO", "API_KEY", "AWS_IAM"])
def test_every_output_of_the_deployed_stack_resolves(api_authorization: str) -> None:
    stack = deployed(api_authorization)
    known = {*stack.resources, *PARAMETERS}

    for name, output in stack.outputs.items():
        if "Condition" in output and not stack.condition(output["Condition"]):
            continue
        for target in referenced_names(output["Value"]):
            assert target.startswith("AWS::") or target in known, f"{name} -> {target}"


def referenced_names(node: Any) -> Iterator[str]:
    """Logical ids named by Ref, Fn::GetAtt and ${...} in Fn::Sub."""
    if isinstance(node, list):
        for item in node:
            yield from referenced_names(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                yield (value.split(".")[0] if isinstance(value, str) else value[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                yield from (n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", text))
                if isinstance(value, list):
                    yield from referenced_names(value[1])
            else:
                yield from referenced_names(value)


def test_api_keys_and_their_throttled_usage_plan_exist_only_with_api_key_auth() -> None:
    key_resources = {"AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::ApiKey"}

    assert key_resources <= deployed("API_KEY").types()
    assert not key_resources & deployed("AWS_IAM").types()  # a key that opens nothing: none
    assert not key_resources & deployed("COGNITO").types()


@pytest.mark.parametrize("api_authorization", ["COGNITO", "API_KEY", "AWS_IAM"])
def test_the_api_is_regional_throttled_below_genesys_and_logged(api_authorization: str) -> None:
    stack = deployed(api_authorization)
    (api,) = stack.of_type("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    (stage,) = stack.of_type("AWS::ApiGateway::Stage").values()
    (setting,) = stage["Properties"]["MethodSettings"]
    assert setting["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert stage["Properties"]["AccessLogSetting"]["DestinationArn"]
    # An API request costs at most two Genesys requests (a read, then a write); at the
    # default rate that stays under the lowest Genesys limit seen (180/min per token).
    assert 2 * 60 * PARAMETERS["ApiThrottleRateLimit"]["Default"] <= 180


def test_the_source_ip_allow_list_denies_every_other_source_when_given() -> None:
    for api_authorization in ("COGNITO", "AWS_IAM"):
        assert "x-amazon-apigateway-policy" not in deployed(api_authorization).api_body
        stack = deployed(api_authorization, ApiAllowedSourceIps="203.0.113.0/24,198.51.100.7/32")
        policy = stack.api_body["x-amazon-apigateway-policy"]
        allow, deny = policy["Statement"]
        assert allow["Effect"] == "Allow" and allow["Action"] == "execute-api:Invoke"
        assert allow["Principal"] == (
            {"AWS": {"Ref": "AWS::AccountId"}} if api_authorization == "AWS_IAM" else "*"
        )
        # Explicit, so that it binds same-account IAM callers too.
        assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
        assert deny["Resource"] == allow["Resource"] == "execute-api:/*"
        ips = deny["Condition"]["NotIpAddress"]["aws:SourceIp"]
        assert ips == {"Fn::Split": [",", "203.0.113.0/24,198.51.100.7/32"]}
    pattern = re.compile(PARAMETERS["ApiAllowedSourceIps"]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("2001:db8::/32,10.0.0.1/32")
    assert not pattern.fullmatch("10.0.0.1") and not pattern.fullmatch("any")


def test_a_waf_web_acl_is_associated_with_the_stage_when_given() -> None:
    acl = (
        "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/api/"
        "0f1e2d3c-aaaa-bbbb-cccc-000000000000"
    )
    assert "AWS::WAFv2::WebACLAssociation" not in deployed().types()
    stack = deployed(ApiWebAclArn=acl)
    (association,) = stack.of_type("AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {"Ref": "ApiWebAclArn"}
    arn = association["Properties"]["ResourceArn"]["Fn::Sub"]
    (stage_id,) = stack.of_type("AWS::ApiGateway::Stage")
    assert arn.endswith(f"/restapis/${{AttributesApi}}/stages/${{{stage_id}}}")  # SAM's stage
    assert re.fullmatch(PARAMETERS["ApiWebAclArn"]["AllowedPattern"], acl)


# ---------------------------------------------------------------------------- data at rest


def test_without_a_key_everything_uses_aws_managed_encryption_and_no_role_uses_kms() -> None:
    stack = deployed()
    for name, queue in stack.of_type("AWS::SQS::Queue").items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, name
        assert "KmsMasterKeyId" not in queue["Properties"], name
    tables = stack.of_type("AWS::DynamoDB::Table")
    assert set(tables) == {"IdempotencyTable", "ConversationStateTable"}
    for name, table in tables.items():
        assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}, name
    for name, group in stack.of_type("AWS::Logs::LogGroup").items():
        assert "KmsKeyId" not in group["Properties"], name
    for function in FUNCTIONS:
        assert not {a for a, _ in stack.grants(function) if a.startswith("kms:")}, function
    assert stack.environment(REFRESHER)["GENESYS_TOKEN_KMS_KEY_ID"] == {"Ref": "KmsKeyArn"}
    assert RESOLVED.parameters["KmsKeyArn"] == ""  # so the token goes under aws/ssm


# Which of the stack's key uses each role needs (kms:ViaService), and why.
KMS_USES = {
    FETCH: {"sqs", "dynamodb", "ssm"},  # its DLQ, idempotency records, reading the token
    PATCH: {"sqs", "dynamodb", "ssm"},
    SYNC: {"sqs", "dynamodb"},  # no Genesys token
    API: {"ssm", "dynamodb"},  # reads the token and the participant record; no DLQ
    REFRESHER: {"sqs", "ssm"},  # its DLQ, writes (Encrypt) and reads the token
    RESOLVE: {"ssm", "dynamodb"},  # reads the token and the participant record
}


def test_with_a_key_queues_tables_logs_and_the_token_use_it_and_only_needed_grants_exist() -> None:
    stack = deployed(KmsKeyArn=KEY)
    for name, queue in stack.of_type("AWS::SQS::Queue").items():
        assert queue["Properties"]["KmsMasterKeyId"] == {"Ref": "KmsKeyArn"}, name
        assert "SqsManagedSseEnabled" not in queue["Properties"], name
    for name, table in stack.of_type("AWS::DynamoDB::Table").items():
        assert table["Properties"]["SSESpecification"] == {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": {"Ref": "KmsKeyArn"},
        }, name
    groups = stack.of_type("AWS::Logs::LogGroup")
    assert len(groups) == len(FUNCTIONS) + 1  # each function's, and the API's access log
    for name, group in groups.items():
        assert group["Properties"]["KmsKeyId"] == {"Ref": "KmsKeyArn"}, name
    for function in FUNCTIONS:
        (statement,) = [
            s
            for s in stack.role_statements(function)
            if any(a.startswith("kms:") for a in as_list(s["Action"]))
        ]
        assert stack.ref(statement["Resource"]) == ("key", KEY)
        actions = set(as_list(statement["Action"]))
        expected = {"kms:Decrypt", "kms:GenerateDataKey"} | (
            {"kms:Encrypt"} if function == REFRESHER else set()
        )
        assert actions == expected, function
        via = statement["Condition"]["StringEquals"]["kms:ViaService"]
        services = {str(stack.local.resolve(v)).split(".")[0] for v in via}
        assert services == KMS_USES[function], function


# ---------------------------------------------------------------------------- secrets


def test_secret_parameters_hold_parameter_names_not_values() -> None:
    for name in (
        "GenesysTokenParameter",
        "GenesysClientIdParameter",
        "GenesysClientSecretParameter",
        "ApiGenesysClientIdParameter",
        "ApiGenesysClientSecretParameter",
        "ExternalAuthParameter",
    ):
        declared = PARAMETERS[name]
        assert "SecureString" in declared["Description"] or "token" in declared["Description"]
        pattern = re.compile(declared["AllowedPattern"])
        assert pattern.fullmatch(str(declared["Default"])), name
        assert not pattern.fullmatch("s3cr3t-value"), f"{name} would take a secret value"
        assert declared["Default"] in ("", RESOLVED.parameters[name])
        assert declared["Default"] == "" or str(declared["Default"]).startswith("/")


def test_no_secret_value_anywhere_in_the_template() -> None:
    for looks_like_a_secret in (
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
        r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
        r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}",  # a real token, not "Bearer abc"
        r"(?i)\bbasic\s+[A-Za-z0-9+/=]{16,}",
        r"(?i)(password|secret|token|api_?key)\s*[:=]\s*[\"']?[A-Za-z0-9+/=_-]{12,}",
    ):
        found = re.search(looks_like_a_secret, TEMPLATE_TEXT)
        assert found is None, f"{looks_like_a_secret}: {found and found.group(0)}"
    secretish = re.compile(r"SECRET|TOKEN|PASSWORD|AUTH|CREDENTIAL|API_?KEY", re.IGNORECASE)
    for where, variables in environments():
        for key, value in variables.items():
            if not secretish.search(key):
                continue
            # names (of SSM parameters, the key, a function), a client's label, or numbers
            assert names_not_values(value), f"{where}: {key} = {value!r}"


def names_not_values(value: Any) -> bool:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return value["Ref"].endswith("Parameter") or value["Ref"] in ("KmsKeyArn", REFRESHER)
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        return all(names_not_values(branch) for branch in value["Fn::If"][1:])
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return str(value["Fn::Sub"]).startswith("/participant-attributes/")
    return bool(re.fullmatch(r"\d+|pipeline|api|", str(value)))


def environments() -> Iterator[tuple[str, dict[str, Any]]]:
    yield "Globals", RAW["Globals"]["Function"]["Environment"]["Variables"]
    for function in FUNCTIONS:
        environment = RESOURCES[function]["Properties"].get("Environment", {})
        yield function, environment.get("Variables", {})


# ---------------------------------------------------------------------------- https


def test_the_external_system_url_must_be_https() -> None:
    declared = PARAMETERS["ExternalSystemUrl"]
    pattern = re.compile(declared["AllowedPattern"])
    assert pattern.fullmatch(declared["Default"])
    assert pattern.fullmatch("https://crm.example.com/genesys/sync")
    for refused in ("http://crm.example.com/sync", "ftp://crm.example.com", "crm.example.com"):
        assert not pattern.fullmatch(refused), refused
    sync = RESOURCES["SyncExternalFunction"]["Properties"]["Environment"]["Variables"]
    assert sync["EXTERNAL_SYSTEM_URL"] == {"Ref": "ExternalSystemUrl"}


def test_a_genesys_region_given_as_a_url_must_be_https_too() -> None:
    # Refused at deploy time by the parameter's pattern...
    pattern = re.compile(PARAMETERS["GenesysRegion"]["AllowedPattern"])
    for accepted in (
        "mypurecloud.com",
        "mypurecloud.de",
        "usw2.pure.cloud",
        "eu_central_1",
        "https://api.mypurecloud.ie",
        PARAMETERS["GenesysRegion"]["Default"],
    ):
        assert pattern.fullmatch(accepted), accepted
    for refused in ("http://api.mypurecloud.com", "ftp://x", "https://", "evil host", ""):
        assert not pattern.fullmatch(refused), refused
    # ...and by the code, which allows plain http on loopback only (the local emulator).
    assert resolve_endpoints("mypurecloud.de").api_url == "https://api.mypurecloud.de"
    with pytest.raises(ValueError, match="https"):
        resolve_endpoints("http://api.mypurecloud.com")


# ---------------------------------------------------------------------------- static analysis


def test_make_lint_runs_bandit_on_all_shipped_code_and_make_test_runs_lint() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    bandit = [line for line in makefile.splitlines() if "bandit" in line and "-r" in line]
    assert bandit, "make lint runs bandit"
    for path in ("layers/shared/attribute_bridge", "functions", "localdev"):
        assert path in bandit[0]
    assert re.search(r"^lint:", makefile, re.MULTILINE)
    assert re.search(r"^test:.*\blint\b", makefile, re.MULTILINE)
