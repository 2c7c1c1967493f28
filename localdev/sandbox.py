"""A local stand-in for a deployed stack, built from template.yaml.

- AWS: moto, with a queue, table or event bus for every such resource in the template,
  named after its logical id; the template's `!Ref`s resolve to them.
- Genesys Cloud: the emulator; External system: the stub.
- Each function's environment: Globals + the function's own variables from the template
  (as `sam local invoke` computes it), plus overrides in sam's `--env-vars` format.
- Events the functions emit on the app's bus are captured (a catch-all rule to an SQS
  queue, delivered by moto) so that a runner can route them by the template's rules.
- A function that invokes TokenRefresher for a token runs its handler in-process, one
  invocation at a time like its reserved concurrency of 1 (LocalTokenRefresher).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType
from typing import Any

from localdev.emulator import EmulatorConfig, GenesysEmulator
from localdev.external import ExternalSystemStub
from localdev.template import Template, load_template

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_SOURCE = REPO_ROOT / "layers" / "shared"
LOCAL_ENVIRONMENT = dict(
    [
        # moto accepts any credentials; these keep boto3 from looking for real ones.
        ("AWS_ACCESS_KEY_ID", "testing"),
        # moto placeholders, not secrets:
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_REGION", "us-east-1"),
        ("POWERTOOLS_TRACE_DISABLED", "true"),  # no X-Ray daemon here
    ]
)


class _CurrentStdout:
    """sys.stdout as it is at each write. Powertools' log handler keeps the stream it was
    created with; in Lambda that is stdout for good, here stdout is redirected per
    invocation (to stderr, or to a test's capture), so the handler must follow it."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _follow_stdout(service: str) -> None:
    import logging

    for handler in logging.getLogger(service).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(_CurrentStdout())


@contextlib.contextmanager
def _caller_log_keys_kept() -> Iterator[None]:
    """Powertools loggers of one service share a formatter: the callee's handler would leave
    its function name and correlation id on the caller's later log lines. Put them back."""
    import logging

    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
    formatters = [
        handler.formatter
        for handler in logging.getLogger(service).handlers
        if isinstance(getattr(handler.formatter, "log_format", None), dict)
    ]
    saved = [dict(formatter.log_format) for formatter in formatters]  # type: ignore[union-attr]
    try:
        yield
    finally:
        for formatter, keys in zip(formatters, saved, strict=True):
            formatter.log_format.clear()  # type: ignore[union-attr]
            formatter.log_format.update(keys)  # type: ignore[union-attr]


class LambdaContext:
    """What Lambda passes as `context`, enough for Powertools and the time budget."""

    def __init__(self, function_name: str, timeout_seconds: float, memory_mb: int) -> None:
        import time

        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        import time

        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Sandbox:
    template: Template
    emulator: GenesysEmulator
    external: ExternalSystemStub
    resource_names: dict[str, str]
    capture_queue_url: str
    env_overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    token_refresher: LocalTokenRefresher | None = None  # set by sandbox()
    _modules: dict[str, ModuleType] = field(default_factory=dict)

    # ---- functions ------------------------------------------------------------------------

    def environment(self, function_id: str) -> dict[str, str]:
        spec = self.template.functions[function_id]
        env = {**LOCAL_ENVIRONMENT, **spec.environment}
        env.update(self.env_overrides.get("Parameters", {}))
        env.update(self.env_overrides.get(function_id, {}))
        return env

    def invoke(self, function_id: str, event: Any) -> Any:
        """Run the function's handler once, like one Lambda invocation. Its logs and
        metrics (which Powertools prints to stdout) go to stderr."""
        from attribute_bridge import wiring

        spec = self.template.functions[function_id]
        with environment_set(self.environment(function_id)), contextlib.redirect_stdout(sys.stderr):
            wiring.reset()  # settings and adapters are per function: rebuild them
            handler = self.handler(function_id)
            context = LambdaContext(function_id, spec.timeout, spec.memory_size)
            return handler(event, context)

    def handler(self, function_id: str) -> Callable[[Any, Any], Any]:
        """The function's handler, its module loaded once (like one warm container). Call
        it inside `environment_set(self.environment(function_id))`."""
        spec = self.template.functions[function_id]
        handler: Callable[[Any, Any], Any] = getattr(
            self._module(function_id), spec.handler.rsplit(".", 1)[1]
        )
        return handler

    def _module(self, function_id: str) -> ModuleType:
        if function_id not in self._modules:
            spec = self.template.functions[function_id]
            module_name, _ = spec.handler.rsplit(".", 1)
            path = REPO_ROOT / spec.code_uri / f"{module_name.replace('.', '/')}.py"
            loader_spec = spec_from_file_location(f"localfn_{function_id}", path)
            if loader_spec is None or loader_spec.loader is None:
                raise FileNotFoundError(path)
            module = module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
            _follow_stdout(os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined"))
            self._modules[function_id] = module
        return self._modules[function_id]

    def invoke_nested(self, function_id: str, event: Any) -> Any:
        """A synchronous invoke made by a running function: the callee runs with its own
        environment and adapters; the caller's (its warm caches) are back afterwards."""
        from attribute_bridge import wiring

        spec = self.template.functions[function_id]
        with (
            _caller_log_keys_kept(),
            environment_set(self.environment(function_id)),
            wiring.another_container(),
        ):
            context = LambdaContext(function_id, spec.timeout, spec.memory_size)
            return self.handler(function_id)(event, context)

    # ---- what happened ------------------------------------------------------------------

    def emitted_events(self) -> list[dict[str, Any]]:
        """Events put on the app's bus since the last call, oldest first."""
        return [json.loads(body) for body in self._drain(self.capture_queue_url)]

    def dead_letters(self, function_id: str) -> list[str]:
        """Message bodies in the function's dead-letter queue (removed from it)."""
        return self._drain(self.dead_letter_queue_url(function_id))

    def dead_letter_queue_url(self, function_id: str) -> str:
        return self.environment(function_id)["DEAD_LETTER_QUEUE_URL"]

    def send_dead_letter(self, function_id: str, body: str) -> None:
        sqs = _client("sqs")
        sqs.send_message(QueueUrl=self.dead_letter_queue_url(function_id), MessageBody=body)

    def _drain(self, queue_url: str) -> list[str]:
        sqs = _client("sqs")
        bodies: list[str] = []
        while True:
            response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    # ---- seeding ------------------------------------------------------------------------

    def ensure_conversation(self, event: Any) -> str | None:
        """If the emulator does not know the event's conversation, create a live one with
        the event's ids and media (a customer with no attributes), and give the external
        stub something to answer for it. Returns the conversation id, if any."""
        ids = _event_ids(event)
        if ids is None:
            return None
        conversation_id, participant_id, media_type = ids
        # Genesys ids are case-insensitive; the emulator stores them as seeded (lower case).
        conversation_id = conversation_id.lower()
        participant_id = participant_id.lower() if participant_id else None
        if self.emulator.get_conversation(conversation_id) is not None:
            return conversation_id
        customer: dict[str, Any] = {"purpose": "customer", "attributes": {}}
        if participant_id:
            customer["id"] = participant_id
        self.emulator.create_conversation(
            media_type=media_type,
            message_type="WEBMESSAGING" if media_type == "MESSAGE" else None,
            participants=[customer, {"purpose": "ivr" if media_type == "VOICE" else "acd"}],
            conversation_id=conversation_id,
        )
        self.external.add_rule(
            match={"conversationId": conversation_id},
            answer={"case_status": "open", "case_priority": "normal", "crm_segment": "seeded"},
        )
        return conversation_id


class LocalTokenRefresher:
    """TokenRefresher invoked synchronously, as Lambda would with its reserved concurrency
    of 1: its real handler, in-process; a call while one runs is throttled (RefresherBusy)."""

    def __init__(self, box: Sandbox, function_id: str = "TokenRefresherFunction") -> None:
        self._box = box
        self._function_id = function_id
        self._running = threading.Lock()
        self.invocations = 0
        self.throttled = 0

    @property
    def running(self) -> bool:
        return self._running.locked()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Held as a running invocation holds it (a test's "another container is minting")."""
        with self._running:
            yield

    def request_token(self, request: Mapping[str, Any], budget: Any) -> Mapping[str, Any]:
        from attribute_bridge.token_store import RefresherBusy

        if not self._running.acquire(blocking=False):
            self.throttled += 1
            raise RefresherBusy(self._function_id)
        try:
            self.invocations += 1
            result: Mapping[str, Any] = self._box.invoke_nested(self._function_id, dict(request))
            return result
        finally:
            self._running.release()


def _event_ids(event: Any) -> tuple[str, str | None, str] | None:
    """(conversation id, participant id, media) named by an EventBridge or API event."""
    if not isinstance(event, Mapping):
        return None
    path = event.get("pathParameters")
    if isinstance(path, Mapping) and isinstance(path.get("conversationId"), str):
        participant = path.get("participantId")
        return (
            path["conversationId"],
            participant if isinstance(participant, str) else None,
            "VOICE",
        )
    if not isinstance(event.get("detail"), Mapping):
        return None
    detail = event["detail"]
    body = detail.get("eventBody") if isinstance(detail.get("eventBody"), Mapping) else detail
    conversation_id = body.get("conversationId")
    if not isinstance(conversation_id, str):
        return None
    media_type = body.get("mediaType")
    if not isinstance(media_type, str):
        communications = body.get("communications") or [{}]
        first = communications[0] if isinstance(communications, list) and communications else {}
        media_type = first.get("mediaType") if isinstance(first, Mapping) else None
    participant_id = body.get("participantId")
    return (
        conversation_id,
        participant_id if isinstance(participant_id, str) else None,
        str(media_type or "VOICE").upper(),
    )


@cache
def _client(service: str) -> Any:
    """One client per service for the sandbox's own AWS calls (cleared per sandbox: clients
    must be created while moto is active)."""
    import boto3

    return boto3.client(service, region_name="us-east-1")


@contextlib.contextmanager
def environment_set(values: Mapping[str, str]) -> Iterator[None]:
    """os.environ updated with `values`, restored exactly afterwards."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _create_aws_resources(template_path: Path) -> tuple[dict[str, str], str]:
    """A moto resource for every queue, table and event bus in the template."""
    template = load_template(template_path)
    sqs, dynamodb, events = _client("sqs"), _client("dynamodb"), _client("events")
    names: dict[str, str] = {}
    for logical_id in template.resource_ids("AWS::SQS::Queue"):
        names[logical_id] = sqs.create_queue(QueueName=logical_id)["QueueUrl"]
    for logical_id in template.resource_ids("AWS::DynamoDB::Table"):
        dynamodb.create_table(
            TableName=logical_id,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        names[logical_id] = logical_id
    # Only the app's bus: the Genesys partner bus is where Genesys puts events, not us.
    events.create_event_bus(Name="AppEventBus")
    names["AppEventBus"] = "AppEventBus"
    capture_url = sqs.create_queue(QueueName="local-emitted-events")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="local-capture-all",
        EventBusName=names["AppEventBus"],
        EventPattern=json.dumps({"source": [{"prefix": ""}]}),
    )
    events.put_targets(
        Rule="local-capture-all",
        EventBusName=names["AppEventBus"],
        Targets=[{"Id": "capture", "Arn": capture_arn}],
    )
    return names, capture_url


def _store_credentials(template: Template, emulator: GenesysEmulator) -> None:
    from attribute_bridge.oauth_clients import client_parameters, parse_extra_clients

    ssm = _client("ssm")
    names = template.functions["TokenRefresherFunction"].environment  # only it may read them
    stored = [
        (names["GENESYS_CLIENT_ID_PARAMETER"], emulator.config.client_id),
        (names["GENESYS_CLIENT_SECRET_PARAMETER"], emulator.config.client_secret),
    ]
    # GenesysExtraClientCount's clients take the emulator's extra_clients, in order.
    extra = parse_extra_clients(names.get("GENESYS_EXTRA_CLIENTS", ""))
    if len(extra) != len(emulator.config.extra_clients):
        raise ValueError(
            f"GenesysExtraClientCount={len(extra)} needs as many emulator extra_clients, "
            f"got {len(emulator.config.extra_clients)}"
        )
    for name, (client_id, client_secret) in zip(extra, emulator.config.extra_clients, strict=True):
        parameters = client_parameters(names["GENESYS_EXTRA_CLIENTS_PREFIX"], name)
        stored += [(parameters.client_id, client_id), (parameters.client_secret, client_secret)]
    for name, value in stored:
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def _with_extra_clients(
    config: EmulatorConfig | None, parameter_overrides: Mapping[str, str] | None
) -> EmulatorConfig:
    """GenesysExtraClientCount=N locally: the emulator knows N more OAuth clients (well-known
    local credentials, like its first), unless the caller gave its own."""
    config = config or EmulatorConfig()
    count = int((parameter_overrides or {}).get("GenesysExtraClientCount", "0") or "0")
    if not count or config.extra_clients:
        return config
    from attribute_bridge.oauth_clients import extra_client_names

    names = extra_client_names(count)
    extra = tuple((f"local-{name}-id", f"local-{name}-secret") for name in names)
    return replace(config, extra_clients=extra)


def load_env_vars_file(path: str | None) -> dict[str, dict[str, str]]:
    """sam's --env-vars format: {"FunctionId": {"VAR": "value"}, "Parameters": {...}}."""
    if not path:
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected {{FunctionId: {{VAR: value}}}}")
    return {key: {k: str(v) for k, v in values.items()} for key, values in data.items()}


@contextlib.contextmanager
def sandbox(
    emulator_config: EmulatorConfig | None = None,
    parameter_overrides: Mapping[str, str] | None = None,
    env_overrides: Mapping[str, dict[str, str]] | None = None,
    template_path: Path = REPO_ROOT / "template.yaml",
) -> Iterator[Sandbox]:
    if str(LAYER_SOURCE) not in sys.path:
        sys.path.insert(0, str(LAYER_SOURCE))  # the layer, as Lambda puts it on the path
    from attribute_bridge import aws as aws_adapters
    from attribute_bridge import wiring

    from localdev.moto_aws import local_aws

    aws_adapters.aws_client.cache_clear()  # boto3 clients must be made inside the mock
    _client.cache_clear()
    with (
        environment_set(LOCAL_ENVIRONMENT),
        local_aws(),
        GenesysEmulator(_with_extra_clients(emulator_config, parameter_overrides)) as emulator,
        ExternalSystemStub() as external,
    ):
        names, capture_url = _create_aws_resources(template_path)
        overrides = {
            "GenesysRegion": emulator.base_url,
            "ExternalSystemUrl": external.sync_url,
            # The sample events carry fixed timestamps; locally they must not age out.
            "MaxEventAgeSeconds": str(10 * 365 * 24 * 3600),
            **(parameter_overrides or {}),
        }
        template = load_template(template_path, parameter_overrides=overrides, resource_names=names)
        _store_credentials(template, emulator)
        box = Sandbox(
            template=template,
            emulator=emulator,
            external=external,
            resource_names=names,
            capture_queue_url=capture_url,
            env_overrides=dict(env_overrides or {}),
        )
        box.token_refresher = LocalTokenRefresher(box)
        try:
            with wiring.run_locally(token_refresher=box.token_refresher):
                yield box
        finally:
            # These clients belong to this moto; the next sandbox makes its own.
            aws_adapters.aws_client.cache_clear()
            _client.cache_clear()
