"""A stand-in for the external system (a CRM) that the project sends participant attributes
to. `POST /sync` answers attributes from a rule table; failures can be ordered on demand.

See docs/emulator.md for the HTTP control endpoints under `/_external/`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from localdev.emulator.httpbase import (
    JsonHandler,
    LocalService,
    QuietThreadingServer,
    parse_json,
    serve_until_signalled,
)

SYNC_PATH = "/sync"
FAILURE_MODES = frozenset({"500", "slow", "invalid_json", "401", "non_string", "oversized"})
OVERSIZED_VALUE_CHARS = 10_000
# What "non_string" mode adds to an answer: every JSON type that is not a string.
NON_STRING_ATTRIBUTES: dict[str, Any] = {
    "case_score": 42,
    "case_ratio": 0.5,
    "case_escalated": True,
    "case_owner": None,
    "case_details": {"tier": "gold"},
    "case_tags": ["vip"],
}


@dataclass(frozen=True)
class Rule:
    """Answer `answer` (attributes) when every `match` key equals the request's value.

    A key is a top-level request field (`conversationId`, `mediaType`, ...) or
    `attributes.NAME` for an incoming attribute (NAME may itself contain dots).
    """

    match: dict[str, Any]
    answer: dict[str, Any]

    def matches(self, request: dict[str, Any]) -> bool:
        return all(_request_value(request, key) == value for key, value in self.match.items())


_MISSING = object()


def _request_value(request: dict[str, Any], key: str) -> Any:
    if key.startswith("attributes."):
        attributes = request.get("attributes")
        if not isinstance(attributes, dict):
            return _MISSING
        return attributes.get(key.removeprefix("attributes."), _MISSING)
    return request.get(key, _MISSING)


BUILT_IN_RULES = (
    Rule({"attributes.case_id": "CASE-1001"}, {"case_status": "open", "case_priority": "high"}),
    Rule(
        {"attributes.case_id": "CASE-2002"},
        {"case_status": "pending_customer", "case_priority": "normal"},
    ),
)


@dataclass(frozen=True)
class Failure:
    mode: str
    seconds: float  # how long "slow" sleeps


class StubState:
    """Rules, ordered failures and received requests, behind one lock."""

    def __init__(self, expected_auth: str | None, slow_seconds: float) -> None:
        self.expected_auth = expected_auth
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._failures: deque[Failure] = deque()
        self._received: list[dict[str, Any]] = []
        self._fixed_answer: str | None = None
        self._idempotency_keys: list[str | None] = []  # the header, per received request

    def answer_always(self, template: str | None) -> None:
        """Answer every sync with this JSON text (None: the rules again); `{now}` in it
        becomes the current epoch milliseconds at each answer."""
        if template is not None:
            json.loads(template.replace("{now}", "0"))  # ValueError if it is not JSON
        with self._lock:
            self._fixed_answer = template

    def fixed_answer(self) -> bytes | None:
        with self._lock:
            template = self._fixed_answer
        if template is None:
            return None
        return template.replace("{now}", str(int(time.time() * 1000))).encode()

    def add_rule(self, match: dict[str, Any], answer: dict[str, Any]) -> int:
        if not isinstance(match, dict) or not isinstance(answer, dict):
            raise ValueError("match and answer must be objects")
        with self._lock:
            self._rules.append(Rule(dict(match), dict(answer)))
            return len(self._rules)

    def fail_next(self, mode: str, count: int = 1, seconds: float | None = None) -> list[str]:
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {sorted(FAILURE_MODES)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        failure = Failure(mode, self.slow_seconds if seconds is None else seconds)
        with self._lock:
            self._failures.extend([failure] * count)
            return [pending.mode for pending in self._failures]

    def take_failure(self) -> Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def record(self, request: dict[str, Any], idempotency_key: str | None = None) -> None:
        with self._lock:
            self._received.append(request)
            self._idempotency_keys.append(idempotency_key)

    def idempotency_keys(self) -> list[str | None]:
        with self._lock:
            return list(self._idempotency_keys)

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._received)

    def reset(self) -> None:
        """Forget received requests, added rules and pending failures."""
        with self._lock:
            self._rules.clear()
            self._failures.clear()
            self._received.clear()
            self._idempotency_keys.clear()

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The attributes for `request`: the newest added rule that matches, else a built-in."""
        with self._lock:
            rules = [*reversed(self._rules), *BUILT_IN_RULES]
        for rule in rules:
            if rule.matches(request):
                return dict(rule.answer)
        return {}


class ExternalStubServer(QuietThreadingServer):
    def __init__(self, address: tuple[str, int], state: StubState) -> None:
        self.state = state
        super().__init__(address, ExternalStubHandler)


