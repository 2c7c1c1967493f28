"""Secrets stay secret, and calls go where configuration says, nowhere else.

One run of everything that touches a secret: voice and messaging chains, the API, a
failing external call, Genesys 401s (recovered and not), the token endpoint refusing the
client credentials, a forced token refresh. Known secret values: the Genesys client
secret, every access token minted (read back from SSM), the external system's auth header
(an SSM SecureString). None may appear in a log line, a metric, an emitted event, a
dead letter, a return value or error body, a stored idempotency record, or what the
external system receives.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from attribute_bridge.http import is_loopback_url, require_https

from localdev.emulator import EmulatorConfig
from localdev.external import ExternalSystemStub
from localdev.runner import invoke_async
from localdev.sandbox import Sandbox, sandbox

EVENTS = Path(__file__).resolve().parents[2] / "events"
SERVICE = "participant-attributes"
FETCH, SYNC, PATCH = "FetchAttributesFunction", "SyncExternalFunction", "PatchAttributesFunction"
API, REFRESHER = "AttributesApiFunction", "TokenRefresherFunction"
DEAD_LETTER_QUEUES = (FETCH, SYNC, PATCH, REFRESHER)  # AttributesApi answers its caller
CLIENT_SECRET = f"S3CRET-genesys-{uuid.uuid4().hex}"
EXTERNAL_TOKEN = f"EXT-S3CRET-{uuid.uuid4().hex}"
EXTERNAL_AUTH = f"Bearer {EXTERNAL_TOKEN}"
AUTH_PARAMETER = "/x/auth"


# ---------------------------------------------------------------------------- plumbing


@contextlib.contextmanager
def powertools_logs_to_stdout() -> Iterator[None]:
    """Kept as a named step of the tests: the sandbox already sends Powertools' JSON log
    lines to the current stdout, as Lambda sends them to CloudWatch."""
    yield


# The whole stack, as the `box` fixture builds it (for tests that configure it).
stack = sandbox


def local_client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name="us-east-1")


class Seen:
    """Everything that left the functions, as text."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.texts: list[str] = []
        self.tokens: set[str] = set()

    def add(self, value: Any) -> Any:
        self.texts.append(json.dumps(value, default=str))
        return value

    def note_token(self) -> None:
        name = self.box.environment(FETCH)["GENESYS_TOKEN_PARAMETER"]
        with contextlib.suppress(Exception):  # none minted yet
            raw = local_client("ssm").get_parameter(Name=name, WithDecryption=True)
            self.tokens.add(json.loads(raw["Parameter"]["Value"])["access_token"])

    def chain(self, event: dict[str, Any]) -> list[str]:
        """runner.run_chain, keeping every emitted event and return value."""
        outcomes = []
        self.box.emitted_events()
        pending = deque((function, event) for function in self.box.template.route(event))
        while pending:
            function, delivered = pending.popleft()
            step = invoke_async(self.box, function, delivered)
            self.note_token()
            self.add(step.result)
            outcomes.append(step.outcome)
            for emitted in self.add(self.box.emitted_events()):
                pending.extend((target, emitted) for target in self.box.template.route(emitted))
        return outcomes

    def invoke(self, function: str, event: Any) -> Any:
        result = self.box.invoke(function, event)
        self.note_token()
        return self.add(result)


def secret_forms(secret: str) -> set[str]:
    """A secret as it could leak: itself, and inside a Basic or Bearer header."""
    forms = {secret, base64.b64encode(secret.encode()).decode()}
    forms |= {
        base64.b64encode(f"{user}:{secret}".encode()).decode() for user in ("local-client-id",)
    }
    return forms


def leaks(secrets: set[str], texts: list[str]) -> list[tuple[str, str]]:
    found = []
    for secret in secrets:
        for form in secret_forms(secret):
            found += [(secret[:12], text[:160]) for text in texts if form in text]
    return found


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    formatter = logging.Formatter()
    texts = []
    for record in caplog.records:
        texts.append(json.dumps(record.__dict__, default=str))
        if record.exc_info:
            texts.append(formatter.formatException(record.exc_info))
    return texts


def seed(box: Sandbox, media: str) -> tuple[str, str]:
    conversation = box.emulator.create_conversation(
        media_type=media,
        message_type="WEBMESSAGING" if media == "MESSAGE" else None,
        participants=[
            {"purpose": "customer", "attributes": {"case_id": "CASE-1001"}},
            {"purpose": "agent"},
        ],
    )
    customer = next(p for p in conversation["participants"] if p["purpose"] == "customer")
    return conversation["id"], customer["id"]


def genesys_event(media: str, conversation_id: str, participant_id: str) -> dict[str, Any]:
    name = {"VOICE": "voice", "MESSAGE": "message"}[media]
    event: dict[str, Any] = json.loads(
        (EVENTS / f"genesys-{name}-customer-start.json").read_text(encoding="utf-8")
    )
    event["id"] = str(uuid.uuid4())
    detail = event["detail"]
    detail["topicName"] = f"v2.detail.events.conversation.{conversation_id}.customer.start"
    detail["metadata"]["CorrelationId"] = str(uuid.uuid4())
    detail["eventBody"].update(conversationId=conversation_id, participantId=participant_id)
    # a new change, not a redelivery of the last one (those are keyed on the eventBody)
    detail["eventBody"]["eventTime"] += next(NEW_CHANGES)
    return event


