"""Everything the emulator remembers, behind one lock: conversations, tokens, rate windows,
injected faults and counters. No HTTP here; `server.py` translates requests into calls."""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from localdev.emulator.config import (
    EmulatorConfig,
    require_number,
    require_text,
    require_whole,
)

# mediaType -> the participant's list of communications in the generic Conversation model.
MEDIA_COMMUNICATIONS = {
    "VOICE": "calls",
    "MESSAGE": "messages",
    "CHAT": "chats",
    "EMAIL": "emails",
    "CALLBACK": "callbacks",
}
PARTICIPANT_FIELDS = frozenset(
    {"purpose", "attributes", "id", "name", "address", "ani", "dnis", "state"}
)
PARTICIPANT_STATES = frozenset({"connected", "disconnected", "terminated"})
DEFAULT_CUSTOMER_ANI = "tel:+13175550100"
DEFAULT_DNIS = "tel:+18005550199"
MAX_DELAY_SECONDS = 300.0  # longer than any client here waits


def id_key(value: str) -> str:
    """Genesys ids are UUIDs compared case-insensitively (it answers them in lower case)."""
    return value.lower()


def now_iso() -> str:
    """Genesys timestamps: ISO 8601, UTC, milliseconds, `Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def validate_attributes(value: Any, where: str = "attributes") -> dict[str, str]:
    """A copy of a string -> string map; ValueError naming the first bad key otherwise."""
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be an object of string values")
    for key, item in value.items():
        if not isinstance(item, str):
            kind = "null" if item is None else type(item).__name__
            raise ValueError(f"{where}.{key} must be a string, got {kind}")
    return dict(value)


@dataclass
class Participant:
    id: str
    purpose: str
    attributes: dict[str, str]
    name: str
    address: str | None
    ani: str | None
    dnis: str | None
    communication_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    ended: bool = False  # this leg ended (a transfer, a reconnect) while the conversation goes on


@dataclass
class Conversation:
    id: str
    media_type: str
    message_type: str | None
    start_time: str
    participants: list[Participant]
    end_time: str | None = None

    def participant(self, participant_id: str) -> Participant | None:
        wanted = id_key(participant_id)
        return next((p for p in self.participants if p.id == wanted), None)

    def stored_view(self) -> dict[str, Any]:
        """What create_conversation returns: the conversation as the emulator stores it."""
        return {
            "id": self.id,
            "mediaType": self.media_type,
            "messageType": self.message_type,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "participants": [
                {
                    "id": p.id,
                    "purpose": p.purpose,
                    "name": p.name,
                    "address": p.address,
                    "ani": p.ani,
                    "dnis": p.dnis,
                    "attributes": dict(p.attributes),
                    "state": self._state(p),
                }
                for p in self.participants
            ],
        }

    def _state(self, participant: Participant | None = None) -> str:
        if self.end_time is None and not (participant and participant.ended):
            return "connected"
        return "terminated" if self.media_type == "VOICE" else "disconnected"

    def _communication(self, participant: Participant) -> dict[str, Any]:
        communication: dict[str, Any] = {
            "state": self._state(participant),
            "id": participant.communication_id,
            "direction": "inbound",
            "connectedTime": self.start_time,
            "disconnectedTime": self.end_time,
        }
        if self.media_type == "VOICE":
            communication["provider"] = "Edge"
        if self.media_type == "MESSAGE":
            communication["type"] = (self.message_type or "webmessaging").lower()
            communication["provider"] = "PureCloud Messaging"
        return communication

    def generic_view(self) -> dict[str, Any]:
        """GET /api/v2/conversations/{id}: the SDK's `Conversation` model."""
        communications = MEDIA_COMMUNICATIONS[self.media_type]
        participants = [
            _without_none(
                {
                    "id": p.id,
                    "startTime": self.start_time,
                    "connectedTime": self.start_time,
                    "endTime": self.end_time,
                    "name": p.name,
                    "purpose": p.purpose,
                    "address": p.address,
                    "ani": p.ani,
                    "dnis": p.dnis,
                    "wrapupRequired": False,
                    "attributes": dict(p.attributes),
                    communications: [_without_none(self._communication(p))],
                }
            )
            for p in self.participants
        ]
        return _without_none(
            {
                "id": self.id,
                "startTime": self.start_time,
                "endTime": self.end_time,
                "participants": participants,
                "recordingState": "NONE",
                "divisions": [],
                "selfUri": f"/api/v2/conversations/{self.id}",
            }
        )

    def media_view(self) -> dict[str, Any]:
        """GET .../calls/{id} (`CallConversation`) or .../messages/{id} (`MessageConversation`)."""
        voice = self.media_type == "VOICE"
        participants = []
        for p in self.participants:
            participant: dict[str, Any] = {
                "id": p.id,
                "name": p.name,
                "address": p.address,
                "startTime": self.start_time,
                "connectedTime": self.start_time,
                "endTime": self.end_time,
                "purpose": p.purpose,
                "state": self._state(p),
                "direction": "inbound",
                "held": False,
                "wrapupRequired": False,
                "attributes": dict(p.attributes),
            }
            if voice:
                participant |= {
                    "ani": p.ani,
                    "dnis": p.dnis,
                    "provider": "Edge",
                    "muted": False,
                    "confined": False,
                    "recording": False,
                    "recordingState": "none",
                }
            else:
                participant |= {
                    "type": (self.message_type or "webmessaging").lower(),
                    "provider": "PureCloud Messaging",
                }
            participants.append(_without_none(participant))
        path = "calls" if voice else "messages"
        view: dict[str, Any] = {
            "id": self.id,
            "participants": participants,
            "otherMediaUris": [],
            "divisions": [],
            "selfUri": f"/api/v2/conversations/{path}/{self.id}",
        }
        if voice:
            view["recordingState"] = "none"
        return view


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


