"""Shared fixtures: the real parts that run here (the Genesys emulator over HTTP, the
external stub, moto for AWS) and a sandbox of the whole stack built from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator
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
