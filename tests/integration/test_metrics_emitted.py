"""The metrics a local run really prints (Powertools EMF on stderr) are the catalog's, with
the dimensions the dashboard and the alarms read: a handler's carry `function`, Genesys
answers give requests, 429s and the rate-limit headroom from the `inin-ratelimit-*`
headers, the external system's attempts give calls, failures and latency."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from attribute_bridge import metric_names as names

from localdev.runner import run_chain
from localdev.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((REPO / "events" / "genesys-voice-customer-start.json").read_text())
NAMESPACE = "GenesysParticipantAttributes"  # template.yaml's POWERTOOLS_METRICS_NAMESPACE


def live_call_event(box: Sandbox) -> dict[str, Any]:
    # The token first, as the schedule mints it: a function that has none invokes the
    # refresher, which locally runs in the same process and prints its own metrics.
    box.invoke("TokenRefresherFunction", {"force": True})
    conversation = box.emulator.create_conversation(
        media_type="VOICE",
        participants=[{"purpose": "customer", "attributes": {"case_id": "CASE-1001"}}],
    )
    event = copy.deepcopy(SAMPLE)
    event["id"] = str(uuid.uuid4())
    detail = event["detail"]
    detail["topicName"] = f"v2.detail.events.conversation.{conversation['id']}.customer.start"
    detail["eventBody"].update(
        conversationId=conversation["id"], participantId=conversation["participants"][0]["id"]
    )
    return event


def blobs(stderr: str) -> list[dict[str, Any]]:
    """The EMF documents printed, one per invocation."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith('{"_aws"')]


def by_function(printed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {blob.get("function", names.SERVICE_WIDE): blob for blob in printed}


def test_every_metric_a_chain_prints_is_catalogued_with_its_dimensions(
    box: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    event = live_call_event(box)
    capfd.readouterr()
    run_chain(box, event)
    printed = blobs(capfd.readouterr().err)

    assert len(printed) == 3  # one per step
    for blob in printed:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE
        assert directive["Dimensions"] == [["function", "service"]]
        assert blob["service"] == "participant-attributes"
        for metric in directive["Metrics"]:
            assert metric["Name"] in names.BY_NAME, metric["Name"]
            entry = names.BY_NAME[metric["Name"]]
            assert blob["function"] in entry.sources, (metric["Name"], blob["function"])
            assert metric["Unit"] == entry.unit
    steps = by_function(printed)
    assert steps["FetchAttributes"]["Fetched"] == [1.0]
    assert steps["SyncExternal"]["Synced"] == [1.0]
    assert steps["PatchAttributes"]["Patched"] == [1.0]


def test_genesys_answers_give_requests_429s_and_the_headroom_of_the_headers(
    box: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    box.emulator.configure(rate_limit=5)
    event = live_call_event(box)
    box.emulator.inject_fault(method="GET", path_pattern="/calls/", status=429, retry_after=0)
    capfd.readouterr()
    box.invoke("FetchAttributesFunction", event)
    fetch = by_function(blobs(capfd.readouterr().err))["FetchAttributes"]

    # a 429 (the fault carries no rate headers), then the GET: 5 allowed, 1 used
    assert fetch[names.GENESYS_REQUEST] == [1.0, 1.0]
    assert fetch[names.GENESYS_RATE_LIMITED] == [1.0]
    assert fetch[names.GENESYS_RATE_LIMIT_HEADROOM] == [4.0]
    assert fetch[names.FETCHED] == [1.0]


def test_external_attempts_give_calls_failures_and_latency(
    box: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    event = live_call_event(box)
    box.invoke("FetchAttributesFunction", event)
    (fetched,) = box.emitted_events()
    box.external.fail_next("500")
    capfd.readouterr()
    box.invoke("SyncExternalFunction", fetched)
    sync = by_function(blobs(capfd.readouterr().err))["SyncExternal"]

    assert sync[names.EXTERNAL_CALL] == [1.0, 1.0]  # a 500, then the retry answered
    assert sync[names.EXTERNAL_FAILURE] == [1.0]
    assert len(sync[names.EXTERNAL_LATENCY]) == 2
    assert all(0 < ms < 5000 for ms in sync[names.EXTERNAL_LATENCY])
    assert sync[names.SYNCED] == [1.0]
