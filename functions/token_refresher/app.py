"""TokenRefresher: on a schedule (and on demand) mint the Genesys token ahead of expiry
and write it to SSM. The only writer in steady state; readers mint only under a lease."""

from __future__ import annotations

from typing import Any

from attribute_bridge import wiring
from attribute_bridge.budget import Budget
from attribute_bridge.handling import handle
from attribute_bridge.observability import traced
from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    def step(budget: Budget) -> dict[str, Any]:
        # {"force": true} (an on-demand invoke) mints even when the token is still fresh,
        # e.g. after rotating the client secret.
        force = isinstance(event, dict) and event.get("force") is True
        minted, token = wiring.token_store().refresh(budget, force=force)
        return {
            "outcome": "token_minted" if minted else "token_fresh",
            "expiresAt": token.expires_at,
        }

    return handle(
        event, context, function="TokenRefresher", logger=logger, metrics=metrics, step=step
    )
