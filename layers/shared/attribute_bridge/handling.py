"""What every event handler does around its step: correlation id, time budget, outcome
metrics, and the mapping of typed errors to retry, dead-letter or drop.

- bad input (InvalidInput): one error log line, metric Rejected, sent to the function's
  dead-letter queue with the reason (retrying cannot help), handler returns normally;
- rate limited / conflict / unavailable (retryable): metric, log, re-raised so Lambda
  retries the event and finally dead-letters it (EventInvokeConfig OnFailure);
- a configuration error (a Genesys 403: the OAuth client's roles or divisions; an
  external URL that is not https): metrics Failed and ConfigurationError, one log line
  saying what to check, dead-lettered at once (retrying cannot fix it), returned;
- other errors we understand (credentials refused, Genesys 400, external 4xx): metric
  Failed, dead-lettered with the reason, returned;
- anything unexpected: metric Failed, logged with its stack, re-raised.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from attribute_bridge.budget import Budget
from attribute_bridge.errors import (
    BridgeError,
    ConfigurationError,
    Conflict,
    InvalidInput,
    RateLimited,
)
from attribute_bridge.events import correlation_id_of, without_other_attributes
from attribute_bridge.write_rules import NameList

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
        ("refused", "Refused"),
        ("stale", "Stale"),
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
    budget = Budget.from_context(context)

    def count(metric: str) -> None:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)

    try:
        result = step(budget)
    except InvalidInput as error:
        count("Rejected")
        logger.error("Rejected bad input", extra={"reason": str(error), "errors": error.errors})
        return _dead_letter(event, function, "rejected", error, correlation_id, logger, context)
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
    except ConfigurationError as error:
        count("Failed")
        count("ConfigurationError")
        logger.error(
            "Configuration error; dead-lettered (fix the configuration, then replay)",
            extra={"error": str(error)},
        )
        return _dead_letter(event, function, "failed", error, correlation_id, logger, context)
    except BridgeError as error:
        count("Failed")
        if error.retryable:
            logger.error("Step failed; retrying later", extra={"error": str(error)})
            raise
        logger.error("Step failed; dead-lettered", extra={"error": str(error)})
        return _dead_letter(event, function, "failed", error, correlation_id, logger, context)
    except Exception:
        count("Failed")
        logger.exception("Unexpected failure; retrying later")
        raise
    count(OUTCOME_METRICS.get(result["outcome"], "Other"))
    _report_refusals(result, logger, metrics)
    logger.info("Step done", extra={k: v for k, v in result.items() if k != "attributes"})
    return result


def _report_refusals(result: dict[str, Any], logger: Logger, metrics: Metrics) -> None:
    """Keys the write rules refused (names and reasons, never values), and best-effort
    work that failed after a write: a log line and a metric each."""
    refused: dict[str, str] = result.get("refused") or {}
    stale = sum(1 for reason in refused.values() if reason == "stale")
    if stale:
        metrics.add_metric(name="StaleSkipped", unit=MetricUnit.Count, value=stale)
    if len(refused) > stale:
        metrics.add_metric(
            name="AttributeRefused", unit=MetricUnit.Count, value=len(refused) - stale
        )
    if refused:
        logger.warning("Keys not written", extra={"refused": refused})
    for warning in result.get("warnings") or []:
        metrics.add_metric(name="AfterWriteFailed", unit=MetricUnit.Count, value=1)
        logger.warning("Best-effort step after the write failed", extra={"warning": warning})


def best_effort(what: str, metric: str, side_effect: Callable[[], Any], logger: Logger) -> bool:
    """A side effect after the step's write (the audit event after a PATCH): its failure is
    logged and counted, never raised, because Lambda's retry would redo the write."""
    try:
        side_effect()
    except Exception as error:  # whatever failed, the write stands
        Metrics().add_metric(name=metric, unit=MetricUnit.Count, value=1)
        logger.error(
            f"{what} failed after the write; not retried",
            extra={"error": f"{type(error).__name__}: {error}"[:300]},
        )
        return False
    return True


def _dead_letter(
    event: Any,
    function: str,
    outcome: str,
    error: Exception,
    correlation_id: str | None,
    logger: Logger,
    context: Any,
) -> dict[str, Any]:
    from attribute_bridge import wiring

    # Only the keys the next step needs of the customer's attributes, as in app events.
    try:
        settings = wiring.current_settings()
        keep = settings.sync_inputs | settings.writable_attributes
    except BridgeError:  # the configuration itself is wrong: keep no attribute
        keep = NameList()
    kept = without_other_attributes(event, keep)
    function_arn = getattr(context, "invoked_function_arn", None)
    wiring.dead_letters().send(
        kept, function, outcome, str(error), correlation_id, function_arn=function_arn
    )
    logger.info("Sent to the dead-letter queue", extra={"outcome": outcome})
    errors = getattr(error, "errors", [str(error)])
    return {"outcome": outcome, "error": str(error), "errors": errors}