NEW_CHANGES = itertools.count(1)


def api_event(
    name: str, conversation_id: str, participant_id: str, body: str | None
) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    event["pathParameters"] = {"conversationId": conversation_id, "participantId": participant_id}
    if "participantId" not in event["resource"]:
        del event["pathParameters"]["participantId"]
    event["body"] = body
    return event


# ---------------------------------------------------------------------------- secrets


def test_no_secret_appears_in_logs_metrics_events_dead_letters_or_answers(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    external = ExternalSystemStub(expected_auth=EXTERNAL_AUTH)  # refuses a call without it
    with (
        external,
        stack(
            emulator_config=EmulatorConfig(client_secret=CLIENT_SECRET),
            env_overrides={
                SYNC: {
                    "EXTERNAL_AUTH_PARAMETER": AUTH_PARAMETER,
                    "EXTERNAL_SYSTEM_URL": external.sync_url,
                }
            },
        ) as box,
        powertools_logs_to_stdout(),
    ):
        local_client("ssm").put_parameter(
            Name=AUTH_PARAMETER, Value=EXTERNAL_AUTH, Type="SecureString"
        )
        seen = Seen(box)
        voice, message, third = seed(box, "VOICE"), seed(box, "MESSAGE"), seed(box, "VOICE")

        # The chain, both media: the secrets are used (the stub demands the header).
        assert seen.chain(genesys_event("VOICE", *voice)) == ["fetched", "synced", "patched"]
        assert seen.chain(genesys_event("MESSAGE", *message)) == ["fetched", "synced", "patched"]
        # The API: read, write, ask for a sync.
        get = seen.invoke(API, api_event("api-get-attributes.json", *voice, None))
        assert get["statusCode"] == 200 and "case_status" in get["body"]
        write = '{"attributes": {"crm_case_id": "CASE-2002"}}'
        patch = seen.invoke(API, api_event("api-patch-attributes.json", *message, write))
        assert patch["statusCode"] == 200
        sync = seen.invoke(API, api_event("api-post-sync.json", *third, "{}"))
        assert sync["statusCode"] == 202
        # A failing external call, and the external system refusing our credentials.
        external.fail_next("500", count=9)
        assert seen.chain(genesys_event("VOICE", *third))[-1] == "dead_lettered"
        external.fail_next("401")
        assert seen.chain(genesys_event("VOICE", *third))[-1] == "failed"
        # Genesys 401: a revoked token is replaced ...
        box.emulator.revoke_tokens()
        assert seen.chain(genesys_event("MESSAGE", *message))[-1] in ("patched", "no_change")
        # ... a 401 that persists is refused ...
        box.emulator.inject_fault("GET", "/conversations/", status=401, count=2)
        assert seen.chain(genesys_event("VOICE", *voice)) == ["failed"]
        # ... and so are client credentials that Genesys no longer takes.
        box.emulator.configure(client_secret=f"rotated-{uuid.uuid4().hex}")
        box.emulator.revoke_tokens()
        assert seen.chain(genesys_event("VOICE", *voice)) == ["failed"]
        unauthorized = seen.invoke(API, api_event("api-get-attributes.json", *voice, None))
        assert unauthorized["statusCode"] == 502
        box.emulator.configure(client_secret=CLIENT_SECRET)
        refreshed = seen.invoke(REFRESHER, {"force": True})
        assert refreshed["outcome"] == "token_minted"

        for function in DEAD_LETTER_QUEUES:
            seen.texts += box.dead_letters(function)
        stored = local_client("dynamodb").scan(TableName=box.resource_names["IdempotencyTable"])
        seen.add(stored["Items"])
        seen.add(external.received)
        minted = box.emulator.counters()["tokens_minted"]

    out, err = capfd.readouterr()
    printed = (out + err).splitlines()
    texts = [*seen.texts, *printed, *log_texts(caplog)]

    # What was looked at is the real thing: every token, JSON logs, metrics, dead letters.
    assert len(seen.tokens) == minted == 4
    assert any('"message":"Step done"' in line for line in printed)
    assert any('"_aws"' in line for line in printed)
    assert sum('"deadLetter"' in text or '"requestPayload"' in text for text in texts) >= 4
    assert any("refused the client credentials" in text for text in texts)

    secrets = {CLIENT_SECRET, EXTERNAL_AUTH, EXTERNAL_TOKEN, *seen.tokens}
    assert leaks(secrets, texts) == []


def test_the_leak_check_finds_a_leak() -> None:
    token = "tok-" + uuid.uuid4().hex
    basic = base64.b64encode(f"local-client-id:{CLIENT_SECRET}".encode()).decode()
    texts = ["nothing here", f"Authorization: Basic {basic}", f'{{"h": "Bearer {token}"}}']
    assert len(leaks({CLIENT_SECRET, token}, texts)) == 2
    assert leaks({CLIENT_SECRET, token}, texts[:1]) == []


# ---------------------------------------------------------------------------- where calls go


class Redirector:
    """A tiny HTTP server: POST answers 302 to `location`; counts what it gets."""

    def __init__(self, location: str = "") -> None:
        self.location = location
        self.requests: list[tuple[str, str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                owner.requests.append((self.command, self.path, self.headers.get("Authorization")))
                if owner.location:
                    self.send_response(302)
                    self.send_header("Location", owner.location)
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                body = b'{"attributes": {"stolen": "yes"}}'
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Redirector:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def fetched_event(conversation_id: str, participant_id: str, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(
        (EVENTS / "app-attributes-fetched.json").read_text(encoding="utf-8")
    )
    event["id"] = str(uuid.uuid4())
    event["detail"].update(conversationId=conversation_id, participantId=participant_id, **extra)
    return event


def test_a_redirect_from_the_external_system_is_not_followed() -> None:
    with Redirector() as elsewhere, Redirector(elsewhere.url + "/steal") as external:
        overrides = {
            SYNC: {
                "EXTERNAL_SYSTEM_URL": external.url + "/sync",
                "EXTERNAL_AUTH_PARAMETER": AUTH_PARAMETER,
            }
        }
        with stack(env_overrides=overrides) as box:
            local_client("ssm").put_parameter(
                Name=AUTH_PARAMETER, Value=EXTERNAL_AUTH, Type="SecureString"
            )
            conversation = seed(box, "VOICE")
            step = invoke_async(box, SYNC, fetched_event(*conversation))
            assert step.outcome == "failed"
            assert "answered 302" in step.result["error"]
            assert [message for message in box.dead_letters(SYNC) if "answered 302" in message]
            assert box.emitted_events() == []
    assert len(external.requests) == 1
    assert elsewhere.requests == []  # the auth header never went to the other host


def test_nothing_in_an_event_can_point_a_call_elsewhere() -> None:
    with Redirector() as trap, stack() as box:
        conversation_id, participant_id = seed(box, "VOICE")
        box.external.add_rule({"conversationId": conversation_id}, {"case_status": "open"})
        event = fetched_event(
            conversation_id,
            participant_id,
            url=trap.url,
            externalSystemUrl=trap.url,
            callbackUrl=trap.url,
            endpoint=trap.url,
            host="127.0.0.1",
        )
        event["detail"]["attributes"]["redirect_to"] = trap.url
        event["resources"] = [trap.url]
        step = invoke_async(box, SYNC, event)
        assert step.outcome == "synced"
        assert len(box.external.received) == 1  # the configured system got the call ...
        sent = box.external.received[0]
        assert set(sent) == {
            "conversationId",
            "participantId",
            "mediaType",
            "correlationId",
            "attributes",
            "context",
        }
        assert sent["context"] == {}  # no SyncContextFields: no call context either
        assert trap.url not in json.dumps(sent)  # ... with only the allowed attributes
        (resolved,) = box.emitted_events()
        assert invoke_async(box, PATCH, resolved).outcome == "patched"
    assert trap.requests == []  # ... and nothing went to the URLs in the event


@pytest.mark.parametrize(
    "url",
    [
        "http://crm.example.com/sync",
        "http://127.0.0.1.evil.example/sync",
        "http://localhost.evil.example/sync",
        "ftp://crm.example.com/sync",
        "file:///etc/passwd",
        "crm.example.com/sync",
        "",
    ],
)
def test_a_plain_http_external_url_outside_loopback_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="must be an https:// URL"):
        require_https(url, "EXTERNAL_SYSTEM_URL")


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example.com/sync",
        "HTTPS://crm.example.com/sync/",
        "http://127.0.0.1:8080/sync",
        "http://localhost:8080/sync",
        "http://[::1]:8080/sync",
    ],
)
def test_https_or_loopback_is_taken(url: str) -> None:
    assert require_https(url, "EXTERNAL_SYSTEM_URL") == url.rstrip("/")
    assert url.lower().startswith("https://") or is_loopback_url(url)


def test_a_function_configured_with_plain_http_calls_nobody_and_says_why() -> None:
    overrides = {SYNC: {"EXTERNAL_SYSTEM_URL": "http://crm.example.com/sync"}}
    with stack(env_overrides=overrides) as box:
        conversation = seed(box, "VOICE")
        step = invoke_async(box, SYNC, fetched_event(*conversation))
        assert step.outcome == "failed"  # a configuration error: dead-lettered at once
        (message,) = [json.loads(body) for body in box.dead_letters(SYNC)]
        # refused before any connection (a connection would have failed otherwise: no DNS)
        error = message["deadLetter"]["error"]
        assert "EXTERNAL_SYSTEM_URL must be an https:// URL" in error
        assert box.emitted_events() == []
