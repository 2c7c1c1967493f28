"""Events as Genesys Cloud's EventBridge integration sends them, made from the emulator's
state: what `localdev pipeline --echo-attributes` feeds back after each PATCH."""

from __future__ import annotations

import time
import uuid
from typing import Any, Protocol

# The org id and suffix of the sample events (events/*.json), so the template's rules match.
PARTNER_SOURCE = (
    "aws.partner/genesys.com/cloud/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9/participant-attributes"
)


class ConversationSource(Protocol):
    def get_conversation(self, conversation_id: str) -> dict[str, Any] | None: ...


def attributes_event(
    emulator: ConversationSource, conversation_id: str, participant_id: str
) -> dict[str, Any]:
    """The `attributes` topic event Genesys sends after a participant's attributes change:
    the participant's attributes as they now are (GENESYS.md: full set or changed keys is
    UNKNOWN; the full set is sent here), its communication's media, no purpose."""
    conversation = emulator.get_conversation(conversation_id)
    if conversation is None:
        raise KeyError(f"conversation {conversation_id} not found")
    participant = next(p for p in conversation["participants"] if p["id"] == participant_id)
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "v2.detail.events.conversation.{id}.attributes",
        "source": PARTNER_SOURCE,
        "account": "123456789012",
        "time": f"{stamp}Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "topicName": f"v2.detail.events.conversation.{conversation_id}.attributes",
            "version": "2",
            "eventBody": {
                "eventTime": int(now * 1000),
                "conversationId": conversation_id,
                "participantId": participant_id,
                "attributes": dict(participant.get("attributes") or {}),
                "communications": [
                    {"id": str(uuid.uuid4()), "mediaType": conversation["mediaType"]}
                ],
            },
            "metadata": {"CorrelationId": str(uuid.uuid4())},
            "timestamp": f"{stamp}.000Z",
        },
    }
