"""Pinning conversations to the pipeline's OAuth clients (oauth_clients.py) and the
container's one adapter per client (wiring.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from attribute_bridge import wiring
from attribute_bridge.errors import ConfigurationError
from attribute_bridge.oauth_clients import client_parameters, parse_extra_clients, pinned_client

LAYER = Path(__file__).resolve().parents[2] / "layers" / "shared"
THREE = ("pipeline", "client-2", "client-3")


def test_a_conversation_keeps_its_client_across_processes_and_letter_case() -> None:
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"pin/{n}")) for n in range(50)]
    here = [pinned_client(i, THREE) for i in ids]
    assert [pinned_client(i.upper(), THREE) for i in ids] == here
    script = (
        "import json, sys\n"
        "from attribute_bridge.oauth_clients import pinned_client\n"
        "ids = json.loads(sys.argv[1])\n"
        f"print(json.dumps([pinned_client(i, {THREE!r}) for i in ids]))\n"
    )
    for seed in ("1", "2"):  # another process, another str hash: the same clients
        environment = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(LAYER)}
        output = subprocess.run(
            [sys.executable, "-c", script, json.dumps(ids)],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
        ).stdout
        assert json.loads(output) == here
    assert len(set(here)) == 3


@pytest.mark.parametrize("count", [2, 3, 5])
def test_conversations_spread_evenly_over_the_clients(count: int) -> None:
    clients = ("pipeline", *(f"client-{n}" for n in range(2, count + 1)))
    conversations = 30_000
    spread = Counter(pinned_client(str(uuid.uuid4()), clients) for _ in range(conversations))
    assert set(spread) == set(clients)
    even = conversations / count
    assert all(abs(n - even) < 0.05 * even for n in spread.values()), spread


def test_one_client_takes_everything() -> None:
    assert {pinned_client(str(uuid.uuid4()), ("pipeline",)) for _ in range(100)} == {"pipeline"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("client-2,Client-3", "lowercase"),
        ("client-2,client-2", "twice"),
        ("pipeline", "reserved"),
        ("api", "reserved"),
        ("client/2", "lowercase"),
    ],
)
def test_bad_extra_client_names_are_configuration_errors(text: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        parse_extra_clients(text)


def test_extra_client_names_and_their_parameters() -> None:
    assert parse_extra_clients("") == ()
    assert parse_extra_clients(" client-2 , client-3 ") == ("client-2", "client-3")
    names = client_parameters("/participant-attributes/prod/genesys/", "client-2")
    assert names.token == "/participant-attributes/prod/genesys/client-2/token"
    assert names.client_id == "/participant-attributes/prod/genesys/client-2/client-id"
    assert names.client_secret == "/participant-attributes/prod/genesys/client-2/client-secret"


@pytest.fixture
def three_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GENESYS_EXTRA_CLIENTS", "client-2,client-3")
    monkeypatch.setenv("GENESYS_EXTRA_CLIENTS_PREFIX", "/participant-attributes/dev/genesys")
    monkeypatch.setenv("TOKEN_REFRESHER_FUNCTION", "TokenRefresher")
    monkeypatch.setenv("GENESYS_REGION", "mypurecloud.com")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    wiring.reset()
    yield
    wiring.reset()


def pinned_to(client: str) -> str:
    return next(
        i
        for i in (str(uuid.uuid5(uuid.NAMESPACE_URL, f"w/{n}")) for n in range(500))
        if pinned_client(i, THREE) == client
    )


@pytest.mark.usefixtures("three_clients")
def test_the_container_keeps_one_genesys_adapter_and_token_per_client() -> None:
    adapters = {client: wiring.genesys(pinned_to(client)) for client in THREE}
    assert len({id(a) for a in adapters.values()}) == 3
    assert wiring.genesys(pinned_to("client-2")) is adapters["client-2"]
    assert wiring.genesys() is adapters["pipeline"]  # no conversation: the function's own
    assert wiring.genesys_client_name(pinned_to("client-3")) == "client-3"
    assert wiring.token_store("client-2") is not wiring.token_store("pipeline")
    assert wiring.minting_clients() == THREE


@pytest.mark.usefixtures("three_clients")
def test_a_client_that_is_not_configured_or_a_missing_prefix_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigurationError, match="client-4"):
        wiring.token_store("client-4")
    monkeypatch.delenv("GENESYS_EXTRA_CLIENTS_PREFIX")
    wiring.reset()
    with pytest.raises(ConfigurationError, match="prefix"):
        wiring.genesys(pinned_to("client-2"))
    monkeypatch.setenv("GENESYS_EXTRA_CLIENTS", "Client-2")
    with pytest.raises(ConfigurationError, match="lowercase"):
        wiring.genesys(pinned_to("client-2"))


def test_without_extra_clients_every_conversation_uses_the_functions_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GENESYS_EXTRA_CLIENTS", raising=False)
    monkeypatch.setenv("GENESYS_TOKEN_CLIENT", "api")
    assert {wiring.genesys_client_name(str(uuid.uuid4())) for _ in range(50)} == {"api"}
    assert wiring.pipeline_clients() == ("pipeline",)
