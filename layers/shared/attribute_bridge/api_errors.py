"""The AttributesApi's error answers, decided from the exception a route raised: one table
for the validating router (attribute_bridge.attributes_api) and for the plain read of a
participant's attributes (attribute_bridge.api_read), which pydantic never loads for.
Every error is JSON `{"message", "errors"}`; the details of an upstream failure (URLs,
Genesys messages) go to the log only, never to the caller."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from attribute_bridge.errors import (
    BridgeError,
    Conflict,
    GenesysError,
    GenesysUnavailable,
    InvalidInput,
    InvalidRequest,
    NotFound,
    PublishFailed,
    RateLimited,
    TokenUnavailable,
    Unauthorized,
)

logger = Logger(child=True)
metrics = Metrics()  # Powertools shares one metric set: the handler module flushes it
JSON = "application/json"


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    metric: str
    message: str
    errors: list[str]
    headers: dict[str, str] | None = None

    def body(self) -> dict[str, Any]:
        """ApiError's fields (attribute_bridge.api_models), in its order."""
        return {"message": self.message, "errors": self.errors}


UPSTREAM_MESSAGES: dict[type[BridgeError], str] = {
    Unauthorized: "Genesys Cloud refused this service's credentials",
    InvalidRequest: "Genesys Cloud refused the request",
    GenesysUnavailable: "Genesys Cloud is unavailable",
    TokenUnavailable: "No Genesys Cloud access token is available",
    PublishFailed: "The sync request could not be queued",
    GenesysError: "Genesys Cloud answered unexpectedly",
    BridgeError: "A service this API depends on failed",
}


def answer_for(error: Exception, method: str) -> ErrorAnswer:
    """The answer to a route's exception (`method`: the request's HTTP method); counts
    its metric and logs it."""
    answer = _answer(error, method)
    if answer.status < 500:
        logger.info("Request refused", extra={"status": answer.status, "errors": answer.errors})
    return answer


def _answer(error: Exception, method: str) -> ErrorAnswer:
    if isinstance(error, InvalidInput):
        return _counted(400, "Rejected", "The request is invalid", error.errors)
    if isinstance(error, NotFound):
        if error.status is None:  # the domain's: the conversation has no such participant
            return _counted(404, "NotFound", "The participant was not found", [str(error)])
        # Genesys's 404: a read names the conversation; a write cannot tell which id is unknown.
        what = "conversation" if method == "GET" else "conversation or participant"
        return _counted(
            404, "NotFound", f"The {what} was not found", [f"{what} not found in Genesys Cloud"]
        )
    if isinstance(error, RateLimited):
        seconds = max(1, math.ceil(error.retry_after))
        return _counted(
            429,
            "RateLimited",
            "Genesys Cloud is rate limiting this service",
            [f"retry after {seconds} seconds"],
            headers={"Retry-After": str(seconds)},
        )
    if isinstance(error, Conflict):
        return _counted(409, "Conflict", "Genesys Cloud reported a conflict", ["retry the request"])
    if isinstance(error, BridgeError):
        logger.error("Upstream failure", extra={"error": str(error), "kind": type(error).__name__})
        message = next(text for kind, text in UPSTREAM_MESSAGES.items() if isinstance(error, kind))
        status = getattr(error, "status", None)
        details = [f"upstream answered {status}"] if isinstance(status, int) else ["retry later"]
        return _counted(502, "Failed", message, details)
    logger.exception("Unexpected failure")
    return _counted(500, "Failed", "Internal error", ["unexpected failure; see the logs"])


def _counted(
    status: int, metric: str, message: str, errors: list[str], headers: dict[str, str] | None = None
) -> ErrorAnswer:
    """The answer, its metric counted (the names stay literal where the answers are
    decided: tests/infrastructure reads them from the code for the dashboard's catalog)."""
    count(metric)
    return ErrorAnswer(status, metric, message, errors, headers)


def count(metric: str) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)


def proxy_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """An API Gateway (REST) proxy response with a JSON body, as Powertools' REST
    resolver builds it: compact JSON, headers as multiValueHeaders."""
    multi = {name: [value] for name, value in (headers or {}).items()}
    return {
        "statusCode": status,
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
        "multiValueHeaders": {**multi, "Content-Type": [JSON]},
    }


@dataclass(frozen=True)
class Refusal:
    """An answer decided before routing."""

    status: int
    message: str
    errors: list[str]


def not_an_api_event(event: object) -> Refusal | None:
    """An event that is not an API Gateway proxy event (a test invoke, an EventBridge event
    sent to the wrong function) is refused cleanly instead of failing inside routing."""
    if (
        isinstance(event, Mapping)
        and isinstance(event.get("httpMethod"), str)
        and isinstance(event.get("path"), str)
        and isinstance(event.get("requestContext"), Mapping)
    ):
        return None
    return Refusal(400, "The request is invalid", ["not an API Gateway proxy event"])
