"""The small rules behind "exactly once, in order": what an idempotency key selects (with
the JMESPath library Powertools uses), when an event happened, how long a Retry-After
is, and an external URL that is a configuration error. The chain-level behaviour is in
tests/integration/test_fault_matrix.py."""

from __future__ import annotations

import copy
import json
import math
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import jmespath
import pytest
import requests
from attribute_bridge.errors import ConfigurationError, InvalidInput
from attribute_bridge.events import MAX_FUTURE_SKEW_MS, event_time_ms
from attribute_bridge.external import ExternalSystem
from attribute_bridge.genesys.client import MAX_RETRY_AFTER_SECONDS, retry_after_seconds
from attribute_bridge.handling import APP_EVENT_KEY, CONVERSATION_EVENT_KEY

EVENTS = Path(__file__).resolve().parents[2] / "events"
NOW_MS = 1_795_257_045_000  # the sample's eventTime


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


# ---------------------------------------------------------------------------- keys


def test_a_genesys_redelivery_selects_the_same_key_and_a_new_change_another() -> None:
    event = sample("genesys-voice-customer-start.json")
    redelivered = copy.deepcopy(event)
    redelivered["id"] = "another-put-events-entry"
    redelivered["time"] = "2026-11-22T10:30:45Z"
    redelivered["detail"]["timestamp"] = "2026-11-22T10:30:45.900Z"
    redelivered["detail"]["metadata"]["CorrelationId"] = "a-new-one"
    changed = copy.deepcopy(event)
    changed["detail"]["eventBody"]["eventTime"] += 1
    key = jmespath.compile(CONVERSATION_EVENT_KEY)
    assert key.search(redelivered) == key.search(event)
    assert key.search(changed) != key.search(event)
    assert key.search(event) == [event["detail"]["topicName"], event["detail"]["eventBody"]]


def test_the_apps_own_events_are_keyed_on_the_envelope_id() -> None:
    request = sample("app-update-requested.json")
    same_detail_new_entry = {**copy.deepcopy(request), "id": "another-put-events-entry"}
    for path in (APP_EVENT_KEY, CONVERSATION_EVENT_KEY):  # a SyncRequested goes to Fetch
        key = jmespath.compile(path)
        assert key.search(request) == request["id"]
        assert key.search(same_detail_new_entry) != key.search(request)


# ---------------------------------------------------------------------------- event time


@pytest.mark.parametrize(
    ("event_time", "envelope_time", "expected"),
    [
        (NOW_MS - 5, None, NOW_MS - 5),
        (float(NOW_MS), "2026-11-21T10:30:45Z", NOW_MS),
        ("1795257045000", "2026-11-21T10:30:44Z", NOW_MS - 1000),
        (True, "2026-11-21T10:30:45+00:00", NOW_MS),  # a boolean is not a time
        (None, "2026-11-21T11:30:45+01:00", NOW_MS),
        (NOW_MS + MAX_FUTURE_SKEW_MS, None, NOW_MS + MAX_FUTURE_SKEW_MS),  # skew is allowed
    ],
)
def test_event_time_is_event_time_else_the_envelope_time(
    event_time: Any, envelope_time: str | None, expected: int
) -> None:
    body = {} if event_time is None else {"eventTime": event_time}
    envelope = {} if envelope_time is None else {"time": envelope_time}
    assert event_time_ms(envelope, body, now_ms=NOW_MS) == expected


@pytest.mark.parametrize(
    ("event_time", "envelope_time", "message"),
    [
        (None, None, "no usable time"),
        ("soon", "yesterday", "no usable time"),
        (1.5, 1795257045, "no usable time"),
        (None, "2026-11-21T10:30:45", "no usable time"),  # no zone: which clock?
        (NOW_MS + MAX_FUTURE_SKEW_MS + 1000, None, "1 s in the future"),
        (None, "2026-11-22T10:30:45Z", "86400 s in the future"),
    ],
)
def test_an_unreadable_or_future_event_time_is_bad_input(
    event_time: Any, envelope_time: Any, message: str
) -> None:
    body = {} if event_time is None else {"eventTime": event_time}
    envelope = {} if envelope_time is None else {"time": envelope_time}
    with pytest.raises(InvalidInput, match=message):
        event_time_ms(envelope, body, now_ms=NOW_MS)


# ---------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("86400", MAX_RETRY_AFTER_SECONDS),
        ("1e308", MAX_RETRY_AFTER_SECONDS),
        ("inf", MAX_RETRY_AFTER_SECONDS),
        ("nan", 1.0),
        ("soon", 1.0),
        (None, 1.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),  # a date in the past: retry now
    ],
)
def test_retry_after_is_seconds_within_the_rate_window(header: str | None, expected: float) -> None:
    headers = {} if header is None else {"Retry-After": header}
    assert retry_after_seconds(headers) == expected


def test_retry_after_as_an_http_date_is_seconds_from_now() -> None:
    soon = retry_after_seconds({"Retry-After": formatdate(time.time() + 10, usegmt=True)})
    assert 8 <= soon <= 10
    tomorrow = {"Retry-After": formatdate(time.time() + 86400, usegmt=True)}
    assert retry_after_seconds(tomorrow) == MAX_RETRY_AFTER_SECONDS
    assert not math.isnan(retry_after_seconds({"Retry-After": "Mon, 99 Foo 2026"}))


# ---------------------------------------------------------------------------- external URL


@pytest.mark.parametrize("url", ["http://crm.example.com/sync", "ftp://crm.example.com/"])
def test_an_external_url_that_is_not_https_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="must be an https:// URL") as raised:
        ExternalSystem(url, lambda: None, requests.Session())
    assert raised.value.retryable is False


def test_no_external_url_is_a_configuration_error_when_called() -> None:
    from attribute_bridge.budget import Budget

    external = ExternalSystem("", lambda: None, requests.Session())
    with pytest.raises(ConfigurationError, match="not configured"):
        external.sync({}, Budget.from_context(None))
