"""Shared fixtures: the real parts that run here (the Genesys emulator over HTTP, the
external stub, moto for AWS) and a sandbox of the whole stack built from template.yaml."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.emulator import EmulatorConfig, GenesysEmulator
from localdev.external import ExternalSystemStub
from localdev.moto_aws import local_aws
from localdev.sandbox import LOCAL_ENVIRONMENT, Sandbox, sandbox

LEASE_TABLE = "token-lease"
TOKEN_PARAMETER = "/test/genesys/token"
CLIENT_ID_PARAMETER = "/test/genesys/client-id"
CLIENT_SECRET_PARAMETER = "/test/genesys/client-secret"


@pytest.fixture(autouse=True)
def _local_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in LOCAL_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "participant-attributes-tests")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Tests")


@pytest.fixture
def genesys_emulator() -> Iterator[GenesysEmulator]:
    with GenesysEmulator(EmulatorConfig()) as emulator:
        yield emulator


@pytest.fixture
def external_stub() -> Iterator[ExternalSystemStub]:
    with ExternalSystemStub() as stub:
        yield stub


@pytest.fixture
def aws(genesys_emulator: GenesysEmulator) -> Iterator[dict[str, Any]]:
    """moto with the lease table and the Genesys client credentials in SSM."""
    import boto3
    from attribute_bridge import aws as aws_adapters

    with local_aws():
        aws_adapters.aws_client.cache_clear()  # clients must be created inside the mock
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=LEASE_TABLE,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ssm = boto3.client("ssm")
        for name, value in (
            (CLIENT_ID_PARAMETER, genesys_emulator.config.client_id),
            (CLIENT_SECRET_PARAMETER, genesys_emulator.config.client_secret),
        ):
            ssm.put_parameter(Name=name, Value=value, Type="SecureString")
        yield {"ssm": ssm, "dynamodb": dynamodb}
        aws_adapters.aws_client.cache_clear()


@pytest.fixture
def box() -> Iterator[Sandbox]:
    """The whole stack locally: functions from template.yaml, moto, emulator, stub."""
    with sandbox() as stack:
        yield stack


REPO_ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def _localdev_server(command: str) -> Iterator[str]:
    """`python -m localdev COMMAND --port 0` in its own process: yields the base URL it
    announces, then checks that SIGTERM stops it cleanly (exit 0)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "localdev", command, "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        yield line.removeprefix("listening on ")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def localdev_server() -> Callable[[str], contextlib.AbstractContextManager[str]]:
    """Runs one of the localdev servers as a user would; see `_localdev_server`."""
    return _localdev_server


def genesys_write(
    box: Sandbox, conversation_id: str, participant_id: str, attributes: dict[str, str]
) -> None:
    """A write by someone else (an Architect flow, an agent script), through Genesys's API
    with its own token: not this stack's write, so the sandbox routes no event for it (the
    test sends the one it needs itself)."""
    import requests

    config = box.emulator.config
    token = requests.post(
        f"{box.emulator.base_url}/oauth/token",
        auth=(config.client_id, config.client_secret),
        data={"grant_type": "client_credentials"},
        timeout=5,
    ).json()["access_token"]
    requests.patch(
        f"{box.emulator.base_url}/api/v2/conversations/{conversation_id}"
        f"/participants/{participant_id}/attributes",
        json={"attributes": attributes},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).raise_for_status()
    box.emulator.take_patched()
