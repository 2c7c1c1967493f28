"""What every event handler does around its step: correlation id, time budget, outcome
metrics, and the mapping of typed errors to retry, dead-letter or drop.

- bad input (InvalidInput): one error log line, metric Rejected, sent to the function's
  dead-letter queue with the reason (retrying cannot help), handler returns normally;
- rate limited / conflict / unavailable (retryable): metric, log, re-raised so Lambda
  retries the event and finally dead-letters it (EventInvokeConfig OnFailure);
- other errors we understand (credentials refused, Genesys 400, external 4xx): metric
  Failed, dead-lettered with the reason, returned;
- anything unexpected: metric Failed, logged with its stack, re-raised.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from attribute_bridge.budget import Budget
from attribute_bridge.errors import BridgeError, Conflict, InvalidInput, RateLimited
from attribute_bridge.events import correlation_id_of

# metric name per outcome (pairs, not a dict literal: bandit reads "token_*" keys as passwords)
OUTCOME_METRICS = dict(
    [
        ("fetched", "Fetched"),
        ("synced", "Synced"),
        ("no_change", "NoChange"),
        ("patched", "Patched"),
        ("dropped", "Dropped"),
        ("not_found", "NotFound"),
        ("rejected", "Rejected"),
        ("dead_lettered", "DeadLettered"),
        ("token_fresh", "TokenFresh"),
        ("token_minted", "TokenMinted"),
    ]
)

Handler = Callable[[Any, Any], Any]
Step = Callable[[Budget], dict[str, Any]]


def handle(
    event: Any, context: Any, *, function: str, logger: Logger, metrics: Metrics, step: Step
) -> dict[str, Any]:
    correlation_id = correlation_id_of(event)
    logger.set_correlation_id(correlation_id)
    # Every line and metric of this invocation says which conversation and which function
    # (scripts/trail.py follows a conversation by these; the dashboard splits by function).
    logger.append_keys(conversationId=conversation_id_of(event))
    metrics.add_dimension(name="function", value=function)
    budget = Budget.from_context(context)
    try:
        return _run(event, function, logger, metrics, step, correlation_id, budget)
    finally:
        logger.remove_keys(["conversationId"])


def _run(
    event: Any,
    function: str,
    logger: Logger,
    metrics: Metrics,
    step: Step,
    correlation_id: str | None,
    budget: Budget,
) -> dict[str, Any]:

    def count(metric: str) -> None:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)

    try:
        result = step(budget)
    except InvalidInput as error:
        count("Rejected")
        logger.error("Rejected bad input", extra={"reason": str(error), "errors": error.errors})
        return _dead_letter(event, function, "rejected", error, correlation_id, logger)
    except RateLimited as error:
        count("RateLimited")
        logger.warning(
            "Genesys rate limit beyond this invocation; retrying later",
            extra={"retry_after": error.retry_after},
        )
        raise
    except Conflict:
        count("Conflict")
        logger.warning("Genesys conflict persisted; retrying later")
        raise
    except BridgeError as error:
        count("Failed")
        if error.retryable:
            logger.error("Step failed; retrying later", extra={"error": str(error)})
            raise
        logger.error("Step failed; dead-lettered", extra={"error": str(error)})
        return _dead_letter(event, function, "failed", error, correlation_id, logger)
    except Exception:
        count("Failed")
        logger.exception("Unexpected failure; retrying later")
        raise
    count(OUTCOME_METRICS.get(result["outcome"], "Other"))
    done = {"reason": ""} | {k: v for k, v in result.items() if k != "attributes"}
    logger.info("Step done", extra=done)
    return result


def _dead_letter(
    event: Any,
    function: str,
    outcome: str,
    error: Exception,
    correlation_id: str | None,
    logger: Logger,
) -> dict[str, Any]:
    from attribute_bridge import wiring

    wiring.dead_letters().send(event, function, outcome, str(error), correlation_id)
    logger.info("Sent to the dead-letter queue", extra={"outcome": outcome, "reason": str(error)})
    errors = getattr(error, "errors", [str(error)])
    return {"outcome": outcome, "error": str(error), "errors": errors}


def idempotent_on(key_path: str, expires_after_seconds: int) -> Callable[[Handler], Handler]:
    """Powertools Idempotency (DynamoDB, table from IDEMPOTENCY_TABLE), built on the first
    call so that importing a handler does not import boto3. Keyed on a hash of
    `key_path`: a redelivered event (Genesys retries for up to 4 days) does nothing twice."""

    def decorate(handler: Handler) -> Handler:
        built: Handler | None = None

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            nonlocal built
            if built is None:
                built = _build_idempotent(handler, key_path, expires_after_seconds)
            return built(event, context)

        return wrapper

    return decorate


def _count_duplicate(response: Any, idempotent_data: Any) -> Any:
    """A redelivered event: the stored result is returned and nothing is done again; say
    so (a log line and the Duplicate metric) rather than stay silent."""
    Metrics().add_metric(name="Duplicate", unit=MetricUnit.Count, value=1)
    Logger(child=True).info("Duplicate delivery: returning the first result")
    return response


def _build_idempotent(handler: Handler, key_path: str, expires_after_seconds: int) -> Handler:
    table = os.environ.get("IDEMPOTENCY_TABLE", "")
    if not table:
        raise RuntimeError("IDEMPOTENCY_TABLE is not set")
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent,
    )

    from attribute_bridge.aws import aws_client

    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=aws_client("dynamodb"))
    config = IdempotencyConfig(
        event_key_jmespath=key_path,
        expires_after_seconds=expires_after_seconds,
        raise_on_no_idempotency_key=False,  # bad input is rejected by the step, clearly
        response_hook=_count_duplicate,
    )
    wrapped: Handler = idempotent(persistence_store=persistence, config=config)(handler)

    def run(event: Any, context: Any) -> Any:
        result = wrapped(event, context)
        if isinstance(result, dict) and result.get("outcome") in DEAD_LETTERED_OUTCOMES:
            # A dead-lettered event is not done: replaying it once its cause is fixed (the
            # external system's credentials, say) must run it again, not answer the stored
            # failure and drop the event, now out of its queue.
            persistence.delete_record(data=event, exception=DeadLettered(result["outcome"]))
        return result

    return run


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def conversation_id_of(event: Any) -> str | None:
    """The event's conversation id (lower case, as Genesys compares ids), best effort and
    before validation: an app event's detail.conversationId or a Genesys event's
    detail.eventBody.conversationId. Only a UUID is logged: nothing else of the input."""
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        return None
    body = detail.get("eventBody")
    found = detail.get("conversationId")
    if found is None and isinstance(body, dict):
        found = body.get("conversationId")
    if isinstance(found, str) and _UUID.match(found.lower()):
        return found.lower()
    return None


DEAD_LETTERED_OUTCOMES = frozenset({"rejected", "failed"})


class DeadLettered(Exception):
    """Why an idempotency record was deleted after the handler returned."""
