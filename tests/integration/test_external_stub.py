"""The external-system stub: rule table, added rules, auth, failure modes, recording."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
import requests

from localdev.external import ExternalSystemStub


@pytest.fixture
def stub() -> Iterator[ExternalSystemStub]:
    with ExternalSystemStub(slow_seconds=0.3) as started:
        yield started


def sync_request(
    case_id: str | None = None, conversation_id: str = "conv-1", **extra: str
) -> dict[str, Any]:
    attributes = {"case_id": case_id} if case_id else {}
    return {
        "conversationId": conversation_id,
        "participantId": "part-1",
        "mediaType": "VOICE",
        "correlationId": "corr-1",
        "attributes": attributes | extra,
    }


def sync(stub: ExternalSystemStub, body: Any, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 5)
    return requests.post(f"{stub.base_url}/sync", json=body, **kwargs)


@pytest.mark.parametrize(
    ("case_id", "attributes"),
    [
        ("CASE-1001", {"case_status": "open", "case_priority": "high"}),
        ("CASE-2002", {"case_status": "pending_customer", "case_priority": "normal"}),
    ],
)
def test_built_in_rules_answer_by_case_id(
    stub: ExternalSystemStub, case_id: str, attributes: dict[str, str]
) -> None:
    response = sync(stub, sync_request(case_id))
    assert response.status_code == 200
    assert response.json() == {"attributes": attributes, "status": attributes["case_status"]}


def test_no_matching_rule_answers_empty_attributes(stub: ExternalSystemStub) -> None:
    bodies: list[dict[str, Any]] = [
        sync_request("CASE-9999"),
        sync_request(None),
        {"attributes": {}},
    ]
    for body in bodies:
        response = sync(stub, body)
        assert response.status_code == 200
        assert response.json() == {"attributes": {}}


def test_added_rules_match_on_every_key_and_win_over_built_ins(stub: ExternalSystemStub) -> None:
    stub.add_rule(match={"conversationId": "conv-7"}, answer={"segment": "gold"})
    stub.add_rule(
        match={"attributes.case_id": "CASE-1001", "mediaType": "VOICE"},
        answer={"case_status": "closed"},
    )
    stub.add_rule(match={"attributes.context.tier": "vip"}, answer={"lane": "fast"})

    assert sync(stub, sync_request(conversation_id="conv-7")).json() == {
        "attributes": {"segment": "gold"}
    }
    assert sync(stub, sync_request("CASE-1001")).json() == {
        "attributes": {"case_status": "closed"},
        "status": "closed",
    }
    message = sync_request("CASE-1001") | {"mediaType": "MESSAGE"}
    assert sync(stub, message).json()["attributes"]["case_status"] == "open"  # built-in
    dotted = sync_request(None, **{"context.tier": "vip"})
    assert sync(stub, dotted).json() == {"attributes": {"lane": "fast"}}


def test_newest_added_rule_wins(stub: ExternalSystemStub) -> None:
    stub.add_rule(match={"conversationId": "conv-1"}, answer={"n": "first"})
    stub.add_rule(match={"conversationId": "conv-1"}, answer={"n": "second"})
    assert sync(stub, sync_request()).json() == {"attributes": {"n": "second"}}


def test_received_records_every_sync_body_in_order(stub: ExternalSystemStub) -> None:
    first, second = sync_request("CASE-1001"), sync_request("CASE-2002", conversation_id="c2")
    sync(stub, first)
    sync(stub, second)
    assert stub.received == [first, second]
    stub.reset()
    assert stub.received == []


def test_reset_drops_added_rules_and_pending_failures(stub: ExternalSystemStub) -> None:
    stub.add_rule(match={}, answer={"everything": "matches"})
    stub.fail_next("500")
    stub.reset()
    response = sync(stub, sync_request("CASE-1001"))
    assert response.status_code == 200
    assert response.json()["attributes"] == {"case_status": "open", "case_priority": "high"}


def test_expected_auth_is_enforced() -> None:
    with ExternalSystemStub(expected_auth="Bearer xyz") as stub:
        assert sync(stub, sync_request("CASE-1001")).status_code == 401
        wrong = sync(stub, sync_request("CASE-1001"), headers={"Authorization": "Bearer abc"})
        assert wrong.status_code == 401
        right = sync(stub, sync_request("CASE-1001"), headers={"Authorization": "Bearer xyz"})
        assert right.status_code == 200
        assert right.json()["status"] == "open"
        assert len(stub.received) == 3  # refused requests are recorded too


@pytest.mark.parametrize(("mode", "status"), [("500", 500), ("401", 401)])
def test_failing_statuses_hit_the_next_n_requests(
    stub: ExternalSystemStub, mode: str, status: int
) -> None:
    stub.fail_next(mode, count=2)
    assert [sync(stub, sync_request("CASE-1001")).status_code for _ in range(3)] == [
        status,
        status,
        200,
    ]
    assert len(stub.received) == 3


def test_slow_mode_sleeps_then_answers_normally(stub: ExternalSystemStub) -> None:
    stub.fail_next("slow")
    started = time.monotonic()
    response = sync(stub, sync_request("CASE-1001"))
    assert time.monotonic() - started >= 0.3
    assert response.json()["status"] == "open"

    stub.fail_next("slow", seconds=1.0)
    with pytest.raises(requests.Timeout):
        sync(stub, sync_request("CASE-1001"), timeout=0.2)


def test_invalid_json_mode(stub: ExternalSystemStub) -> None:
    stub.fail_next("invalid_json")
    response = sync(stub, sync_request("CASE-1001"))
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert sync(stub, sync_request("CASE-1001")).json()["status"] == "open"


def test_non_string_mode_answers_values_of_other_json_types(stub: ExternalSystemStub) -> None:
    stub.fail_next("non_string")
    attributes = sync(stub, sync_request("CASE-1001")).json()["attributes"]
    assert attributes["case_status"] == "open"
    non_strings = {key: value for key, value in attributes.items() if not isinstance(value, str)}
    kinds = {type(value) for value in non_strings.values()}
    assert {int, float, bool, type(None), dict, list} <= kinds


def test_oversized_mode_answers_a_10000_character_value(stub: ExternalSystemStub) -> None:
    stub.fail_next("oversized")
    attributes = sync(stub, sync_request("CASE-2002")).json()["attributes"]
    assert max(len(value) for value in attributes.values()) == 10_000
    assert attributes["case_status"] == "pending_customer"


def test_unknown_failure_mode_is_refused(stub: ExternalSystemStub) -> None:
    with pytest.raises(ValueError, match="mode"):
        stub.fail_next("teapot")


def test_non_json_sync_body_is_400(stub: ExternalSystemStub) -> None:
    response = requests.post(f"{stub.base_url}/sync", data=b"nope", timeout=5)
    assert response.status_code == 400
    assert stub.received == [{"_raw": "nope"}]


def test_other_paths_are_404(stub: ExternalSystemStub) -> None:
    assert requests.post(f"{stub.base_url}/other", json={}, timeout=5).status_code == 404
    assert requests.get(f"{stub.base_url}/sync", timeout=5).status_code == 404


def test_control_endpoints(stub: ExternalSystemStub) -> None:
    control = f"{stub.base_url}/_external"
    added = requests.post(
        f"{control}/rules",
        json={"match": {"attributes.case_id": "CASE-3"}, "answer": {"case_status": "new"}},
        timeout=5,
    )
    assert added.status_code == 201
    failing = requests.post(f"{control}/fail", json={"mode": "500", "count": 1}, timeout=5)
    assert failing.status_code == 201
    assert failing.json() == {"pending": ["500"]}

    assert sync(stub, sync_request("CASE-3")).status_code == 500
    assert sync(stub, sync_request("CASE-3")).json() == {
        "attributes": {"case_status": "new"},
        "status": "new",
    }
    received = requests.get(f"{control}/received", timeout=5).json()
    assert received["count"] == 2
    assert received["received"][0]["attributes"] == {"case_id": "CASE-3"}

    assert requests.post(f"{control}/reset", timeout=5).status_code == 200
    assert stub.received == []
    assert sync(stub, sync_request("CASE-3")).json() == {"attributes": {}}

    assert requests.post(f"{control}/fail", json={"mode": "x"}, timeout=5).status_code == 400
    assert requests.post(f"{control}/rules", json={"match": {}}, timeout=5).status_code == 400
    slow = requests.post(f"{control}/fail", json={"mode": "slow", "seconds": 0.2}, timeout=5)
    assert slow.status_code == 201
    started = time.monotonic()
    sync(stub, sync_request())
    assert time.monotonic() - started >= 0.2


def test_python_m_localdev_external_serves_until_sigterm(
    localdev_server: Callable[[str], AbstractContextManager[str]],
) -> None:
    with localdev_server("external") as base_url:
        answer = requests.post(f"{base_url}/sync", json=sync_request("CASE-1001"), timeout=5)
        assert answer.json()["status"] == "open"
