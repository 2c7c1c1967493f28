"""`python -m localdev doctor --stack NAME --conversation ID [--patch-test-attribute]`:
checks a real deployment end to end and prints a checklist, one line per check, each
failure saying what to fix. Exit status 0: all good; 1: a check failed; 2: usage error.

The checks, in the order the connection is built (README "Deploy"):
1. the Genesys client id and secret exist in SSM as SecureStrings and decrypt;
2. a token can be minted with them (and whether the stored token still works);
3. that OAuth client can read the given conversation (its role and divisions);
4. with --patch-test-attribute only: it can PATCH the customer's attribute
   `participant_attributes_doctor` (a timestamp, harmless) through the service's write path;
   then each extra OAuth client (GenesysExtraClientCount): its SSM credentials decrypt and
   mint a token;
5. the partner event source exists and is associated with a bus of its name;
6. the stack's EventBridge rules are enabled;
7. the dead-letter queues are empty.

What the stack is comes from CloudFormation (its parameters and resources); AWS and Genesys
are behind the two small adapters below, so that the tests run the same checks against
moto and the Genesys emulator (`local_deployment`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

if TYPE_CHECKING:
    from localdev.sandbox import Sandbox

LAYER_SOURCE = Path(__file__).resolve().parent.parent / "layers" / "shared"
PROBE_ATTRIBUTE = "participant_attributes_doctor"
_BUDGET_SECONDS = 20.0


class DoctorUsageError(ValueError):
    """Bad command line: one line on stderr, exit status 2."""


# ---------------------------------------------------------------------------- what to check


@dataclass(frozen=True)
class Rule:
    name: str
    bus: str | None  # None: not known, one of the deployment's buses


@dataclass(frozen=True)
class ExtraClient:
    """One of GenesysExtraClientCount's OAuth clients, by its SSM parameter names."""

    name: str
    client_id_parameter: str
    client_secret_parameter: str


@dataclass(frozen=True)
class Deployment:
    """What the checks need to know about one deployed stack."""

    stack_name: str
    stage: str
    genesys_region: str
    client_id_parameter: str
    client_secret_parameter: str
    token_parameter: str
    event_source_name: str
    event_buses: tuple[str, ...]  # where the rules may be: Genesys's, the app's, default
    rules: tuple[Rule, ...]
    dead_letter_queues: Mapping[str, str]  # logical id -> queue URL
    extra_clients: tuple[ExtraClient, ...] = ()


def stage_prefix(stage: str) -> str:
    return f"/participant-attributes/{stage}/genesys"


def ssm_name(value: str, stage: str, leaf: str) -> str:
    """A template's GenesysClient*Parameter value: empty means the per-stage name
    (CONTRACT.md "SSM names")."""
    return value or f"{stage_prefix(stage)}/{leaf}"


def extra_clients(names: Sequence[str], prefix: str) -> tuple[ExtraClient, ...]:
    """The extra clients' SSM names, by the layer's own rule (oauth_clients.py)."""
    _layer_on_path()
    from attribute_bridge.oauth_clients import client_parameters

    clients = []
    for name in names:
        parameters = client_parameters(prefix, name)
        clients.append(ExtraClient(name, parameters.client_id, parameters.client_secret))
    return tuple(clients)


def _layer_on_path() -> None:
    if str(LAYER_SOURCE) not in sys.path:
        sys.path.insert(0, str(LAYER_SOURCE))


