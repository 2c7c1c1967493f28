"""Scenario 5: N cold containers find no token at once. How many tokens are minted, and
how long until each has one: the DynamoDB lease (every container holds the client secret;
the lease holder mints, the others poll SSM) against the deployed design (no container
holds the secret; each invokes TokenRefresher, whose reserved concurrency of 1 lets one
invocation mint while the other invokes are throttled and poll SSM).

Both run against the same local parts: moto's SSM and DynamoDB (atomic conditional
writes), the Genesys emulator's token endpoint over HTTP, and, for the refresher, its real
handler run in-process by the sandbox (LocalTokenRefresher: one at a time, the next
throttled). A Lambda invoke's own latency (~10-30 ms in one region) is not modelled.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from benchmarks.common import Report, median, millis, quiet, table, target

REFRESHER, FETCH = "TokenRefresherFunction", "FetchAttributesFunction"
LEASE_TABLE = "BenchTokenLease"


def run_token_mint(readers: int, trials: int = 3) -> Report:
    from attribute_bridge import aws as aws_adapters

    from localdev.sandbox import sandbox

    began = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {"lease": [], "refresher": []}
    with quiet(), sandbox() as box:
        aws_adapters.aws_client("dynamodb").create_table(
            TableName=LEASE_TABLE,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ssm_reads = _count_ssm_reads(aws_adapters.aws_client("ssm"))
        for _ in range(trials):
            for mode in ("lease", "refresher"):
                results[mode].append(_race(box, mode, readers, ssm_reads))
    return _report(readers, trials, results, time.perf_counter() - began)


def _count_ssm_reads(client: Any) -> dict[str, int]:
    counts = {"reads": 0}
    lock = threading.Lock()

    def count(**_: Any) -> None:
        with lock:
            counts["reads"] += 1

    client.meta.events.register("provide-client-params.ssm.GetParameter", count)
    return counts


def _store(box: Any, mode: str) -> Any:
    """One cold container's TokenStore, with its own SSM cache and HTTP session."""
    import requests
    from attribute_bridge.aws import ParameterStore, TokenLease
    from attribute_bridge.genesys.endpoints import resolve_endpoints
    from attribute_bridge.token_store import ClientCredentialsMinter, TokenSettings, TokenStore

    token_parameter = box.environment(FETCH)["GENESYS_TOKEN_PARAMETER"]
    settings = TokenSettings(parameter_name=token_parameter)
    parameters = ParameterStore()
    if mode == "refresher":
        return TokenStore(settings, parameters=parameters, refresher=box.token_refresher)
    credentials = box.environment(REFRESHER)  # the older design: every reader held them
    return TokenStore(
        settings,
        parameters=parameters,
        lease=TokenLease(LEASE_TABLE),
        minter=ClientCredentialsMinter(
            resolve_endpoints(box.emulator.base_url).login_url,
            parameters,
            credentials["GENESYS_CLIENT_ID_PARAMETER"],
            credentials["GENESYS_CLIENT_SECRET_PARAMETER"],
            requests.Session(),
        ),
    )


