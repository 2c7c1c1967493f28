"""LambdaTokenRefresher: how a synchronous invoke of TokenRefresher's answers map to what
the TokenStore does next. The real boto3 Lambda client; its answers come from moto (a
function that does not exist) or botocore's Stubber (a throttle and a function error,
which moto cannot produce)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from attribute_bridge.aws import LambdaTokenRefresher
from attribute_bridge.budget import Budget
from attribute_bridge.errors import TokenUnavailable
from attribute_bridge.token_store import RefresherBusy, TokenPathMisconfigured
from botocore.stub import Stubber

from localdev.moto_aws import local_aws

REQUEST = {"client": "pipeline"}


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("lambda", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_a_missing_function_is_a_configuration_error() -> None:
    with local_aws():
        refresher = LambdaTokenRefresher("NoSuchFunction", boto3.client("lambda"))
        with pytest.raises(TokenPathMisconfigured, match="ResourceNotFoundException"):
            refresher.request_token(REQUEST, Budget.seconds(5))


def test_a_throttled_invoke_means_another_mint_is_running(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error("invoke", "TooManyRequestsException", http_status_code=429)
    with pytest.raises(RefresherBusy):
        LambdaTokenRefresher("TokenRefresher", client).request_token(REQUEST, Budget.seconds(5))


def test_access_denied_is_a_configuration_error(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error("invoke", "AccessDeniedException", http_status_code=403)
    with pytest.raises(TokenPathMisconfigured):
        LambdaTokenRefresher("TokenRefresher", client).request_token(REQUEST, Budget.seconds(5))


def test_an_unhandled_error_in_the_refresher_is_transient(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    payload = json.dumps({"errorMessage": "token endpoint unreachable"}).encode()
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(payload)},
        {
            "FunctionName": "TokenRefresher",
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(REQUEST).encode(),
        },
    )
    with pytest.raises(TokenUnavailable, match="TokenRefresher failed"):
        LambdaTokenRefresher("TokenRefresher", client).request_token(REQUEST, Budget.seconds(5))


def test_the_refreshers_answer_is_returned(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    answer = {"outcome": "token_minted", "expiresAt": 1.0}
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())},
        {
            "FunctionName": "TokenRefresher",
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(REQUEST).encode(),
        },
    )
    got = LambdaTokenRefresher("TokenRefresher", client).request_token(REQUEST, Budget.seconds(5))
    assert got == answer
