"""The pipeline's Genesys OAuth clients: "pipeline" (GenesysClientId/SecretParameter) and
the optional extra ones (GenesysExtraClientCount), and which one a conversation uses.

Each OAuth client's token has its own rate limit (~300 requests/min), and a synced
conversation costs a GET and a PATCH: one token carries ~150 conversations/min. With
extra clients, each conversation is pinned to one of them by a stable hash of its id, so
its Fetch, Patch and Resolve share one token (and one rate window), and conversations
spread evenly over the clients.

An extra client is named, not configured parameter by parameter: its SSM parameters are
`{prefix}/{name}/client-id`, `.../client-secret` and `.../token`, prefix
/participant-attributes/{Stage}/genesys (so the template can grant exactly those).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from attribute_bridge.errors import ConfigurationError

PIPELINE = "pipeline"
API = "api"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


@dataclass(frozen=True)
class ClientParameters:
    """The SSM parameter names of one extra OAuth client."""

    token: str
    client_id: str
    client_secret: str


def parse_extra_clients(text: str) -> tuple[str, ...]:
    """GENESYS_EXTRA_CLIENTS ("client-2,client-3", template.yaml's ExtraGenesysClients
    mapping) -> ("client-2", "client-3"). A name
    that is not a plain lowercase path segment, repeats, or is taken ("pipeline", "api")
    is a configuration error."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in names:
        if not _NAME.fullmatch(name):
            raise ConfigurationError(
                f"GENESYS_EXTRA_CLIENTS: {name!r:.40} is not a name of lowercase letters, "
                "digits and '-' (at most 32)"
            )
        if name in (PIPELINE, API):
            raise ConfigurationError(f"GENESYS_EXTRA_CLIENTS: {name!r} is a reserved name")
    if len(set(names)) != len(names):
        raise ConfigurationError("GENESYS_EXTRA_CLIENTS: a name appears twice")
    return names


def extra_client_names(count: int) -> tuple[str, ...]:
    """GenesysExtraClientCount=N -> client-2 ... client-(N+1): the names template.yaml's
    ExtraGenesysClients mapping gives (a test holds the two together)."""
    return tuple(f"client-{n}" for n in range(2, count + 2))


def client_parameters(prefix: str, name: str) -> ClientParameters:
    """The one rule for an extra client's parameter names (template.yaml follows it)."""
    base = f"{prefix.rstrip('/')}/{name}"
    return ClientParameters(
        token=f"{base}/token", client_id=f"{base}/client-id", client_secret=f"{base}/client-secret"
    )


def pinned_client(conversation_id: str, clients: Sequence[str]) -> str:
    """The client of `conversation_id`: the same in every function and container (a
    SHA-256 of the lowercased id, not Python's per-process hash), evenly spread."""
    if not clients:
        raise ValueError("no OAuth clients to choose from")
    if len(clients) == 1:
        return clients[0]
    digest = hashlib.sha256(conversation_id.strip().lower().encode()).digest()
    return clients[int.from_bytes(digest[:8], "big") % len(clients)]