def deployment_from_cloudformation(cloudformation: Any, stack_name: str) -> Deployment:
    """The stack's parameters and resources, as CloudFormation reports them."""
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    parameters = {
        p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])
    }
    resources = [
        resource
        for page in cloudformation.get_paginator("list_stack_resources").paginate(
            StackName=stack_name
        )
        for resource in page["StackResourceSummaries"]
    ]
    rules = []
    for resource in resources:
        if resource["ResourceType"] == "AWS::Events::Rule":
            # CloudFormation names a rule on a custom bus "bus|rule"; just "rule" otherwise
            # (and in moto): then the bus is found among the deployment's buses.
            bus, _, name = resource["PhysicalResourceId"].rpartition("|")
            rules.append(Rule(name, bus or None))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    queues = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in resources
        if r["ResourceType"] == "AWS::SQS::Queue" and r["LogicalResourceId"].endswith("DLQ")
    }
    stage = parameters.get("Stage", "dev")
    _layer_on_path()
    from attribute_bridge.oauth_clients import extra_client_names

    extra_count = parameters.get("GenesysExtraClientCount", "0") or "0"
    return Deployment(
        stack_name=stack_name,
        stage=stage,
        genesys_region=parameters.get("GenesysRegion", "mypurecloud.com"),
        client_id_parameter=ssm_name(
            parameters.get("GenesysClientIdParameter", ""), stage, "client-id"
        ),
        client_secret_parameter=ssm_name(
            parameters.get("GenesysClientSecretParameter", ""), stage, "client-secret"
        ),
        token_parameter=ssm_name(parameters.get("GenesysTokenParameter", ""), stage, "token"),
        event_source_name=parameters.get("GenesysEventSourceName", ""),
        event_buses=tuple(
            bus
            for bus in (
                parameters.get("GenesysEventSourceName", ""),
                outputs.get("AppEventBusName", ""),
                "default",
            )
            if bus
        ),
        rules=tuple(rules),
        dead_letter_queues=queues,
        extra_clients=extra_clients(extra_client_names(int(extra_count)), stage_prefix(stage)),
    )


# ---------------------------------------------------------------------------- adapters


class Problem(Exception):
    """A check's failure, worded as what is wrong; `fix` says what to do about it."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


class NotTried(Exception):
    """A check that depends on one that failed: shown as skipped."""


class AwsSide(Protocol):
    def secure_string(self, name: str) -> str: ...

    def event_source_state(self, name: str) -> str | None: ...

    def bus_exists(self, name: str) -> bool: ...

    def rule_state(self, rule: Rule, buses: Sequence[str]) -> tuple[str, str] | None: ...

    def queue_depth(self, url: str) -> int: ...


@dataclass(frozen=True)
class ConversationSeen:
    conversation_id: str
    media_type: str  # VOICE, MESSAGE, or another Genesys media (read on the generic route)
    customer_id: str | None
    participants: int
    ended: bool


class GenesysSide(Protocol):
    def mint(self, client_id: str, client_secret: str) -> float: ...  # expires_at

    def stored_token_works(self, stored: str) -> bool: ...

    def read(self, conversation_id: str) -> ConversationSeen: ...

    def patch_probe(self, seen: ConversationSeen, value: str) -> str: ...  # the value read back


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class BotoAws:
    """SSM, EventBridge and SQS through boto3 clients (the real account, or moto)."""

    def __init__(self, client: Callable[[str], Any]) -> None:
        self._client = client

    def secure_string(self, name: str) -> str:
        try:
            parameter = self._client("ssm").get_parameter(Name=name, WithDecryption=True)
        except Exception as error:
            code = _error_code(error)
            if code == "ParameterNotFound":
                raise Problem(
                    f"SSM {name} does not exist",
                    "apply Terraform stage 1 (genesys/terraform/connect) for this stage, "
                    "or point the stack's Genesys*Parameter at the right name",
                ) from None
            raise Problem(
                f"SSM {name} cannot be read or decrypted ({code or type(error).__name__})",
                "allow ssm:GetParameter on it (and kms:Decrypt if it uses a customer key)",
            ) from None
        value = parameter["Parameter"]
        if value.get("Type") != "SecureString":
            raise Problem(
                f"SSM {name} is a {value.get('Type')}, not a SecureString",
                f"store it again with --type SecureString (aws ssm put-parameter --name {name})",
            )
        if not str(value.get("Value", "")).strip():
            raise Problem(f"SSM {name} is empty", "apply Terraform stage 1 again")
        return str(value["Value"])

    def event_source_state(self, name: str) -> str | None:
        try:
            return str(self._client("events").describe_event_source(Name=name)["State"])
        except Exception as error:
            if _error_code(error) == "ResourceNotFoundException":
                return None
            raise

    def bus_exists(self, name: str) -> bool:
        try:
            self._client("events").describe_event_bus(Name=name)
        except Exception as error:
            if _error_code(error) == "ResourceNotFoundException":
                return False
            raise
        return True

    def rule_state(self, rule: Rule, buses: Sequence[str]) -> tuple[str, str] | None:
        """(bus, state) of the rule, or None when no bus has it."""
        for bus in [rule.bus] if rule.bus else buses:
            try:
                answer = self._client("events").describe_rule(Name=rule.name, EventBusName=bus)
            except Exception as error:
                if _error_code(error) == "ResourceNotFoundException":
                    continue
                raise
            return bus, str(answer["State"])
        return None

    def queue_depth(self, url: str) -> int:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attributes = self._client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)
        return sum(int(attributes["Attributes"].get(name, 0)) for name in names)


class _Known:
    """The credentials the doctor already read, as the minter's SecureParameters."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def get_secure(self, name: str, max_age: int, force: bool = False) -> str:
        return self._values[name]

    def put_secure(self, name: str, value: str) -> None:
        raise NotImplementedError("the doctor never writes credentials or tokens")