class ExternalStubHandler(JsonHandler):
    server: ExternalStubServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        path = self.request_path()
        body, _ = self.read_body()
        if path.startswith("/_external/"):
            self._control(path, body)
        elif path == SYNC_PATH and self.command == "POST":
            self._sync(body)
        else:
            self.send_json(404, {"error": f"no endpoint {self.command} {path}"})

    def _sync(self, body: bytes) -> None:
        state = self.server.state
        try:
            request = parse_json(body)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            state.record({"_raw": body.decode("utf-8", errors="replace")})
            self.send_json(400, {"error": "the body must be a JSON object"})
            return
        state.record(request, self.headers.get("Idempotency-Key"))
        if state.expected_auth is not None and self.headers.get("Authorization") != (
            state.expected_auth
        ):
            self.send_json(401, {"error": "unauthorized"})
            return
        failure = state.take_failure()
        mode = failure.mode if failure else None
        if mode == "500":
            self.send_json(500, {"error": "injected failure"})
            return
        if mode == "401":
            self.send_json(401, {"error": "unauthorized (injected)"})
            return
        if mode == "invalid_json":
            self.send_payload(200, b"<html>this is not JSON", "application/json")
            return
        if failure is not None and mode == "slow":
            time.sleep(failure.seconds)
        fixed = state.fixed_answer()
        if fixed is not None:
            self.send_payload(200, fixed, "application/json")
            return
        attributes: dict[str, Any] = state.answer(request)
        if mode == "non_string":
            attributes |= NON_STRING_ATTRIBUTES
        if mode == "oversized":
            attributes["case_notes"] = "x" * OVERSIZED_VALUE_CHARS
        answer: dict[str, Any] = {"attributes": attributes}
        if "case_status" in attributes:
            answer["status"] = attributes["case_status"]  # for mappings like `status`
        self.send_json(200, answer)

    def _control(self, path: str, body: bytes) -> None:
        state = self.server.state
        route = (self.command, path)
        try:
            document = parse_json(body) or {}
            if route == ("POST", "/_external/rules"):
                count = state.add_rule(document["match"], document["answer"])
                self.send_json(201, {"rules": count})
            elif route == ("POST", "/_external/fail"):
                pending = state.fail_next(
                    document["mode"], int(document.get("count", 1)), document.get("seconds")
                )
                self.send_json(201, {"pending": pending})
            elif route == ("GET", "/_external/received"):
                received = state.received()
                self.send_json(200, {"received": received, "count": len(received)})
            elif route == ("POST", "/_external/reset"):
                state.reset()
                self.send_json(200, {})
            else:
                self.send_json(404, {"error": f"no control endpoint {self.command} {path}"})
        except (KeyError, TypeError, ValueError) as error:
            self.send_json(400, {"error": f"bad control request: {error!r}"})


class ExternalSystemStub(LocalService):
    """The external system: start() serves in a daemon thread at `base_url` (POST /sync)."""

    service_name = "the stub"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        expected_auth: str | None = None,
        slow_seconds: float = 5.0,
    ) -> None:
        super().__init__()
        self._address = (host, port)
        self._state = StubState(expected_auth, slow_seconds)

    def _build_server(self) -> ExternalStubServer:
        return ExternalStubServer(self._address, self._state)

    @property
    def sync_url(self) -> str:
        return self.base_url + SYNC_PATH

    def add_rule(self, match: dict[str, Any], answer: dict[str, Any]) -> None:
        self._state.add_rule(match, answer)

    def answer_always(self, template: str | None) -> None:
        """Every sync gets this JSON text as the answer (`{now}`: epoch ms); None: rules."""
        self._state.answer_always(template)

    def fail_next(self, mode: str, count: int = 1, seconds: float | None = None) -> None:
        """The next `count` sync requests fail with `mode`; "slow" sleeps `seconds`
        (default: the stub's slow_seconds) and then answers normally."""
        self._state.fail_next(mode, count, seconds)

    @property
    def received(self) -> list[dict[str, Any]]:
        """Bodies of every POST /sync received, in order (also those answered 401/500)."""
        return self._state.received()

    @property
    def idempotency_keys(self) -> list[str | None]:
        """The Idempotency-Key header of each of those requests (None: not sent)."""
        return self._state.idempotency_keys()

    def reset(self) -> None:
        self._state.reset()


def serve_main(host: str = "127.0.0.1", port: int = 0) -> int:
    """`python -m localdev external`: serve until SIGINT/SIGTERM."""
    stub = ExternalSystemStub(host=host, port=port).start()
    return serve_until_signalled(stub.base_url, stub.stop)
