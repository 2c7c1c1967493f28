"""What the chain remembers about a live conversation, in one small DynamoDB table (TTL).

Per participant, one item `participant#{conversationId}#{participantId}`:
- `purpose`, `media`: written when a read of the conversation saw the participant (or, in
  context-only mode, when its customer.start named it), so an `attributes` event (which
  names no purpose) needs no Genesys read to know whether it is a customer's, and
  PatchAttributes checks the purpose without reading either;
- `fingerprint`: of the allow-listed input attributes at the last sync, so a write of
  output keys (which Genesys reports as an `attributes` event) never syncs again;
- `w.{key}`: epoch ms of this stack's last write of `key`, so a write based on an older
  read knows it must compare-and-set.
Per conversation and hour, `syncs#{conversationId}#{hour}` counts the syncs (the loop cap).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

WRITE_PREFIX = "w."
DEFAULT_TTL_SECONDS = 24 * 3600  # longer than any live conversation this chain serves


@dataclass(frozen=True)
class ParticipantRecord:
    purpose: str
    media_type: str
    fingerprint: str | None = None
    written_at_ms: Mapping[str, int] = field(default_factory=dict)

    def written_since(self, keys: Iterable[str], since_ms: int) -> bool:
        """Did this stack write any of `keys` after `since_ms`?"""
        return any(self.written_at_ms.get(key, 0) > since_ms for key in keys)


class ConversationState(Protocol):
    def participant(
        self, conversation_id: str, participant_id: str
    ) -> ParticipantRecord | None: ...

    def remember_participants(
        self, conversation_id: str, media_type: str, purposes: Mapping[str, str]
    ) -> None: ...

    def record_writes(
        self, conversation_id: str, participant_id: str, keys: Iterable[str], at_ms: int
    ) -> None: ...

    def record_sync(self, conversation_id: str, participant_id: str, fingerprint: str) -> None: ...

    def count_sync(self, conversation_id: str, now: float | None = None) -> int:
        """Add one sync to the conversation's count for the current hour; the new count."""
        ...


class DynamoConversationState:
    def __init__(
        self, table_name: str, client: Any = None, ttl_seconds: int = DEFAULT_TTL_SECONDS
    ) -> None:
        self._table = table_name
        self._client = client
        self._ttl = ttl_seconds

    @property
    def client(self) -> Any:
        from attribute_bridge.aws import aws_client

        return self._client or aws_client("dynamodb")

    def participant(self, conversation_id: str, participant_id: str) -> ParticipantRecord | None:
        item = self.client.get_item(
            TableName=self._table,
            Key={"id": {"S": _participant_key(conversation_id, participant_id)}},
            ConsistentRead=True,
        ).get("Item")
        if not item or "purpose" not in item:
            return None
        return ParticipantRecord(
            purpose=item["purpose"]["S"],
            media_type=item.get("media", {}).get("S", ""),
            fingerprint=item.get("fingerprint", {}).get("S"),
            written_at_ms={
                name.removeprefix(WRITE_PREFIX): int(value["N"])
                for name, value in item.items()
                if name.startswith(WRITE_PREFIX)
            },
        )

    def remember_participants(
        self, conversation_id: str, media_type: str, purposes: Mapping[str, str]
    ) -> None:
        for participant_id, purpose in purposes.items():
            self._update(
                _participant_key(conversation_id, participant_id),
                {"purpose": {"S": purpose}, "media": {"S": media_type}},
            )

    def record_writes(
        self, conversation_id: str, participant_id: str, keys: Iterable[str], at_ms: int
    ) -> None:
        values = {f"{WRITE_PREFIX}{key}": {"N": str(at_ms)} for key in keys}
        if values:
            self._update(_participant_key(conversation_id, participant_id), values)

    def record_sync(self, conversation_id: str, participant_id: str, fingerprint: str) -> None:
        self._update(
            _participant_key(conversation_id, participant_id), {"fingerprint": {"S": fingerprint}}
        )

    def count_sync(self, conversation_id: str, now: float | None = None) -> int:
        now = time.time() if now is None else now
        response = self.client.update_item(
            TableName=self._table,
            Key={"id": {"S": f"syncs#{conversation_id}#{int(now // 3600)}"}},
            UpdateExpression="ADD #count :one SET #expiration = :expiration",
            ExpressionAttributeNames={"#count": "count", "#expiration": "expiration"},
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":expiration": {"N": str(int(now) + 2 * 3600)},
            },
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["count"]["N"])

    def _update(self, key: str, values: Mapping[str, Mapping[str, str]]) -> None:
        """SET each value (and the TTL) without touching the item's other attributes."""
        names = {f"#a{i}": name for i, name in enumerate(values)}
        placeholders = {f":v{i}": value for i, value in enumerate(values.values())}
        assignments = [f"#a{i} = :v{i}" for i in range(len(values))]
        names["#expiration"] = "expiration"
        placeholders[":expiration"] = {"N": str(int(time.time()) + self._ttl)}
        self.client.update_item(
            TableName=self._table,
            Key={"id": {"S": key}},
            UpdateExpression="SET " + ", ".join([*assignments, "#expiration = :expiration"]),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=placeholders,
        )


def _participant_key(conversation_id: str, participant_id: str) -> str:
    return f"participant#{conversation_id.lower()}#{participant_id.lower()}"