class _OneToken:
    """A TokenProvider that hands out the token the doctor minted: the checks are about
    that client, not about the stored token."""

    def __init__(self) -> None:
        self.token: str | None = None

    def access_token(self, budget: Any) -> str:
        from attribute_bridge.errors import TokenUnavailable

        if self.token is None:
            raise TokenUnavailable("the doctor calls Genesys only after minting a token")
        return self.token

    def reject(self, token: str, budget: Any) -> None:
        return None


class LayerGenesys:
    """Genesys through the service's own layer: its token minter, its GenesysClient and
    its write path (attribute_bridge.use_cases.patch_attributes)."""

    def __init__(self, region: str) -> None:
        _layer_on_path()
        from attribute_bridge.genesys.endpoints import resolve_endpoints

        self._region = region
        self._endpoints = resolve_endpoints(region)
        self._tokens = _OneToken()

    def _budget(self) -> Any:
        from attribute_bridge.budget import Budget

        return Budget.seconds(_BUDGET_SECONDS)

    def _client(self) -> Any:
        from attribute_bridge.genesys.client import GenesysClient

        return GenesysClient(self._endpoints, self._tokens)

    def mint(self, client_id: str, client_secret: str) -> float:
        from attribute_bridge.errors import TokenUnavailable, Unauthorized
        from attribute_bridge.http import shared_session
        from attribute_bridge.token_store import ClientCredentialsMinter

        minter = ClientCredentialsMinter(
            self._endpoints.login_url,
            _Known({"id": client_id, "secret": client_secret}),
            "id",
            "secret",
            shared_session(),
        )
        try:
            token = minter.mint(self._budget())
        except Unauthorized as error:
            raise Problem(
                f"Genesys ({self._endpoints.login_url}) refused the client credentials "
                f"({error.status})",
                "the SSM client id/secret must be an active client-credentials OAuth client of "
                "this org and region: apply Terraform stage 1 again (bump "
                "client_secret_version to rewrite the secret), check GenesysRegion",
            ) from None
        except TokenUnavailable as error:
            raise Problem(
                f"no token from {self._endpoints.login_url}: {error}",
                "check GenesysRegion (the org's region domain) and the network path to Genesys",
            ) from None
        self._tokens.token = token.access_token
        return token.expires_at

    def stored_token_works(self, stored: str) -> bool:
        from attribute_bridge.token_store import StoredToken

        try:
            return StoredToken.from_json(stored).usable(time.time(), 300)
        except (ValueError, KeyError, TypeError):
            return False

    def read(self, conversation_id: str) -> ConversationSeen:
        from attribute_bridge.errors import GenesysError, NotFound, Unauthorized
        from attribute_bridge.genesys.client import to_conversation

        try:
            # The generic route on purpose: it is the one that needs the role's permission.
            model = self._client().get_conversation(conversation_id, "GENERIC", self._budget())
        except Unauthorized as error:
            raise Problem(
                f"reading conversation {conversation_id} was refused ({error.status})",
                "the service's role needs conversation:communication:view on the "
                "conversation's division: add the division to division_ids in "
                "genesys/terraform/connect and apply",
            ) from None
        except NotFound:
            raise Problem(
                f"conversation {conversation_id} not found",
                "give a live conversation of this org and region; a conversation in a "
                "division the role lacks may look absent too (division_ids)",
            ) from None
        except GenesysError as error:
            raise Problem(f"reading conversation {conversation_id}: {error}", "retry") from None
        media = _media_type(model)
        conversation = to_conversation(model, media)
        customer = next((p.id for p in conversation.participants if p.purpose == "customer"), None)
        return ConversationSeen(
            conversation_id=conversation.id,
            media_type=media,
            customer_id=customer,
            participants=len(conversation.participants),
            ended=conversation.ended,
        )

    def patch_probe(self, seen: ConversationSeen, value: str) -> str:
        from attribute_bridge.config import Settings
        from attribute_bridge.errors import GenesysError, Unauthorized
        from attribute_bridge.events import AttributesDetail
        from attribute_bridge.genesys.client import to_conversation
        from attribute_bridge.use_cases import patch_attributes

        if seen.customer_id is None:
            raise Problem(
                f"conversation {seen.conversation_id} has no customer participant",
                "give a conversation with a customer (an inbound call or chat)",
            )
        request = AttributesDetail(
            conversation_id=seen.conversation_id,
            participant_id=seen.customer_id,
            media_type=seen.media_type,
            attributes={PROBE_ATTRIBUTE: value},
            correlation_id=f"doctor-{value}",
            source_event_id=f"doctor-{value}",
            read_at_ms=int(time.time() * 1000),  # the conversation was read just now
        )
        # The service's write rules, with the probe key the only one allowed.
        settings = Settings.from_env(
            {"GENESYS_REGION": self._region, "WRITABLE_ATTRIBUTES": PROBE_ATTRIBUTE}
        )
        client = self._client()
        try:
            result = patch_attributes(request, client, _ProbeState(), settings, self._budget())
        except Unauthorized as error:
            raise Problem(
                f"PATCH of the customer's attributes was refused ({error.status})",
                "the service's role lacks the permission for participant attributes: add it "
                "to genesyscloud_auth_role.service in genesys/terraform/connect",
            ) from None
        except GenesysError as error:
            raise Problem(f"PATCH of the customer's attributes: {error}", "retry") from None
        if result.outcome != "patched":
            raise Problem(
                f"PATCH not applied: {result.outcome} ({result.reason})",
                "give a live conversation with a customer (an ended one cannot be written)",
            )
        model = client.get_conversation(seen.conversation_id, seen.media_type, self._budget())
        participants = to_conversation(model, seen.media_type).participants
        customer = next(p for p in participants if p.id == seen.customer_id)
        return customer.attributes.get(PROBE_ATTRIBUTE, "")


