"""Settings, read once per container from the function's environment (set by template.yaml).

Secrets are never here: only the *names* of the SSM SecureString parameters that hold them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from attribute_bridge.errors import ConfigurationError
from attribute_bridge.validation import AttributeLimits
from attribute_bridge.write_rules import NameList, WriteRules


def _csv(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _mapping(value: str) -> dict[str, str]:
    """ATTRIBUTE_MAPPING: JSON object of attribute name -> JMESPath into the answer."""
    if not value.strip():
        return {}
    parsed = json.loads(value)
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v for k, v in parsed.items()
    ):
        raise ValueError("ATTRIBUTE_MAPPING must be a JSON object of attribute -> JMESPath")
    return parsed


# FetchMode (template.yaml): whether FetchAttributes reads the conversation for a
# customer.start. "read": always (today's chain: two Genesys requests per synced
# conversation). "context-only": never, the external system gets only the event's call
# context (one request: the PATCH); it cannot send input attributes it would not read.
# "auto" (the default): context-only exactly when the read could give the external system
# nothing, i.e. SyncAllowedAttributes is empty and SyncContextFields names a field; the
# read otherwise. README "Context-only mode" says what the mode gives up.
FETCH_MODES = ("auto", "read", "context-only")


@dataclass(frozen=True)
class Settings:
    genesys_region: str = "mypurecloud.com"
    # Names of SSM parameters, not secrets:
    token_parameter: str = "/participant-attributes/genesys/token"  # noqa: S105
    client_id_parameter: str = "/participant-attributes/genesys/client-id"
    client_secret_parameter: str = "/participant-attributes/genesys/client-secret"  # noqa: S105
    token_kms_key_id: str = ""
    token_lease_table: str = "token-lease"  # noqa: S105
    token_cache_seconds: int = 300
    token_expiry_skew_seconds: int = 300
    token_refresh_ahead_seconds: int = 3600
    app_event_bus: str = "participant-attributes"
    event_source: str = "participant-attributes"
    external_url: str = ""
    external_auth_parameter: str = ""
    external_timeout_seconds: float = 3.0
    external_retries: int = 2
    allowed_attributes: tuple[str, ...] = ()
    attribute_mapping: Mapping[str, str] = field(default_factory=dict)
    limits: AttributeLimits = field(default_factory=AttributeLimits)
    dead_letter_queue_url: str = ""
    max_event_age_seconds: int = 4 * 3600
    handled_media_types: tuple[str, ...] = ("VOICE", "MESSAGE")
    # Data-action path (ResolveAttributes): call context sent out, and its time budget.
    context_fields: tuple[str, ...] = ()
    fetch_mode: str = "auto"  # FETCH_MODES
    resolve_budget_seconds: float = 4.0
    # The write rules (write_rules.py). Empty lists allow nothing: no default writes every key.
    writable_attributes: NameList = field(default_factory=NameList)
    readable_attributes: NameList | None = None  # None: the sync allow-list + the writable
    writable_purposes: frozenset[str] = frozenset({"customer"})
    max_write_delay_seconds: int = 60
    max_syncs_per_conversation: int = 20  # per hour
    conversation_state_table: str = ""

    def __post_init__(self) -> None:
        if self.fetch_mode not in FETCH_MODES:
            raise ConfigurationError(
                f"FetchMode {self.fetch_mode!r:.40} is not one of {', '.join(FETCH_MODES)}"
            )
        if self.fetch_mode == "context-only" and self.allowed_attributes:
            # Sending inputs needs the read context-only skips: refused, never a silent read.
            raise ConfigurationError(
                "FetchMode context-only reads no attributes, but SyncAllowedAttributes names "
                f"{', '.join(self.allowed_attributes)[:200]}: empty it, or use FetchMode "
                "read or auto"
            )
        inputs = NameList.parse(self.allowed_attributes)
        overlap = sorted(
            {name for name in inputs.names if name in self.writable_attributes}
            | {
                f"{prefix}*"
                for prefix in inputs.prefixes
                if any(
                    p.startswith(prefix) or prefix.startswith(p)
                    for p in self.writable_attributes.prefixes
                )
                or any(name.startswith(prefix) for name in self.writable_attributes.names)
            }
        )
        if overlap:
            # A key both sent and written changes the inputs with every write: a loop.
            raise ConfigurationError(
                "SyncAllowedAttributes and WritableAttributes share "
                f"{', '.join(overlap)}: every write would start another sync"
            )

    @property
    def context_only(self) -> bool:
        """FetchAttributes skips the read of a customer.start (use_cases.fetch_attributes)."""
        if self.fetch_mode == "auto":
            return not self.allowed_attributes and bool(self.context_fields)
        return self.fetch_mode == "context-only"

    @property
    def write_rules(self) -> WriteRules:
        return WriteRules(self.writable_attributes, self.writable_purposes, self.limits)

    @property
    def sync_inputs(self) -> NameList:
        return NameList.parse(self.allowed_attributes)

    @property
    def readable(self) -> NameList:
        """What the API's GET may return."""
        if self.readable_attributes is not None:
            return self.readable_attributes
        return self.sync_inputs | self.writable_attributes

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()

        def get(name: str, default: object) -> str:
            return env.get(name, str(default))

        return cls(
            genesys_region=get("GENESYS_REGION", defaults.genesys_region),
            token_parameter=get("GENESYS_TOKEN_PARAMETER", defaults.token_parameter),
            client_id_parameter=get("GENESYS_CLIENT_ID_PARAMETER", defaults.client_id_parameter),
            client_secret_parameter=get(
                "GENESYS_CLIENT_SECRET_PARAMETER", defaults.client_secret_parameter
            ),
            token_kms_key_id=get("GENESYS_TOKEN_KMS_KEY_ID", ""),
            token_lease_table=get("TOKEN_LEASE_TABLE", defaults.token_lease_table),
            token_cache_seconds=int(get("TOKEN_CACHE_SECONDS", defaults.token_cache_seconds)),
            token_expiry_skew_seconds=int(
                get("TOKEN_EXPIRY_SKEW_SECONDS", defaults.token_expiry_skew_seconds)
            ),
            token_refresh_ahead_seconds=int(
                get("TOKEN_REFRESH_AHEAD_SECONDS", defaults.token_refresh_ahead_seconds)
            ),
            app_event_bus=get("APP_EVENT_BUS", defaults.app_event_bus),
            event_source=get("APP_EVENT_SOURCE", defaults.event_source),
            external_url=get("EXTERNAL_SYSTEM_URL", ""),
            external_auth_parameter=get("EXTERNAL_AUTH_PARAMETER", ""),
            external_timeout_seconds=float(
                get("EXTERNAL_TIMEOUT_SECONDS", defaults.external_timeout_seconds)
            ),
            external_retries=int(get("EXTERNAL_RETRIES", defaults.external_retries)),
            allowed_attributes=_csv(get("SYNC_ALLOWED_ATTRIBUTES", "")),
            attribute_mapping=_mapping(get("ATTRIBUTE_MAPPING", "")),
            limits=AttributeLimits(
                max_keys=int(get("MAX_ATTRIBUTES", AttributeLimits.max_keys)),
                max_value_length=int(
                    get("MAX_ATTRIBUTE_VALUE_LENGTH", AttributeLimits.max_value_length)
                ),
            ),
            dead_letter_queue_url=get("DEAD_LETTER_QUEUE_URL", ""),
            max_event_age_seconds=int(get("MAX_EVENT_AGE_SECONDS", defaults.max_event_age_seconds)),
            handled_media_types=_csv(get("HANDLED_MEDIA_TYPES", "VOICE,MESSAGE")),
            context_fields=_csv(get("SYNC_CONTEXT_FIELDS", "")),
            fetch_mode=get("FETCH_MODE", defaults.fetch_mode).strip().lower() or "auto",
            resolve_budget_seconds=float(
                get("RESOLVE_BUDGET_SECONDS", defaults.resolve_budget_seconds)
            ),
            writable_attributes=NameList.parse(_csv(get("WRITABLE_ATTRIBUTES", ""))),
            readable_attributes=(
                NameList.parse(_csv(env["READABLE_ATTRIBUTES"]))
                if env.get("READABLE_ATTRIBUTES", "").strip()
                else None
            ),
            writable_purposes=frozenset(
                purpose.lower() for purpose in _csv(get("WRITABLE_PURPOSES", "customer"))
            ),
            max_write_delay_seconds=int(
                get("MAX_WRITE_DELAY_SECONDS", defaults.max_write_delay_seconds)
            ),
            max_syncs_per_conversation=int(
                get("MAX_SYNCS_PER_CONVERSATION", defaults.max_syncs_per_conversation)
            ),
            conversation_state_table=get("CONVERSATION_STATE_TABLE", ""),
        )


@cache
def settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as error:  # a list or mapping the template let through: say so once
        raise ConfigurationError(f"configuration: {error}") from None
