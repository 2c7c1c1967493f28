"""Security held by template.yaml: least privilege per function, authentication on every
API route, encryption at rest, no secrets in the template, https to the external system.

Read from the template itself (raw YAML with the CloudFormation tags in long form, and
resolved with its parameter defaults), so that a change there is checked here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from attribute_bridge.genesys.endpoints import resolve_endpoints

from localdev.template import _load_yaml, load_template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_TEXT = (REPO / "template.yaml").read_text(encoding="utf-8")
RAW: dict[str, Any] = _load_yaml(TEMPLATE_TEXT)
RESOURCES: dict[str, Any] = RAW["Resources"]
PARAMETERS: dict[str, Any] = RAW["Parameters"]
FUNCTIONS = sorted(k for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function")
RESOLVED = load_template(REPO / "template.yaml")

# Functions that call Genesys and may therefore mint a token under the lease, and the one
# whose job it is. Nobody else may write a parameter.
MINTERS = {
    "TokenRefresherFunction",
    "FetchAttributesFunction",
    "PatchAttributesFunction",
    "AttributesApiFunction",
    "ResolveAttributesFunction",
}
GENESYS_SECRETS = ("GenesysClientIdParameter", "GenesysClientSecretParameter")
# (function, Sid) -> why AWS needs Resource "*" there. None today; add one only with the
# reason (e.g. xray:PutTraceSegments, which has no resource-level permissions).
WILDCARD_RESOURCES_REQUIRED: dict[tuple[str, str], str] = {}
SSM_PARAMETER_ARN = re.compile(
    r"^arn:\$\{AWS::Partition\}:ssm:\$\{AWS::Region\}:\$\{AWS::AccountId\}:parameter\$\{(\w+)\}$"
)


def statements(function: str) -> Iterator[dict[str, Any]]:
    """Every IAM statement of a function's inline policies, both branches of an `Fn::If`."""
    for policy in RESOURCES[function]["Properties"].get("Policies", []):
        assert isinstance(policy, dict) and set(policy) == {"Statement"}, (
            f"{function}: only inline statements (no managed policies or SAM policy "
            f"templates, whose scope is not visible here): {policy}"
        )
        for statement in policy["Statement"]:
            if "Fn::If" in statement:
                _, when_true, when_false = statement["Fn::If"]
                yield from (s for s in (when_true, when_false) if s != {"Ref": "AWS::NoValue"})
            else:
                yield statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_ref(resource: Any) -> tuple[str, str]:
    """("resource", logical id) for `!GetAtt X.Arn`; ("parameter", template parameter) for
    an SSM parameter ARN of this account and region; anything else fails."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        logical_id, attribute = resource["Fn::GetAtt"]
        assert attribute == "Arn" and logical_id in RESOURCES, resource
        return ("resource", logical_id)
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        found = SSM_PARAMETER_ARN.fullmatch(resource["Fn::Sub"])
        assert found, f"not an SSM parameter of this account and region: {resource}"
        assert found.group(1) in PARAMETERS, resource
        return ("parameter", found.group(1))
    raise AssertionError(f"a resource that is not one of the stack's own: {resource!r}")


def grants(function: str) -> set[tuple[str, tuple[str, str]]]:
    """{(action, resource reference)} for a function."""
    found = set()
    for statement in statements(function):
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                found.add((action, resource_ref(resource)))
    return found


def own_dead_letter_queue(function: str) -> str:
    destination = RESOURCES[function]["Properties"]["EventInvokeConfig"]["DestinationConfig"]
    return str(destination["OnFailure"]["Destination"]["Fn::GetAtt"][0])


# ---------------------------------------------------------------------------- IAM


@pytest.mark.parametrize("function", FUNCTIONS)
def test_statements_allow_named_actions_on_named_resources(function: str) -> None:
    for statement in statements(function):
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
            resource_ref(resource)


def test_each_function_has_exactly_the_access_its_code_uses() -> None:
    token = ("parameter", "GenesysTokenParameter")
    genesys_reads = {
        ("ssm:GetParameter", ("parameter", name))
        for name in ("GenesysTokenParameter", *GENESYS_SECRETS)
    }
    mint = {
        ("ssm:PutParameter", token),
        ("dynamodb:PutItem", ("resource", "TokenLeaseTable")),
        ("dynamodb:DeleteItem", ("resource", "TokenLeaseTable")),
    }
    idempotency = {
        (f"dynamodb:{action}", ("resource", "IdempotencyTable"))
        for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
    }
    publish = {("events:PutEvents", ("resource", "AppEventBus"))}
    read_external_auth = {("ssm:GetParameter", ("parameter", "ExternalAuthParameter"))}

    def dead_letters(queue: str) -> set[tuple[str, tuple[str, str]]]:
        return {("sqs:SendMessage", ("resource", queue))}

    expected = {
        "FetchAttributesFunction": genesys_reads
        | mint
        | idempotency
        | publish
        | dead_letters("FetchAttributesDLQ"),
        "PatchAttributesFunction": genesys_reads
        | mint
        | idempotency
        | publish
        | dead_letters("PatchAttributesDLQ"),
        "SyncExternalFunction": idempotency
        | publish
        | dead_letters("SyncExternalDLQ")
        | {("ssm:GetParameter", ("parameter", "ExternalAuthParameter"))},
        "TokenRefresherFunction": genesys_reads | mint | dead_letters("TokenRefresherDLQ"),
        "AttributesApiFunction": genesys_reads | mint | publish | read_external_auth,
        "ResolveAttributesFunction": genesys_reads | mint | publish | read_external_auth,
    }
    assert {function: grants(function) for function in FUNCTIONS} == expected


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_sends_dead_letters_to_its_own_queue_only(function: str) -> None:
    queues = {ref for action, (_, ref) in grants(function) if action.startswith("sqs:")}
    if "EventInvokeConfig" in RESOURCES[function]["Properties"]:
        assert queues == {own_dead_letter_queue(function)}
        environment = RESOURCES[function]["Properties"]["Environment"]["Variables"]
        assert environment["DEAD_LETTER_QUEUE_URL"] == {"Ref": own_dead_letter_queue(function)}
    else:
        assert queues == set()


def test_only_the_token_minters_write_a_parameter_and_only_the_token() -> None:
    writers = {}
    for function in FUNCTIONS:
        written = {
            ref
            for action, ref in grants(function)
            if action.startswith("ssm:") and action != "ssm:GetParameter"
        }
        if written:
            writers[function] = written
    assert set(writers) == MINTERS
    assert all(refs == {("parameter", "GenesysTokenParameter")} for refs in writers.values())


def test_nobody_can_change_the_genesys_client_credentials() -> None:
    for function in FUNCTIONS:
        for action, (kind, ref) in grants(function):
            if kind == "parameter" and ref in GENESYS_SECRETS:
                assert action == "ssm:GetParameter", f"{function} may {action} {ref}"


def test_the_function_without_genesys_cannot_read_genesys_secrets() -> None:
    refs = {ref for _, (_, ref) in grants("SyncExternalFunction")}
    assert not refs & {"GenesysTokenParameter", *GENESYS_SECRETS}


def test_the_dead_letter_queue_policy_admits_only_eventbridge_of_this_account() -> None:
    policies = [k for k, v in RESOURCES.items() if v["Type"] == "AWS::SQS::QueuePolicy"]
    assert policies == ["RuleDeadLetterQueuePolicy"]
    (statement,) = RESOURCES["RuleDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    queues = {resource_ref(resource)[1] for resource in statement["Resource"]}
    synchronous = ("AttributesApiFunction", "ResolveAttributesFunction")  # no OnFailure DLQ
    assert queues == {own_dead_letter_queue(f) for f in FUNCTIONS if f not in synchronous}


# ---------------------------------------------------------------------------- API


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
            # on the API with the auth settings, never SAM's implicit (unauthenticated) one,
            # and no route opts out of them
            assert event["Properties"].get("RestApiId") == {"Ref": "AttributesApi"}, where
            assert "Auth" not in event["Properties"], where
    assert routes == 4


@dataclass(frozen=True)
class Deployed:
    """What CloudFormation would make of the template for one ApiAuthorization value."""

    resources: dict[str, Any]
    outputs: dict[str, Any]
    condition: Callable[[str], bool]

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
        return {r["Type"] for r in self.resources.values()}


def deployed(api_authorization: str) -> Deployed:
    """The template with its `Fn::If`s resolved for the parameter (what
    AWS::LanguageExtensions does first), then the real SAM transform."""
    from samtranslator.translator.transform import transform

    chosen = load_template(
        REPO / "template.yaml", parameter_overrides={"ApiAuthorization": api_authorization}
    )
    template = language_extensions(_load_yaml(TEMPLATE_TEXT), chosen.condition)
    for resource in template["Resources"].values():  # as `sam package` would leave them
        for uri in ("CodeUri", "ContentUri"):
            if uri in resource.get("Properties", {}):
                resource["Properties"][uri] = "s3://artifacts/code.zip"

    class NoManagedPolicies:  # the template uses inline statements only (tested above)
        def load(self) -> dict[str, str]:
            return {}

    translated = transform(template, {"ApiAuthorization": api_authorization}, NoManagedPolicies())
    return Deployed(translated["Resources"], translated.get("Outputs", {}), chosen.condition)


def language_extensions(node: Any, condition: Callable[[str], bool]) -> Any:
    """Resolve `Fn::If` and drop `AWS::NoValue`, as CloudFormation's LanguageExtensions
    transform does when the condition depends on parameters only."""
    if isinstance(node, list):
        return [language_extensions(item, condition) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Fn::If"}:
        name, when_true, when_false = node["Fn::If"]
        return language_extensions(when_true if condition(name) else when_false, condition)
    resolved = {key: language_extensions(value, condition) for key, value in node.items()}
    return {key: value for key, value in resolved.items() if value != {"Ref": "AWS::NoValue"}}


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


@pytest.mark.parametrize(
    ("api_authorization", "security"),
    [("API_KEY", [{"api_key": []}]), ("AWS_IAM", [{"AWS_IAM": []}])],
)
def test_every_deployed_api_method_requires_the_chosen_auth(
    api_authorization: str, security: list[dict[str, list[str]]]
) -> None:
    stack = deployed(api_authorization)

    methods = stack.methods()
    assert len(methods) == 4
    for method, operation in methods.items():
        assert operation.get("security") == security, method
        # API Gateway invokes the function by its resource-based permission, never with
        # the caller's credentials: execute-api:Invoke is all a caller needs.
        assert "credentials" not in operation["x-amazon-apigateway-integration"], method


@pytest.mark.parametrize("api_authorization", ["API_KEY", "AWS_IAM"])
def test_every_output_of_the_deployed_stack_resolves(api_authorization: str) -> None:
    stack = deployed(api_authorization)
    known = {*stack.resources, *PARAMETERS}

    for name, output in stack.outputs.items():
        if "Condition" in output and not stack.condition(output["Condition"]):
            continue
        for target in referenced_names(output["Value"]):
            assert target.startswith("AWS::") or target in known, f"{name} -> {target}"


def test_api_keys_and_their_throttled_usage_plan_exist_only_with_api_key_auth() -> None:
    assert PARAMETERS["ApiAuthorization"]["Default"] == "API_KEY"
    key_resources = {"AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::ApiKey"}

    assert key_resources <= deployed("API_KEY").types()
    assert not key_resources & deployed("AWS_IAM").types()  # a key that opens nothing: none


def test_the_api_is_throttled_and_logged() -> None:
    api = RESOURCES["AttributesApi"]["Properties"]
    assert api["Auth"]["UsagePlan"]["Throttle"]
    assert all(setting.get("ThrottlingRateLimit") for setting in api["MethodSettings"])
    assert api["AccessLogSetting"]["DestinationArn"]


# ---------------------------------------------------------------------------- data at rest


def test_queues_are_encrypted() -> None:
    queues = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::SQS::Queue"}
    assert queues
    for name, queue in queues.items():
        properties = queue.get("Properties", {})
        assert properties.get("SqsManagedSseEnabled") is True or properties.get("KmsMasterKeyId"), (
            name
        )


def test_tables_are_encrypted() -> None:
    tables = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::DynamoDB::Table"}
    assert set(tables) == {"IdempotencyTable", "TokenLeaseTable", "ConversationStateTable"}
    for name, table in tables.items():
        assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True, name


# ---------------------------------------------------------------------------- secrets


def test_secret_parameters_hold_parameter_names_not_values() -> None:
    for name in ("GenesysTokenParameter", *GENESYS_SECRETS, "ExternalAuthParameter"):
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
            # names of SSM parameters (Refs to the parameters above) or plain numbers only
            ok = value == {"Ref": key_parameter(key)} or re.fullmatch(r"\d+", str(value))
            assert ok, f"{where}: {key} = {value!r}"


def environments() -> Iterator[tuple[str, dict[str, Any]]]:
    yield "Globals", RAW["Globals"]["Function"]["Environment"]["Variables"]
    for function in FUNCTIONS:
        environment = RESOURCES[function]["Properties"].get("Environment", {})
        yield function, environment.get("Variables", {})


def key_parameter(variable: str) -> str:
    """GENESYS_CLIENT_SECRET_PARAMETER -> GenesysClientSecretParameter."""
    return "".join(part.capitalize() for part in variable.lower().split("_"))


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
