"""A client of the emulator's `/_emulator/` control endpoints, for use from another process
(the same methods as GenesysEmulator's in-process control)."""

from __future__ import annotations

from typing import Any

import requests


class EmulatorClient:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._session.request(
            method, f"{self.base_url}/_emulator/{path}", json=body, timeout=self.timeout
        )
        if response.status_code >= 400:
            raise requests.HTTPError(
                f"{method} /_emulator/{path} -> {response.status_code}: {response.text}",
                response=response,
            )
        return response.json()

    def create_conversation(
        self,
        media_type: str = "VOICE",
        message_type: str | None = None,
        participants: list[dict[str, Any]] | None = None,
        conversation_id: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"media_type": media_type}
        if message_type is not None:
            body["message_type"] = message_type
        if participants is not None:
            body["participants"] = participants
        if conversation_id is not None:
            body["conversation_id"] = conversation_id
        created: dict[str, Any] = self._call("POST", "conversations", body)
        return created

    def end_conversation(self, conversation_id: str) -> dict[str, Any]:
        ended: dict[str, Any] = self._call("POST", f"conversations/{conversation_id}/end")
        return ended

    def participant_attributes(self, conversation_id: str, participant_id: str) -> dict[str, str]:
        path = f"conversations/{conversation_id}/participants/{participant_id}/attributes"
        attributes: dict[str, str] = self._call("GET", path)["attributes"]
        return attributes

    def revoke_tokens(self) -> int:
        revoked: int = self._call("POST", "tokens/revoke")["revoked"]
        return revoked

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
        fault = {
            "method": method,
            "path_pattern": path_pattern,
            "status": status,
            "count": count,
            "retry_after": retry_after,
            "delay_seconds": delay_seconds,
            "body": body,
        }
        described: dict[str, Any] = self._call("POST", "faults", fault)["fault"]
        return described

    def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = self._call("GET", "counters")
        return counters

    def reset(self) -> None:
        self._call("POST", "reset")

    def configure(self, **changes: Any) -> dict[str, Any]:
        config: dict[str, Any] = self._call("POST", "config", changes)
        return config

    def close(self) -> None:
        self._session.close()
