"""The seeds' workflow, with the SDK names that exist (GENESYS.md): per sync, a new
ApiClient and a new client-credentials token, read the conversation, POST to the external
system, PATCH the participant's attributes, read again to verify. The SDK is imported
eagerly, as the seeds do. Run by benchmarks/economy.py in its own process (the eager
import would otherwise load ~6,650 modules into the benchmark process):

    python -m benchmarks.seed_workflow CONFIG_JSON

CONFIG_JSON: {"api_url", "client_id", "client_secret", "sync_url", "conversations":
[{"id", "media"}]}. Prints one JSON line: import time and per-sync wall times.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import requests


def main(argv: list[str]) -> int:
    config: dict[str, Any] = json.loads(argv[0])
    started = time.perf_counter()
    import PureCloudPlatformClientV2 as sdk

    import_seconds = time.perf_counter() - started
    session = requests.Session()
    durations: list[float] = []
    verified = 0
    for conversation in config["conversations"]:
        began = time.perf_counter()
        conversation_id, voice = conversation["id"], conversation["media"] == "VOICE"
        api_client = sdk.ApiClient(host=config["api_url"])
        api_client.get_client_credentials_token(config["client_id"], config["client_secret"])
        api = sdk.ConversationsApi(api_client)
        read = api.get_conversations_call if voice else api.get_conversations_message
        current = read(conversation_id)
        customer = next(p for p in current.participants if p.purpose == "customer")
        answer = session.post(
            config["sync_url"],
            json={
                "conversationId": conversation_id,
                "participantId": customer.id,
                "mediaType": conversation["media"],
                "attributes": dict(customer.attributes or {}),
            },
            timeout=10,
        ).json()
        body = sdk.ParticipantAttributes()
        body.attributes = dict(answer.get("attributes") or {})
        if voice:
            api.patch_conversations_call_participant_attributes(conversation_id, customer.id, body)
        else:
            api.patch_conversations_message_participant_attributes(
                conversation_id, customer.id, body=body
            )
        after = read(conversation_id)
        written = next(p for p in after.participants if p.id == customer.id).attributes or {}
        verified += all(written.get(k) == v for k, v in body.attributes.items())
        durations.append(time.perf_counter() - began)
    print(
        json.dumps(
            {"import_seconds": import_seconds, "durations": durations, "verified": verified}
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