@dataclass
class Fault:
    """The next `remaining` requests matching `method` and `path_pattern` misbehave."""

    method: str  # "*" matches any method
    path_pattern: re.Pattern[str]
    status: int | None
    remaining: int
    retry_after: int | str | None  # seconds or an HTTP date, sent as the Retry-After header
    delay_seconds: float
    body: Any

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self.path_pattern.search(path) is not None

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path_pattern": self.path_pattern.pattern,
            "status": self.status,
            "remaining": self.remaining,
            "retry_after": self.retry_after,
            "delay_seconds": self.delay_seconds,
            "body": self.body,
        }


@dataclass
class RateWindow:
    """A fixed window per token (and per endpoint with its own limit), opened by its first
    request after the last one closed."""

    started: float
    used: int = 0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    used: int
    limit: int
    reset_seconds: int  # whole seconds until the window frees (>= 1)

    def headers(self) -> dict[str, str]:
        return {
            "inin-ratelimit-count": str(self.used),
            "inin-ratelimit-allowed": str(self.limit),
            "inin-ratelimit-reset": str(self.reset_seconds),
        }


class WriteRefused(Exception):
    """A PATCH that must be answered with a Genesys error (status, code, message)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self._lock = threading.Lock()
        self.config = config
        self._conversations: dict[str, Conversation] = {}
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._revoked: set[str] = set()
        # (token, route key) for an endpoint with its own limit, (token, "") for the rest
        self._windows: dict[tuple[str, str], RateWindow] = {}
        self._faults: list[Fault] = []
        self._requests: Counter[str] = Counter()
        self._tokens_minted = 0
        self._token_clients: dict[str, str] = {}  # token -> the client id that minted it
        self._minted_by_client: Counter[str] = Counter()
        self._requests_by_client: Counter[str] = Counter()
        self._rate_limited = 0
        self._faults_served = 0
        self._patched: list[tuple[str, str]] = []  # (conversation, participant), in order
        self._attribute_writes = 0  # PATCHes applied: to tell a write done twice

    # ---- settings, counters, reset -------------------------------------------------------

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change settings at run time (host and port excluded: the socket is bound)."""
        if {"host", "port"} & changes.keys():
            raise ValueError("host and port cannot change while serving")
        with self._lock:
            self.config = replace(self.config, **changes)
            return self.config

    def reset(self) -> None:
        """Forget conversations, tokens, rate windows, faults and counters (settings stay)."""
        with self._lock:
            self._conversations.clear()
            self._tokens.clear()
            self._revoked.clear()
            self._windows.clear()
            self._faults.clear()
            self._requests.clear()
            self._token_clients.clear()
            self._minted_by_client.clear()
            self._requests_by_client.clear()
            self._tokens_minted = self._rate_limited = self._faults_served = 0
            self._attribute_writes = 0

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self._requests),
                "tokens_minted": self._tokens_minted,
                "tokens_minted_by_client": dict(self._minted_by_client),
                "requests_by_client": dict(self._requests_by_client),
                "rate_limited": self._rate_limited,
                "faults_served": self._faults_served,
                "attribute_writes": self._attribute_writes,
            }

    def begin_request(self, method: str, path: str, route_key: str) -> Fault | None:
        """Count one API request and hand back the injected fault it should suffer, if any."""
        with self._lock:
            self._requests[route_key] += 1
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    self._faults_served += 1
                    return fault
        return None

    # ---- faults --------------------------------------------------------------------------

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
        # Checked here, not where the fault is served: a bad value must be refused now,
        # not break the request that meets it.
        method = require_text(method, "method")
        path_pattern = require_text(path_pattern, "path_pattern")
        require_whole(count, "count", minimum=1)
        if status is not None:
            require_whole(status, "status", minimum=100, maximum=599)
        if retry_after is not None and not isinstance(retry_after, str):
            # a string is sent as it is: an HTTP date, or a value a client must survive
            require_whole(retry_after, "retry_after", minimum=0)
        delay_seconds = require_number(
            delay_seconds, "delay_seconds", minimum=0, maximum=MAX_DELAY_SECONDS
        )
        if status is None and delay_seconds <= 0:
            raise ValueError("a fault needs a status, a delay_seconds > 0, or both")
        try:
            pattern = re.compile(path_pattern)
        except re.error as error:
            raise ValueError(f"path_pattern is not a regular expression: {error}") from None
        fault = Fault(
            method=method.upper(),
            path_pattern=pattern,
            status=status,
            remaining=count,
            retry_after=retry_after,
            delay_seconds=delay_seconds,
            body=body,
        )
        with self._lock:
            self._faults.append(fault)
        return fault.describe()

    # ---- tokens and rate limit -----------------------------------------------------------

    def credentials_match(self, client_id: str, client_secret: str) -> bool:
        config = self.config
        given = f"{client_id}\n{client_secret}".encode()
        known = [(config.client_id, config.client_secret), *config.extra_clients]
        # Compare with every client, not up to the first match: no timing says which.
        matches = [secrets.compare_digest(given, f"{i}\n{s}".encode()) for i, s in known]
        return any(matches)

    def mint_token(self, client_id: str | None = None) -> tuple[str, float]:
        token = secrets.token_urlsafe(32)
        with self._lock:
            client = client_id or self.config.client_id
            ttl = self.config.token_ttl_seconds
            self._tokens[token] = time.monotonic() + ttl
            self._tokens_minted += 1
            self._token_clients[token] = client
            self._minted_by_client[client] += 1
        return token, ttl

    def count_client_request(self, token: str) -> None:
        """One API request made with `token`, counted for the OAuth client that minted it."""
        with self._lock:
            self._requests_by_client[self._token_clients.get(token, "")] += 1

    def token_problem(self, token: str | None) -> str | None:
        """Why `token` cannot be used, or None when it can."""
        if not token:
            return "No bearer token was supplied."
        with self._lock:
            if token in self._revoked:
                return "The token has been revoked."
            expiry = self._tokens.get(token)
            if expiry is None:
                return "Invalid login credentials."
            if time.monotonic() >= expiry:
                return "The token has expired."
        return None

    def revoke_tokens(self) -> int:
        with self._lock:
            revoked = len(self._tokens)
            self._revoked.update(self._tokens)
            self._tokens.clear()
            self._windows.clear()
            return revoked

    def take_rate_slot(self, token: str, route_key: str = "") -> RateDecision:
        """One request of `token` on `route_key` against its bucket: the endpoint's own
        window when `endpoint_rate_limits` names it, else the token's window.

        Assumed: an endpoint with its own limit counts against that bucket only, not also
        against the token's total. Genesys's `inin-ratelimit-*` headers describe the bucket
        that answered; whether its per-endpoint buckets also count against a per-token total
        is UNKNOWN to us. The client must work either way, and can: it trusts only the
        headers, per endpoint, and handles a 429 whichever bucket sent it.
        """
        with self._lock:
            own_limit = self.config.endpoint_rate_limits.get(route_key)
            limit = self.config.rate_limit if own_limit is None else own_limit
            bucket = (token, route_key if own_limit is not None else "")
            window_seconds = self.config.rate_window_seconds
            now = time.monotonic()
            window = self._windows.get(bucket)
            if window is None or now >= window.started + window_seconds:
                window = self._windows[bucket] = RateWindow(started=now)
            reset_seconds = max(1, math.ceil(window.started + window_seconds - now))
            if window.used >= limit:
                self._rate_limited += 1
                return RateDecision(False, window.used, limit, reset_seconds)
            window.used += 1
            return RateDecision(True, window.used, limit, reset_seconds)

    # ---- conversations -------------------------------------------------------------------

    def create_conversation(
        self,
        media_type: str = "VOICE",
        message_type: str | None = None,
        participants: list[dict[str, Any]] | None = None,
        conversation_id: str | None = None,
    ) -> dict[str, Any]:
        media_type = require_text(media_type, "media_type").upper()
        if message_type is not None:
            message_type = require_text(message_type, "message_type")
        if conversation_id is not None:
            conversation_id = id_key(require_text(conversation_id, "conversation_id"))
        if media_type not in MEDIA_COMMUNICATIONS:
            raise ValueError(f"media_type must be one of {sorted(MEDIA_COMMUNICATIONS)}")
        if message_type is not None and media_type != "MESSAGE":
            raise ValueError("message_type only applies to media_type MESSAGE")
        if media_type == "MESSAGE":
            message_type = (message_type or "WEBMESSAGING").upper()
        specs = (
            participants
            if participants is not None
            else [{"purpose": "customer"}, {"purpose": "ivr"}]
        )
        if not isinstance(specs, list) or not specs:
            raise ValueError("participants must be a non-empty list")
        built = [_build_participant(spec, media_type, index) for index, spec in enumerate(specs)]
        if len({p.id for p in built}) != len(built):
            raise ValueError("participant ids must be unique")
        conversation = Conversation(
            id=conversation_id or str(uuid.uuid4()),
            media_type=media_type,
            message_type=message_type,
            start_time=now_iso(),
            participants=built,
        )
        with self._lock:
            if conversation.id in self._conversations:
                raise ValueError(f"conversation {conversation.id} already exists")
            self._conversations[conversation.id] = conversation
            return conversation.stored_view()

    def end_conversation(self, conversation_id: str) -> dict[str, Any]:
        with self._lock:
            conversation = self._conversation(conversation_id)
            if conversation.end_time is None:
                conversation.end_time = now_iso()
            return conversation.stored_view()

    def participant_attributes(self, conversation_id: str, participant_id: str) -> dict[str, str]:
        with self._lock:
            participant = self._conversation(conversation_id).participant(participant_id)
            if participant is None:
                raise KeyError(f"participant {participant_id} not found")
            return dict(participant.attributes)

    def stored_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """The conversation as stored (what create_conversation returned), or None."""
        with self._lock:
            conversation = self._conversations.get(id_key(conversation_id))
            return None if conversation is None else conversation.stored_view()

    def conversation_view(
        self, conversation_id: str, media_type: str | None
    ) -> dict[str, Any] | None:
        """The API's JSON for a conversation; `media_type` None is the generic endpoint.

        None when unknown, or when a media endpoint is asked for another media's conversation.
        """
        with self._lock:
            conversation = self._conversations.get(id_key(conversation_id))
            if conversation is None:
                return None
            if media_type is None:
                return conversation.generic_view()
            if conversation.media_type != media_type:
                return None
            return conversation.media_view()

    def patch_attributes(
        self, conversation_id: str, participant_id: str, media_type: str | None, body: Any
    ) -> dict[str, str]:
        """Merge `body["attributes"]` into the participant's attributes; the merged map.

        Merge, not replace (GENESYS.md: UNKNOWN, merge assumed). `null` values are refused
        with 400 rather than treated as deletes, since deletion is UNKNOWN too.
        """
        if not isinstance(body, dict) or "attributes" not in body:
            raise WriteRefused(400, "bad.request", 'The body must be {"attributes": {...}}.')
        try:
            attributes = validate_attributes(body["attributes"])
        except ValueError as error:
            raise WriteRefused(400, "bad.request", str(error)) from None
        with self._lock:
            conversation = self._conversations.get(id_key(conversation_id))
            if conversation is None or (
                media_type is not None and conversation.media_type != media_type
            ):
                raise WriteRefused(404, "not.found", f"Conversation {conversation_id} not found.")
            participant = conversation.participant(participant_id)
            if participant is None:
                raise WriteRefused(404, "not.found", f"Participant {participant_id} not found.")
            if (
                conversation.end_time is not None
                and self.config.ended_conversation_writes == "not_found"
            ):
                raise WriteRefused(404, "not.found", f"Conversation {conversation_id} has ended.")
            participant.attributes.update(attributes)
            self._patched.append((conversation.id, participant.id))
            self._attribute_writes += 1
            return dict(participant.attributes)

    def take_patched(self) -> list[tuple[str, str]]:
        """(conversation id, participant id) of each PATCH accepted since the last call:
        Genesys sends an `attributes` event for each (localdev pipeline --echo-attributes)."""
        with self._lock:
            patched, self._patched = self._patched, []
            return patched

    def _conversation(self, conversation_id: str) -> Conversation:
        conversation = self._conversations.get(id_key(conversation_id))
        if conversation is None:
            raise KeyError(f"conversation {conversation_id} not found")
        return conversation