def _race(box: Any, mode: str, readers: int, ssm_reads: dict[str, int]) -> dict[str, Any]:
    from attribute_bridge import aws as aws_adapters
    from attribute_bridge.budget import Budget

    ssm = aws_adapters.aws_client("ssm")
    token_parameter = box.environment(FETCH)["GENESYS_TOKEN_PARAMETER"]
    with contextlib.suppress(ssm.exceptions.ParameterNotFound):
        ssm.delete_parameter(Name=token_parameter)  # every container starts with none
    stores = [_store(box, mode) for _ in range(readers)]
    refresher = box.token_refresher
    invocations, throttled = refresher.invocations, refresher.throttled
    minted_before = box.emulator.counters()["tokens_minted"]
    reads_before = ssm_reads["reads"]
    start = threading.Barrier(readers + 1)
    waited: list[float] = []
    tokens: set[str] = set()
    errors: list[str] = []
    lock = threading.Lock()

    def run(store: Any) -> None:
        start.wait()
        began = time.perf_counter()
        try:
            token = store.access_token(Budget.seconds(20))
        except Exception as error:  # counted and reported, never hidden
            with lock:
                errors.append(type(error).__name__)
            return
        with lock:
            waited.append(time.perf_counter() - began)
            tokens.add(token)

    threads = [threading.Thread(target=run, args=(store,), daemon=True) for store in stores]
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join(timeout=60)
    return {
        "mints": box.emulator.counters()["tokens_minted"] - minted_before,
        "distinct_tokens": len(tokens),
        "errors": errors,
        "first": min(waited) if waited else float("nan"),
        "median": median(waited),
        "last": max(waited) if waited else float("nan"),
        "ssm_reads": ssm_reads["reads"] - reads_before,
        "invocations": refresher.invocations - invocations,
        "throttled": refresher.throttled - throttled,
    }


def _report(
    readers: int, trials: int, results: dict[str, list[dict[str, Any]]], elapsed: float
) -> Report:
    def summary(mode: str, key: str) -> float:
        return median([run[key] for run in results[mode]])

    modes = ("lease", "refresher")
    rows: list[list[object]] = [
        ["tokens minted per race (each trial)", *[_each(results[m], "mints") for m in modes]],
        ["distinct tokens the readers got", *[_each(results[m], "distinct_tokens") for m in modes]],
        ["readers that got none", *[sum(len(r["errors"]) for r in results[m]) for m in modes]],
        [
            "first reader has a token (median of trials)",
            *[millis(summary(m, "first")) for m in modes],
        ],
        ["median reader has a token", *[millis(summary(m, "median")) for m in modes]],
        ["last reader has a token", *[millis(summary(m, "last")) for m in modes]],
        ["SSM reads per race (median)", *[f"{summary(m, 'ssm_reads'):.0f}" for m in modes]],
        [
            "refresher invocations that ran / throttled (median)",
            "-",
            f"{summary('refresher', 'invocations'):.0f} / {summary('refresher', 'throttled'):.0f}",
        ],
        ["containers able to read the client secret", str(readers), "0 (TokenRefresher only)"],
    ]
    all_once = all(run["mints"] == 1 for mode in modes for run in results[mode])
    no_errors = not any(run["errors"] for mode in modes for run in results[mode])
    return {
        "name": "token-mint",
        "title": f"Single-flight token minting ({readers} cold readers at once)",
        "command": ".venv/bin/python -m benchmarks token-mint",
        "size": readers,
        "seconds": elapsed,
        "tables": [
            table(
                f"{readers} containers with no token, {trials} trial(s) per design",
                ["measure", "DynamoDB lease (before)", "invoke TokenRefresher (deployed)"],
                rows,
            )
        ],
        "targets": [
            target(
                "tokens minted per race, both designs",
                "1",
                _each(results["refresher"], "mints"),
                all_once,
            ),
            target(
                "readers left without a token",
                "0",
                str(sum(len(r["errors"]) for m in modes for r in results[m])),
                no_errors,
            ),
        ],
        "notes": [
            "Both designs mint once: the lease by a conditional write, the refresher by its "
            "reserved concurrency. The refresher's waiters poll SSM with the same backoff "
            "(50 ms doubling to 1 s) as the lease's, so times to a token are of the same "
            "order; the difference that matters is that no reader holds the client secret.",
            "The lease table is therefore gone from the template: TokenRefresher is the only "
            "minter, and Lambda runs one invocation of it at a time (scheduled or invoked).",
            "Not modelled: the Lambda invoke's own round trip and a cold TokenRefresher "
            "(~0.5 s once, shared by all waiters).",
        ],
        "data": {"readers": readers, "trials": trials, "results": results},
    }


def _each(runs: list[dict[str, Any]], key: str) -> str:
    return ", ".join(str(run[key]) for run in runs)