class _ProbeState:
    """The doctor's own ConversationState, in memory: its probe write is not the chain's,
    so it neither reads nor records anything in the stack's ConversationStateTable (and
    needs no access to it). The write path then reads the participant's purpose itself."""

    def __init__(self) -> None:
        self._purposes: dict[tuple[str, str], tuple[str, str]] = {}

    def participant(self, conversation_id: str, participant_id: str) -> Any:
        from attribute_bridge.conversation_state import ParticipantRecord

        known = self._purposes.get((conversation_id, participant_id))
        return ParticipantRecord(purpose=known[0], media_type=known[1]) if known else None

    def remember_participants(
        self, conversation_id: str, media_type: str, purposes: Mapping[str, str]
    ) -> None:
        for participant_id, purpose in purposes.items():
            self._purposes[(conversation_id, participant_id)] = (purpose, media_type)

    def record_writes(
        self, conversation_id: str, participant_id: str, keys: Any, at_ms: int
    ) -> None:
        return None

    def record_sync(self, conversation_id: str, participant_id: str, fingerprint: str) -> None:
        return None

    def count_sync(self, conversation_id: str, now: float | None = None) -> int:
        return 0


def _media_type(model: Any) -> str:
    """The media of a generic Conversation, from its participants' communications."""
    for participant in model.participants or []:
        if getattr(participant, "calls", None):
            return "VOICE"
        if getattr(participant, "messages", None):
            return "MESSAGE"
    return "GENERIC"


# ---------------------------------------------------------------------------- the checks


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: not tried
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[self.ok]
        fix = f" -> fix: {self.fix}" if self.fix else ""
        return f"[{mark}] {self.name}: {self.detail}{fix}"


