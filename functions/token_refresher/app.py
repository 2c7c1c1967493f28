"""TokenRefresher: mint the Genesys token ahead of expiry and write it to SSM: on a
schedule, on demand, and when a function finds no usable token and invokes it. The only
function that may read the client secret; its reserved concurrency of 1 makes every mint
single-flight."""

from __future__ import annotations

from typing import Any

from attribute_bridge import wiring
from attribute_bridge.budget import Budget
from attribute_bridge.errors import InvalidInput
from attribute_bridge.handling import handle
from attribute_bridge.observability import traced
from attribute_bridge.token_store import refresh_each
from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    def step(budget: Budget) -> dict[str, Any]:
        request = event if isinstance(event, dict) else {}
        # {"force": true} (an on-demand invoke) mints even when the token is still fresh,
        # e.g. after rotating the client secret. A function's invoke names its client and,
        # after a 401, the fingerprint of the token Genesys refused ("rejected").
        force = request.get("force") is True
        rejected = request.get("rejected") if isinstance(request.get("rejected"), str) else None
        client = request.get("client")
        clients = wiring.minting_clients()
        if isinstance(client, str) and client not in clients:
            raise InvalidInput(f"no Genesys OAuth client {client!r} here", ["client"])
        return refresh_each(
            (client,) if isinstance(client, str) else clients,
            wiring.minting_store,
            budget,
            force=force,
            rejected=rejected,
        )

    return handle(
        event, context, function="TokenRefresher", logger=logger, metrics=metrics, step=step
    )
