"""ResolveAttributes: a Genesys "AWS Lambda data action" called from an Architect flow
while the customer waits. Its event is the action's flat input; its return value, the
action's flat output (attribute_bridge.resolve has the contract).

Answers within ResolveBudgetSeconds. A failure it understands (bad input, the external
system down or slow, Genesys refusing) is an answer with `ok: false` and an `errorCode`
the flow branches on; only an unexpected one raises, and Architect takes Failure.
Invoked synchronously by Genesys: there is no event to retry or dead-letter.
"""

from __future__ import annotations

from typing import Any

from attribute_bridge import resolve, wiring
from attribute_bridge.events import PATCHED, patched_detail
from attribute_bridge.observability import traced
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@traced
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    correlation_id = str(getattr(context, "aws_request_id", "") or "local")
    logger.set_correlation_id(correlation_id)
    metrics.add_dimension(name="function", value="ResolveAttributes")  # the dashboard's split
    try:
        settings = wiring.current_settings()  # a broken configuration raises here
        budget = resolve.budget_for(settings, context)
        resolution = resolve.resolve(
            event,
            wiring.genesys(_conversation_id(event)),  # the pipeline's client for it
            wiring.external_system(),
            wiring.conversation_state(),
            settings,
            budget,
            correlation_id,
        )
        if resolution.written is not None:
            _publish_patched(resolution, budget)
    except Exception:
        _count("ResolveFailed")
        logger.exception("Unexpected failure; the flow takes the action's Failure path")
        raise
    _report(resolution)
    return resolution.answer()


def _conversation_id(event: Any) -> str | None:
    """The conversation the action names, only to pick its OAuth client (resolve checks it)."""
    given = event.get(resolve.CONVERSATION_ID) if isinstance(event, dict) else None
    return given if isinstance(given, str) else None


def _publish_patched(resolution: resolve.Resolution, budget: Any) -> None:
    """Audit, as PatchAttributes does. The attributes are written already: a failure here
    is logged and counted, and the flow still gets its answer."""
    if resolution.written is None:
        return
    if budget.remaining() + resolve.BUDGET_RESERVE_SECONDS < 0.05:
        _count("PublishSkipped")
        logger.warning("No time left to emit ParticipantAttributesPatched")
        return
    try:
        detail = patched_detail(resolution.written, resolution.write_refused)  # keys, no values
        wiring.publisher().publish(PATCHED, [detail])
    except Exception as error:  # botocore's or PublishFailed: never the flow's problem
        _count("PublishFailed")
        logger.error(
            "Could not emit ParticipantAttributesPatched", extra={"error": type(error).__name__}
        )


def _report(resolution: resolve.Resolution) -> None:
    """One log line and the metrics; names of keys only, never their values."""
    if resolution.ok:
        _count("Resolved")
    else:
        _count("ResolveFailed")
    if resolution.written is not None:
        _count("ResolveWritten")
    if resolution.status == "write_failed":
        _count("ResolveWriteFailed")
    if resolution.rejected:
        _count("ExternalValueRejected", len(resolution.rejected))
    if resolution.ignored:
        _count("ResolveInputIgnored", len(resolution.ignored))
    summary = {
        "status": resolution.status,
        "errorCode": resolution.error_code,
        "conversationId": resolution.conversation_id,
        "participantId": resolution.participant_id,
        "keys": sorted(resolution.attributes),
        "rejectedKeys": sorted(resolution.rejected),
        "ignoredInputs": list(resolution.ignored),
    }
    if resolution.ok:
        logger.info("Resolved", extra=summary)
    else:
        # error messages name fields and causes, not customer values
        logger.error("Resolve failed", extra={**summary, "error": resolution.error_message})


def _count(metric: str, value: int = 1) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)