@dataclass
class _Run:
    checks: list[Check] = field(default_factory=list)

    @contextlib.contextmanager
    def check(self, name: str) -> Iterator[list[str]]:
        """The block appends its success detail; a Problem becomes a failed line."""
        detail: list[str] = []
        try:
            yield detail
        except Problem as problem:
            self.checks.append(Check(name, False, str(problem), problem.fix))
            return
        except NotTried as reason:
            self.checks.append(Check(name, None, f"not tried: {reason}"))
            return
        self.checks.append(Check(name, True, detail[0] if detail else "ok"))


def run_checks(
    deployment: Deployment,
    aws: AwsSide,
    genesys: GenesysSide,
    conversation_id: str,
    patch_test_attribute: bool,
    clock: Callable[[], float] = time.time,
) -> list[Check]:
    run = _Run()
    credentials: dict[str, str] = {}
    for key, name in (
        ("client id", deployment.client_id_parameter),
        ("client secret", deployment.client_secret_parameter),
    ):
        with run.check(f"SSM {key}") as detail:
            credentials[key] = aws.secure_string(name)
            detail.append(f"{name} exists and decrypts")

    minted = False
    with run.check("token") as detail:
        if len(credentials) < 2:
            raise NotTried("the SSM credentials above failed")
        expires_at = genesys.mint(credentials["client id"], credentials["client secret"])
        minted = True
        stored = _stored_token(aws, deployment.token_parameter, genesys)
        detail.append(f"minted (valid {max(0.0, expires_at - clock()) / 3600:.1f} h); {stored}")

    seen: ConversationSeen | None = None
    with run.check("conversation read") as detail:
        if not minted:
            raise NotTried("no token")
        seen = genesys.read(conversation_id)
        state = "ended" if seen.ended else "live"
        who = "a customer" if seen.customer_id else "no customer"
        detail.append(
            f"{seen.conversation_id}: {seen.media_type}, {state}, {seen.participants} "
            f"participants, {who}"
        )

    if not patch_test_attribute:
        run.checks.append(Check("test attribute PATCH", None, "not tried (--patch-test-attribute)"))
    else:
        with run.check("test attribute PATCH") as detail:
            if seen is None:
                raise NotTried("the conversation was not read")
            value = str(int(clock()))
            read_back = genesys.patch_probe(seen, value)
            shown = "read back" if read_back == value else "accepted, not visible yet"
            detail.append(f"{PROBE_ATTRIBUTE}={value} on the customer: {shown}")

    # After the checks that use the pipeline's token: minting replaces the doctor's token.
    for client in deployment.extra_clients:
        with run.check(f"{client.name} token") as detail:
            client_id = aws.secure_string(client.client_id_parameter)
            client_secret = aws.secure_string(client.client_secret_parameter)
            expires_at = genesys.mint(client_id, client_secret)
            detail.append(
                f"{client.client_id_parameter} and .../client-secret decrypt; minted "
                f"(valid {max(0.0, expires_at - clock()) / 3600:.1f} h)"
            )

    with run.check("partner event source") as detail:
        detail.append(_partner_source(aws, deployment.event_source_name))

    with run.check("rules") as detail:
        detail.append(_rules(aws, deployment))

    with run.check("dead-letter queues") as detail:
        detail.append(_dead_letters(aws, deployment))
    return run.checks


def _stored_token(aws: AwsSide, name: str, genesys: GenesysSide) -> str:
    try:
        stored = aws.secure_string(name)
    except Problem:
        return f"no stored token yet in {name} (the refresher writes it)"
    return (
        "the stored token works"
        if genesys.stored_token_works(stored)
        else ('the stored token has expired (invoke the refresher with {"force": true})')
    )


def _partner_source(aws: AwsSide, name: str) -> str:
    state = aws.event_source_state(name)
    if state is None:
        raise Problem(
            f"{name} does not exist in this account and region",
            "Genesys creates it when the EventBridge integration is active (Terraform stage "
            "1: aws_account_id, aws_region, event_source_suffix); GenesysEventSourceName in "
            "samconfig.toml must equal `terraform output partner_event_source_name`",
        )
    if state != "ACTIVE":
        raise Problem(
            f"{name} is {state}, not associated with an event bus",
            "deploy with CreateGenesysEventBus=true (samconfig.toml), or associate it in the "
            "EventBridge console (Partner event sources); DELETED: re-activate the Genesys "
            "integration and apply stage 1 again",
        )
    if not aws.bus_exists(name):
        raise Problem(
            f"{name} is active but no event bus of that name exists",
            "deploy with CreateGenesysEventBus=true: the bus must bear the source's name",
        )
    return f"{name} is ACTIVE, with its bus"


