"""The emulator's HTTP face: OAuth token endpoint, the conversation endpoints of
ConversationsApi this project uses, and the unauthenticated `/_emulator/` control endpoints.

Order of checks for an API request: injected fault, request size (413), bearer token (401),
rate limit (429), then the route itself (404/400/200/202).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs

from localdev.emulator.config import EmulatorConfig
from localdev.emulator.httpbase import (
    JsonHandler,
    LocalService,
    QuietThreadingServer,
    parse_json,
    serve_main_of,
)
from localdev.emulator.state import EmulatorState, Fault, RateDecision, WriteRefused

BEARER_SCHEME = "bearer"  # the OAuth `token_type` Genesys answers with

# Genesys `code` for each status the emulator answers with.
ERROR_CODES = {
    400: "bad.request",
    401: "bad.credentials",
    403: "not.authorized",
    404: "not.found",
    409: "conflict",
    413: "request.entity.too.large",
    429: "too.many.requests.retry.after",
    500: "internal.server.error",
    502: "bad.gateway",
    503: "service.unavailable",
    504: "gateway.timeout",
}


def genesys_error(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """The error body every Genesys Cloud API answers with."""
    return {
        "message": message,
        "code": code or ERROR_CODES.get(status, "error"),
        "status": status,
        "contextId": str(uuid.uuid4()),
        "details": [],
        "errors": [],
    }


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    key: str  # the `requests` counter key: METHOD + path template
    action: str  # "token", "get" or "patch"
    media_type: str | None  # the media a media endpoint serves; None = any


def _route(method: str, regex: str, template: str, action: str, media: str | None) -> Route:
    return Route(method, re.compile(regex), f"{method} {template}", action, media)


_ID = r"(?P<cid>[^/]+)"
_PID = r"(?P<pid>[^/]+)"
ROUTES = (
    _route("POST", r"/oauth/token", "/oauth/token", "token", None),
    _route("GET", rf"/api/v2/conversations/{_ID}", "/api/v2/conversations/{id}", "get", None),
    _route(
        "GET",
        rf"/api/v2/conversations/calls/{_ID}",
        "/api/v2/conversations/calls/{id}",
        "get",
        "VOICE",
    ),
    _route(
        "GET",
        rf"/api/v2/conversations/messages/{_ID}",
        "/api/v2/conversations/messages/{id}",
        "get",
        "MESSAGE",
    ),
    _route(
        "PATCH",
        rf"/api/v2/conversations/{_ID}/participants/{_PID}/attributes",
        "/api/v2/conversations/{id}/participants/{pid}/attributes",
        "patch",
        None,
    ),
    _route(
        "PATCH",
        rf"/api/v2/conversations/calls/{_ID}/participants/{_PID}/attributes",
        "/api/v2/conversations/calls/{id}/participants/{pid}/attributes",
        "patch",
        "VOICE",
    ),
    _route(
        "PATCH",
        rf"/api/v2/conversations/messages/{_ID}/participants/{_PID}/attributes",
        "/api/v2/conversations/messages/{id}/participants/{pid}/attributes",
        "patch",
        "MESSAGE",
    ),
)
# What `endpoint_rate_limits` may name: every API route (the token endpoint is not limited).
RATE_LIMITED_ROUTE_KEYS = frozenset(route.key for route in ROUTES if route.action != "token")

# Keyword arguments each control endpoint accepts (snake_case, as in the Python API).
CREATE_FIELDS = frozenset({"media_type", "message_type", "participants", "conversation_id"})
FAULT_FIELDS = frozenset(
    {"method", "path_pattern", "status", "count", "retry_after", "delay_seconds", "body"}
)
CONFIG_FIELDS = frozenset(
    {
        "client_id",
        "client_secret",
        "extra_clients",
        "token_ttl_seconds",
        "rate_limit",
        "rate_window_seconds",
        "endpoint_rate_limits",
        "max_request_bytes",
        "ended_conversation_writes",
    }
)


def match_route(method: str, path: str) -> tuple[Route | None, dict[str, str]]:
    for route in ROUTES:
        if route.method == method:
            found = route.pattern.fullmatch(path)
            if found:
                return route, found.groupdict()
    return None, {}


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, separator, client_secret = decoded.partition(":")
    return (client_id, client_secret) if separator else None


def _bearer_token(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _keyword_arguments(body: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = body.keys() - allowed
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; allowed: {sorted(allowed)}")
    return body


class EmulatorHTTPServer(QuietThreadingServer):
    def __init__(self, address: tuple[str, int], state: EmulatorState) -> None:
        self.state = state
        super().__init__(address, EmulatorHandler)


class EmulatorHandler(JsonHandler):
    server: EmulatorHTTPServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        path = self.request_path()
        if path.startswith("/_emulator/"):
            self._control(path)
            return
        state = self.server.state
        body, too_large = self.read_body(state.config.max_request_bytes)
        route, params = match_route(self.command, path)
        key = route.key if route else f"{self.command} (unknown route)"
        fault = state.begin_request(self.command, path, key)
        if fault is not None and self._suffer(fault):
            return
        if too_large:
            limit = state.config.max_request_bytes
            self._error(413, f"The request is larger than {limit} bytes.")
            return
        if route is not None and route.action == "token":
            self._token(body)
            return
        if not path.startswith("/api/v2/"):
            self._error(404, f"No such resource: {path}")
            return
        token = _bearer_token(self.headers.get("Authorization"))
        problem = state.token_problem(token)
        if problem is not None or token is None:
            self._error(401, problem or "No bearer token was supplied.")
            return
        state.count_client_request(token)
        rate = state.take_rate_slot(token, key)
        if not rate.allowed:
            self._rate_limited(rate)
            return
        if route is None:
            self._error(404, f"No such resource: {self.command} {path}", rate.headers())
        elif route.action == "get":
            self._get_conversation(route, params["cid"], rate)
        else:
            self._patch_attributes(route, params["cid"], params["pid"], body, rate)

    # ---- API -----------------------------------------------------------------------------

    def _suffer(self, fault: Fault) -> bool:
        """Apply an injected fault; True when it answered the request."""
        if fault.delay_seconds > 0:
            time.sleep(fault.delay_seconds)
        if fault.status is None:
            return False
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.body is not None:
            self.send_json(fault.status, fault.body, headers)
        else:
            self._error(fault.status, "Injected fault.", headers)
        return True

    def _token(self, body: bytes) -> None:
        state = self.server.state
        credentials = _basic_credentials(self.headers.get("Authorization", ""))
        if credentials is None or not state.credentials_match(*credentials):
            message = "Client credentials are missing or wrong."
            self.send_json(
                401,
                {"error": "invalid_client", "description": message, "error_description": message},
            )
            return
        form = parse_qs(body.decode("utf-8", errors="replace"))
        if form.get("grant_type") != ["client_credentials"]:
            message = "Only grant_type=client_credentials is supported."
            self.send_json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "description": message,
                    "error_description": message,
                },
            )
            return
        token, ttl = state.mint_token(credentials[0])
        expires_in = int(ttl) if float(ttl).is_integer() else ttl
        answer = {"access_token": token, "token_type": BEARER_SCHEME, "expires_in": expires_in}
        self.send_json(200, answer)

    def _rate_limited(self, rate: RateDecision) -> None:
        headers = rate.headers() | {"Retry-After": str(rate.reset_seconds)}
        message = (
            f"Rate limit exceeded the maximum. Retry the request in [{rate.reset_seconds}] seconds"
        )
        self._error(429, message, headers)

    def _get_conversation(self, route: Route, conversation_id: str, rate: RateDecision) -> None:
        view = self.server.state.conversation_view(conversation_id, route.media_type)
        if view is None:
            self._error(404, f"Conversation {conversation_id} not found.", rate.headers())
        else:
            self.send_json(200, view, rate.headers())

    def _patch_attributes(
        self,
        route: Route,
        conversation_id: str,
        participant_id: str,
        body: bytes,
        rate: RateDecision,
    ) -> None:
        try:
            document = parse_json(body)
        except ValueError:
            self._error(400, "The body is not valid JSON.", rate.headers())
            return
        try:
            merged = self.server.state.patch_attributes(
                conversation_id, participant_id, route.media_type, document
            )
        except WriteRefused as refused:
            self._error(refused.status, refused.message, rate.headers(), refused.code)
            return
        self.send_json(202, {"attributes": merged}, rate.headers())

    def _error(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        self.send_json(status, genesys_error(status, message, code), headers)

    # ---- control -------------------------------------------------------------------------

    CONTROL_ROUTES: ClassVar[tuple[tuple[str, re.Pattern[str], str], ...]] = (
        ("POST", re.compile(r"/_emulator/conversations"), "create"),
        ("POST", re.compile(rf"/_emulator/conversations/{_ID}/end"), "end"),
        (
            "GET",
            re.compile(rf"/_emulator/conversations/{_ID}/participants/{_PID}/attributes"),
            "attributes",
        ),
        ("POST", re.compile(r"/_emulator/tokens/revoke"), "revoke"),
        ("POST", re.compile(r"/_emulator/faults"), "fault"),
        ("GET", re.compile(r"/_emulator/counters"), "counters"),
        ("POST", re.compile(r"/_emulator/reset"), "reset"),
        ("POST", re.compile(r"/_emulator/config"), "config"),
    )

    def _control(self, path: str) -> None:
        body, _ = self.read_body()
        action, params = self._control_route(path)
        if action is None:
            self.send_json(404, {"error": f"no control endpoint {self.command} {path}"})
            return
        try:
            document = parse_json(body)
        except ValueError as error:
            self.send_json(400, {"error": f"the body is not valid JSON: {error}"})
            return
        try:
            status, answer = self._control_action(action, params, document)
        except KeyError as error:
            self.send_json(404, {"error": str(error.args[0] if error.args else error)})
        except (ValueError, TypeError) as error:
            self.send_json(400, {"error": str(error)})
        else:
            self.send_json(status, answer)

    def _control_route(self, path: str) -> tuple[str | None, dict[str, str]]:
        for method, pattern, action in self.CONTROL_ROUTES:
            found = pattern.fullmatch(path)
            if found and method == self.command:
                return action, found.groupdict()
        return None, {}

    def _control_action(self, action: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        state = self.server.state
        if action == "create":
            return 201, state.create_conversation(**_keyword_arguments(body, CREATE_FIELDS))
        if action == "end":
            return 200, state.end_conversation(params["cid"])
        if action == "attributes":
            attributes = state.participant_attributes(params["cid"], params["pid"])
            return 200, {"attributes": attributes}
        if action == "revoke":
            return 200, {"revoked": state.revoke_tokens()}
        if action == "fault":
            return 201, {"fault": state.inject_fault(**_keyword_arguments(body, FAULT_FIELDS))}
        if action == "counters":
            return 200, state.counters()
        if action == "reset":
            state.reset()
            return 200, {}
        config = state.configure(**_keyword_arguments(body, CONFIG_FIELDS))
        return 200, config.as_dict()


class GenesysEmulator(LocalService):
    """A local Genesys Cloud: start() serves in a daemon thread at `base_url`."""

    service_name = "the emulator"

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__()
        self._state = EmulatorState(config or EmulatorConfig())

    @property
    def config(self) -> EmulatorConfig:
        return self._state.config

    def _build_server(self) -> EmulatorHTTPServer:
        return EmulatorHTTPServer((self.config.host, self.config.port), self._state)

    # ---- in-process control (the same as the /_emulator/ endpoints) ----------------------

    def create_conversation(
        self,
        media_type: str = "VOICE",
        message_type: str | None = None,
        participants: list[dict[str, Any]] | None = None,
        conversation_id: str | None = None,
    ) -> dict[str, Any]:
        return self._state.create_conversation(
            media_type=media_type,
            message_type=message_type,
            participants=participants,
            conversation_id=conversation_id,
        )

    def end_conversation(self, conversation_id: str) -> dict[str, Any]:
        return self._state.end_conversation(conversation_id)

    def get_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """The stored conversation (camelCase, with participants' attributes), or None."""
        return self._state.stored_conversation(conversation_id)

    def participant_attributes(self, conversation_id: str, participant_id: str) -> dict[str, str]:
        return self._state.participant_attributes(conversation_id, participant_id)

    def revoke_tokens(self) -> int:
        return self._state.revoke_tokens()

    def take_patched(self) -> list[tuple[str, str]]:
        return self._state.take_patched()

    def inject_fault(
        self,
        method: str = "*",
        path_pattern: str = ".*",
        status: int | None = 503,
        count: int = 1,
        retry_after: int | str | None = None,
        delay_seconds: float = 0.0,
        body: Any = None,
    ) -> dict[str, Any]:
        return self._state.inject_fault(
            method=method,
            path_pattern=path_pattern,
            status=status,
            count=count,
            retry_after=retry_after,
            delay_seconds=delay_seconds,
            body=body,
        )

    def counters(self) -> dict[str, Any]:
        return self._state.counters()

    def reset(self) -> None:
        self._state.reset()

    def configure(self, **changes: Any) -> EmulatorConfig:
        return self._state.configure(**changes)


def serve_main(host: str = "127.0.0.1", port: int = 0) -> int:
    """`python -m localdev emulator`: serve with default settings until SIGINT/SIGTERM."""
    return serve_main_of(
        "emulator", host, port, lambda: GenesysEmulator(EmulatorConfig(host=host, port=port))
    )