def _build_participant(spec: Any, media_type: str, index: int) -> Participant:
    if not isinstance(spec, dict) or not isinstance(spec.get("purpose"), str):
        raise ValueError(f"participants[{index}] must be an object with a string purpose")
    unknown = spec.keys() - PARTICIPANT_FIELDS
    if unknown:
        raise ValueError(f"participants[{index}] has unknown fields {sorted(unknown)}")
    for name in ("id", "name", "address", "ani", "dnis"):
        if spec.get(name) is not None and not isinstance(spec[name], str):
            raise ValueError(f"participants[{index}].{name} must be a string")
    purpose: str = spec["purpose"]
    ani: str | None = spec.get("ani")
    dnis: str | None = spec.get("dnis")
    if media_type == "VOICE":
        # Every leg of a call carries the caller's ANI and the dialled number.
        ani = ani or DEFAULT_CUSTOMER_ANI
        dnis = dnis or DEFAULT_DNIS
    state = spec.get("state", "connected")
    if state not in PARTICIPANT_STATES:
        raise ValueError(f"participants[{index}].state must be one of {sorted(PARTICIPANT_STATES)}")
    address: str | None = spec.get("address")
    if address is None and media_type == "VOICE":
        address = ani if purpose == "customer" else dnis
    return Participant(
        id=id_key(spec.get("id") or str(uuid.uuid4())),
        purpose=purpose,
        attributes=validate_attributes(
            spec.get("attributes", {}), f"participants[{index}].attributes"
        ),
        name=spec.get("name") or purpose.capitalize(),
        address=address,
        ani=ani,
        dnis=dnis,
        ended=state != "connected",
    )