def _rules(aws: AwsSide, deployment: Deployment) -> str:
    if not deployment.rules:
        raise Problem("the stack has no EventBridge rules", "deploy the stack again")
    broken: list[str] = []
    disabled: list[tuple[str, str]] = []
    for rule in deployment.rules:
        found = aws.rule_state(rule, deployment.event_buses)
        if found is None:
            broken.append(f"{rule.name} is missing")
        elif found[1] != "ENABLED":
            broken.append(f"{rule.name} on {found[0]} is {found[1]}")
            disabled.append((rule.name, found[0]))
    if not broken:
        return f"{len(deployment.rules)} enabled"
    fix = (
        f"aws events enable-rule --name {disabled[0][0]} --event-bus-name {disabled[0][1]}"
        if disabled
        else "deploy the stack again (sam deploy --config-env STAGE)"
    )
    raise Problem("; ".join(broken), fix)


def _dead_letters(aws: AwsSide, deployment: Deployment) -> str:
    if not deployment.dead_letter_queues:
        raise Problem("the stack has no dead-letter queues", "deploy the stack again")
    full = {
        logical_id: depth
        for logical_id, url in sorted(deployment.dead_letter_queues.items())
        if (depth := aws.queue_depth(url))
    }
    if full:
        logical_id = next(iter(full))
        function = logical_id.removesuffix("DLQ") + "Function"
        raise Problem(
            ", ".join(f"{q} holds {n} message(s)" for q, n in full.items()),
            f"read why (aws sqs receive-message --queue-url "
            f"{deployment.dead_letter_queues[logical_id]}), fix the cause, then replay: "
            f"python scripts/replay_dead_letters.py --stack {deployment.stack_name} "
            f"--function {function}",
        )
    return f"{len(deployment.dead_letter_queues)} empty"


# ---------------------------------------------------------------------------- command line


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The `doctor` subcommand's arguments; its usage errors are one line (exit 2)."""
    parser.add_argument("--stack", required=True, help="the deployed stack (samconfig stack_name)")
    parser.add_argument("--conversation", required=True, help="a live conversation id (UUID)")
    parser.add_argument("--region", help="AWS region of the stack (default: the AWS config's)")
    parser.add_argument(
        "--patch-test-attribute",
        action="store_true",
        help=f"also PATCH the customer's attribute {PROBE_ATTRIBUTE} (a timestamp)",
    )

    def one_line_error(message: str) -> NoReturn:
        print(f"python -m localdev doctor: {message}", file=sys.stderr)
        raise SystemExit(2)

    parser.error = one_line_error  # type: ignore[method-assign]


def doctor_main(
    args: argparse.Namespace,
    deployment_for: Callable[[str], Deployment] | None = None,
    aws: AwsSide | None = None,
    genesys_for: Callable[[str], GenesysSide] | None = None,
    out: Any = None,
) -> int:
    """Real use: CloudFormation, boto3 and the layer's Genesys client. Tests pass the
    local ones (see `local_deployment`)."""
    out = out or sys.stdout
    try:
        conversation_id = _uuid(args.conversation)
    except DoctorUsageError as error:
        print(f"python -m localdev doctor: {error}", file=sys.stderr)
        return 2
    if aws is None or deployment_for is None:
        import boto3

        session = boto3.session.Session(region_name=args.region)
        aws = aws or BotoAws(session.client)
        cloudformation = session.client("cloudformation")
        deployment_for = deployment_for or (
            lambda name: deployment_from_cloudformation(cloudformation, name)
        )
    try:
        deployment = deployment_for(args.stack)
    except Exception as error:
        print(
            f"[FAIL] stack: {args.stack} cannot be read ({_error_code(error) or error}) -> fix: "
            "check --stack (samconfig.toml's stack_name), --region and your AWS credentials",
            file=out,
        )
        return 1
    genesys = (genesys_for or LayerGenesys)(deployment.genesys_region)
    print(f"doctor: stack {deployment.stack_name} (stage {deployment.stage})", file=out)
    checks = run_checks(deployment, aws, genesys, conversation_id, args.patch_test_attribute)
    for check in checks:
        print(check.line(), file=out)
    return 1 if any(check.ok is False for check in checks) else 0