# What makes two deliveries "the same delivery" (the idempotency key, hashed by Powertools).
#
# The app's own events (Fetched, Resolved, UpdateRequested, SyncRequested): the EventBridge
# envelope `id`. It is kept across EventBridge's delivery retries and Lambda's asynchronous
# retries, and every PutEvents entry gets a new one: open -> closed -> open are three
# events, however alike their details.
APP_EVENT_KEY = "id"
# Genesys events: Genesys queues and redelivers for up to 4 days (GENESYS.md), and each
# redelivery is a new PutEvents: a new envelope `id`, `time` and `detail.timestamp`. What
# it resends as it was is the event: the concrete topic and `eventBody`, which holds
# `eventTime` (when the conversation changed) and the ids. Assumed stable: `topicName` and
# `eventBody`. Left out: `metadata.CorrelationId`, which nothing documents as stable
# across redeliveries (the real sample has one per event; whether a redelivery keeps it is
# unknown) and which adds nothing to `eventBody`'s identity: if it changed, the same event
# would be done twice. An event without `eventBody` (a sync request, bad input) is keyed
# on its envelope `id`.
CONVERSATION_EVENT_KEY = "detail.eventBody && [detail.topicName, detail.eventBody] || id"


def idempotent_on(key_path: str, expires_after_seconds: int) -> Callable[[Handler], Handler]:
    """Powertools Idempotency (DynamoDB, table from IDEMPOTENCY_TABLE), built on the first
    call so that importing a handler does not import boto3. Keyed on a hash of what
    `key_path` (APP_EVENT_KEY or CONVERSATION_EVENT_KEY) selects: a redelivered event does
    nothing twice, a new event with the same content does its work."""

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
    _count_metric("Duplicate")
    Logger(child=True).info("Duplicate delivery: returning the first result")
    return response


def _count_metric(name: str) -> None:
    Metrics().add_metric(name=name, unit=MetricUnit.Count, value=1)


SAVE_SUCCESS_ATTEMPTS = 2


def _persistence_layer(table: str) -> Any:
    """Powertools' DynamoDB layer, except that a failed save_success is not an error.

    Powertools writes the record INPROGRESS (PutItem), runs the handler, then marks it
    COMPLETED (UpdateItem); when that UpdateItem fails it raises, Lambda retries, and the
    retry (once the in-progress window has passed) does the whole step again: a second
    CRM call, a second Resolved, a second PATCH. The step's work is done by then, so the
    failure is logged and counted (IdempotencyRecordNotSaved) and the result returned.
    What is left is the INPROGRESS record: a duplicate delivery within its window is
    told "in progress" and retried by Lambda later."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from attribute_bridge.aws import aws_client

    class DoneIsDone(DynamoDBPersistenceLayer):
        def save_success(self, data: dict[str, Any], result: dict[str, Any]) -> None:
            failure: Exception | None = None
            for _attempt in range(SAVE_SUCCESS_ATTEMPTS):
                try:
                    super().save_success(data=data, result=result)
                    return
                except Exception as error:  # any store failure: same answer
                    failure = error
            _count_metric("IdempotencyRecordNotSaved")
            Logger(child=True).error(
                "Step done, but its idempotency record could not be completed; "
                "not retried (a retry would do the work again)",
                extra={"error": f"{type(failure).__name__}: {failure}"[:300]},
            )

    return DoneIsDone(table_name=table, boto3_client=aws_client("dynamodb"))


def _build_idempotent(handler: Handler, key_path: str, expires_after_seconds: int) -> Handler:
    table = os.environ.get("IDEMPOTENCY_TABLE", "")
    if not table:
        raise RuntimeError("IDEMPOTENCY_TABLE is not set")
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
    )

    persistence = _persistence_layer(table)
    config = IdempotencyConfig(
        event_key_jmespath=key_path,
        expires_after_seconds=expires_after_seconds,
        raise_on_no_idempotency_key=False,  # bad input is rejected by the step, clearly
        response_hook=_count_duplicate,
    )
    wrapped: Handler = idempotent(persistence_store=persistence, config=config)(handler)

    def run(event: Any, context: Any) -> Any:
        try:
            result = wrapped(event, context)
        except IdempotencyAlreadyInProgressError:
            # Another invocation holds this delivery (a concurrent duplicate), or one was
            # cut off (a timeout) and its in-progress window has not passed yet: Lambda
            # retries this one later, when it either finds the result or may run it.
            _count_metric("DuplicateInProgress")
            Logger(child=True).warning("The same delivery is in progress; retrying later")
            raise
        except IdempotencyPersistenceLayerError as error:
            _count_metric("IdempotencyStoreFailed")
            Logger(child=True).error(
                "Idempotency store failed; retrying later",
                extra={"error": str(error)[:300]},
            )
            raise
        if isinstance(result, dict) and result.get("outcome") in DEAD_LETTERED_OUTCOMES:
            # A dead-lettered event is not done: replaying it once its cause is fixed (the
            # external system's credentials, say) must run it again, not answer the stored
            # failure and drop the event, now out of its queue.
            persistence.delete_record(data=event, exception=DeadLettered(result["outcome"]))
        return result

    return run


DEAD_LETTERED_OUTCOMES = frozenset({"rejected", "failed"})


class DeadLettered(Exception):
    """Why an idempotency record was deleted after the handler returned."""
