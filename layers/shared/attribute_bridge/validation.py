"""Checks applied before anything reaches Genesys: ids and attribute maps."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attribute_bridge.errors import InvalidAttributes, InvalidInput

# Genesys ids; also the API's path ids (api_read) and its OpenAPI schema (api_models).
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(UUID_PATTERN)


def is_uuid(value: object) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def require_uuid(value: object, name: str) -> str:
    """Genesys ids are UUIDs. Anything else (`../../users/me`, `x?y`) never reaches a URL."""
    if not is_uuid(value):
        raise InvalidInput(f"{name} must be a UUID, got {_preview(value)}")
    return str(value).lower()


@dataclass(frozen=True)
class AttributeLimits:
    """Defaults from Genesys's documented limits: Architect's Set Participant Data takes
    values up to 256 characters and 50 attributes per session; a request is at most
    512,000 bytes. Key length is not documented by Genesys; 256 is this project's choice."""

    max_keys: int = 50
    max_key_length: int = 256
    max_value_length: int = 256
    max_body_bytes: int = 512_000


def validate_attributes(attributes: object, limits: AttributeLimits) -> dict[str, str]:
    """Return the map unchanged if Genesys would take it; else raise naming every bad key."""
    if not isinstance(attributes, Mapping):
        raise InvalidAttributes("attributes must be an object of string keys to string values")
    errors: list[str] = []
    if len(attributes) > limits.max_keys:
        errors.append(f"{len(attributes)} attributes, at most {limits.max_keys} allowed")
    for key, value in attributes.items():
        if not isinstance(key, str) or not key.strip():
            errors.append(f"attribute key {_preview(key)} must be a non-empty string")
            continue
        if len(key) > limits.max_key_length:
            errors.append(f"attribute key {_preview(key)} is longer than {limits.max_key_length}")
        if not isinstance(value, str):
            errors.append(f"attribute {key!r} must be a string, got {type(value).__name__}")
        elif len(value) > limits.max_value_length:
            errors.append(
                f"attribute {key!r} is {len(value)} characters, at most "
                f"{limits.max_value_length} allowed"
            )
    if not errors:
        size = len(json.dumps({"attributes": attributes}).encode())
        if size > limits.max_body_bytes:
            errors.append(f"attributes take {size} bytes, at most {limits.max_body_bytes}")
    if errors:
        raise InvalidAttributes("; ".join(errors[:5]), errors)
    return {str(k): str(v) for k, v in attributes.items()}


def _preview(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