def _uuid(value: str) -> str:
    import re

    if not re.fullmatch(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", value):
        raise DoctorUsageError(f"--conversation must be a conversation id (UUID), got {value!r}")
    return value


# ---------------------------------------------------------------------------- locally


@contextlib.contextmanager
def local_deployment(box: Sandbox, stack_name: str = "local") -> Iterator[Deployment]:
    """The sandbox's stack as a deployment: moto gets what CloudFormation and Genesys
    would have made (the partner event source and its bus, every rule of the template,
    enabled); the dead-letter queues and the SSM credentials are the sandbox's own."""
    from localdev.sandbox import _client

    template = box.template
    source = str(template.parameters["GenesysEventSourceName"])
    events = _client("events")
    with _partner_buses_in_moto():
        events.create_partner_event_source(Name=source, Account="123456789012")
        events.create_event_bus(Name=source, EventSourceName=source)
        rules = []
        for spec in template.rules:
            bus = spec.event_bus or "default"
            rule = Rule(f"{stack_name}-{spec.target_function}{spec.name}", None)
            pattern = json.dumps(spec.pattern)
            events.put_rule(Name=rule.name, EventBusName=bus, State="ENABLED", EventPattern=pattern)
            rules.append(rule)
        stage = str(template.parameters["Stage"])
        refresher = template.functions["TokenRefresherFunction"].environment
        _layer_on_path()
        from attribute_bridge.oauth_clients import parse_extra_clients

        extra = parse_extra_clients(refresher.get("GENESYS_EXTRA_CLIENTS", ""))
        yield Deployment(
            stack_name=stack_name,
            stage=stage,
            genesys_region=str(template.parameters["GenesysRegion"]),
            client_id_parameter=ssm_name(
                str(template.parameters["GenesysClientIdParameter"]), stage, "client-id"
            ),
            client_secret_parameter=ssm_name(
                str(template.parameters["GenesysClientSecretParameter"]), stage, "client-secret"
            ),
            token_parameter=ssm_name(
                str(template.parameters["GenesysTokenParameter"]), stage, "token"
            ),
            event_source_name=source,
            event_buses=(source, box.resource_names["AppEventBus"], "default"),
            rules=tuple(rules),
            dead_letter_queues={
                logical_id: box.resource_names[logical_id]
                for logical_id in template.resource_ids("AWS::SQS::Queue")
                if logical_id.endswith("DLQ")
            },
            extra_clients=extra_clients(extra, refresher.get("GENESYS_EXTRA_CLIENTS_PREFIX", "")),
        )


@contextlib.contextmanager
def _partner_buses_in_moto() -> Iterator[None]:
    """Two fidelity fixes, as localdev/moto_aws.py makes for DynamoDB: a partner bus's name
    contains '/', which moto's rule calls cut at the last '/' (AWS accepts the name, or the
    ARN after ':event-bus/'); and moto's DescribeEventSource of an unknown name raises a
    KeyError where AWS answers ResourceNotFoundException."""
    from moto.core.exceptions import JsonRESTError
    from moto.events.models import EventsBackend

    normalize, describe = (
        EventsBackend._normalize_event_bus_arn,
        EventsBackend.describe_event_source,
    )

    def normalize_name(self: Any, event_bus_arn: str | None) -> str:
        if event_bus_arn is None:
            return "default"
        return event_bus_arn.split(":event-bus/", 1)[-1]

    def describe_source(self: Any, name: str) -> Any:
        if name not in self.event_sources:
            raise JsonRESTError("ResourceNotFoundException", f"Event source {name} does not exist.")
        return describe(self, name)

    EventsBackend._normalize_event_bus_arn = normalize_name  # type: ignore[method-assign]
    EventsBackend.describe_event_source = describe_source  # type: ignore[method-assign]
    try:
        yield
    finally:
        EventsBackend._normalize_event_bus_arn = normalize  # type: ignore[method-assign]
        EventsBackend.describe_event_source = describe  # type: ignore[method-assign]
