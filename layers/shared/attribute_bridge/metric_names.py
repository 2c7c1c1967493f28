"""Every metric the code emits, in one place: the operations dashboard is generated from
this catalog (scripts/dashboard.py) and a test fails when the code emits a name that is
not here (tests/infrastructure/test_operations.py), so a new metric cannot be forgotten.

Dimensions (Powertools EMF, namespace POWERTOOLS_METRICS_NAMESPACE):
- an event handler's metrics carry `service` and `function` (the name its handler passes
  to `handling.handle`), so that outcomes can be told apart per function;
- the API's metrics, and the Duplicate count (emitted before a handler runs), carry
  `service` only: SERVICE_WIDE below.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools import Metrics

# Event handlers: the `function` dimension value (what the handler passes to
# handling.handle) -> its template resources; a function without a dead-letter queue has
# queue None. Each gets its panels on the dashboard (`make dashboard`).
FUNCTIONS: dict[str, dict[str, str | None]] = {
    "FetchAttributes": {"function": "FetchAttributesFunction", "queue": "FetchAttributesDLQ"},
    "SyncExternal": {"function": "SyncExternalFunction", "queue": "SyncExternalDLQ"},
    "PatchAttributes": {"function": "PatchAttributesFunction", "queue": "PatchAttributesDLQ"},
    "TokenRefresher": {"function": "TokenRefresherFunction", "queue": "TokenRefresherDLQ"},
    # invoked synchronously by a Genesys data action: no event to dead-letter
    "ResolveAttributes": {"function": "ResolveAttributesFunction", "queue": None},
}
# Metrics with the `service` dimension only: the API's, and what is counted before a
# handler has said which function it is.
SERVICE_WIDE = "AttributesApi"
API_FUNCTION = "AttributesApiFunction"
RESOLVE = "ResolveAttributes"
HANDLERS = tuple(name for name in FUNCTIONS if name != RESOLVE)  # through handling.handle
GENESYS_CALLERS = ("FetchAttributes", "PatchAttributes", SERVICE_WIDE)

# ---- step outcomes (handling.handle counts one per invocation)
FETCHED = "Fetched"
SYNCED = "Synced"
NO_CHANGE = "NoChange"
PATCHED = "Patched"
DROPPED = "Dropped"
NOT_FOUND = "NotFound"
REJECTED = "Rejected"
FAILED = "Failed"
RATE_LIMITED = "RateLimited"
CONFLICT = "Conflict"
DEAD_LETTERED = "DeadLettered"
# metric names, not secrets (the linters read "TOKEN_" as a password)
TOKEN_FRESH = "TokenFresh"  # noqa: S105  # nosec B105
TOKEN_MINTED = "TokenMinted"  # noqa: S105  # nosec B105
OTHER_OUTCOME = "Other"
DUPLICATE = "Duplicate"
REFUSED = "Refused"
STALE = "Stale"
CONFIGURATION_ERROR = "ConfigurationError"
# ---- the write rules (write_rules.py), per key
ATTRIBUTE_REFUSED = "AttributeRefused"
STALE_SKIPPED = "StaleSkipped"
AFTER_WRITE_FAILED = "AfterWriteFailed"
AUDIT_PUBLISH_FAILED = "AuditPublishFailed"
# ---- SyncExternal
SYNC_CAP_REACHED = "SyncCapReached"
# ---- idempotency (handling.py)
IDEMPOTENCY_RECORD_NOT_SAVED = "IdempotencyRecordNotSaved"
DUPLICATE_IN_PROGRESS = "DuplicateInProgress"
IDEMPOTENCY_STORE_FAILED = "IdempotencyStoreFailed"
# ---- ResolveAttributes (the Lambda data action) and POST /resolve
RESOLVED = "Resolved"
RESOLVE_FAILED = "ResolveFailed"
RESOLVE_WRITTEN = "ResolveWritten"
RESOLVE_WRITE_FAILED = "ResolveWriteFailed"
RESOLVE_INPUT_IGNORED = "ResolveInputIgnored"
EXTERNAL_VALUE_REJECTED = "ExternalValueRejected"
PUBLISH_FAILED = "PublishFailed"
PUBLISH_SKIPPED = "PublishSkipped"
API_RESOLVED = "ApiResolved"
API_RESOLVE_FAILED = "ApiResolveFailed"
# ---- AttributesApi
API_READ = "ApiRead"
API_PATCHED = "ApiPatched"
API_PATCH_QUEUED = "ApiPatchQueued"
API_SYNC_REQUESTED = "ApiSyncRequested"
# ---- Genesys Cloud calls (genesys/client.py, one per HTTP answer)
GENESYS_REQUEST = "GenesysRequest"
GENESYS_RATE_LIMITED = "GenesysRateLimited"
GENESYS_RATE_LIMIT_HEADROOM = "GenesysRateLimitHeadroom"
GENESYS_PACED = "GenesysPaced"
# ---- the external system (external.py, one per attempt)
EXTERNAL_CALL = "ExternalCall"
EXTERNAL_FAILURE = "ExternalFailure"
EXTERNAL_LATENCY = "ExternalLatency"


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str  # a Powertools MetricUnit value
    stat: str  # how the dashboard aggregates it
    panel: str  # the dashboard panel it is drawn on
    sources: tuple[str, ...]  # FUNCTIONS keys, or SERVICE_WIDE
    meaning: str


def _outcome(name: str, meaning: str, *extra: str) -> Metric:
    return Metric(name, "Count", "Sum", "outcomes", (*HANDLERS, *extra), meaning)


CATALOG: tuple[Metric, ...] = (
    _outcome(FETCHED, "attributes read from Genesys and emitted"),
    _outcome(SYNCED, "the external system answered changes"),
    _outcome(NO_CHANGE, "nothing to write"),
    _outcome(PATCHED, "attributes written to Genesys"),
    _outcome(DROPPED, "event ignored on purpose (too old, media not handled, ended...)"),
    _outcome(NOT_FOUND, "the conversation or participant is unknown", SERVICE_WIDE),
    _outcome(REJECTED, "bad input, dead-lettered (API: answered 4xx)", SERVICE_WIDE),
    _outcome(FAILED, "a step failed (retried, then dead-lettered)", SERVICE_WIDE),
    _outcome(RATE_LIMITED, "Genesys rate limit outlasted the invocation", SERVICE_WIDE),
    _outcome(CONFLICT, "Genesys kept answering 409", SERVICE_WIDE),
    _outcome(DEAD_LETTERED, "outcome dead_lettered"),
    _outcome(TOKEN_FRESH, "the stored token was still fresh"),
    _outcome(TOKEN_MINTED, "a new Genesys token was minted"),
    _outcome(OTHER_OUTCOME, "a step answered an outcome without a metric"),
    _outcome(REFUSED, "the write rules refused every key (key, value or purpose)", SERVICE_WIDE),
    _outcome(STALE, "every key changed since the read the write is based on"),
    _outcome(CONFIGURATION_ERROR, "set up wrong (URL, role, divisions, lists): dead-lettered"),
    Metric(DUPLICATE, "Count", "Sum", "outcomes", (SERVICE_WIDE,), "redelivered event"),
    Metric(
        ATTRIBUTE_REFUSED,
        "Count",
        "Sum",
        "writes",
        ("SyncExternal", "PatchAttributes"),
        "keys the write rules refused (not writable, invalid, purpose)",
    ),
    Metric(
        STALE_SKIPPED,
        "Count",
        "Sum",
        "writes",
        ("PatchAttributes",),
        "keys not written: changed since the read the write is based on",
    ),
    Metric(
        AFTER_WRITE_FAILED,
        "Count",
        "Sum",
        "writes",
        ("PatchAttributes",),
        "recording a write in ConversationStateTable failed (the write stands)",
    ),
    Metric(
        AUDIT_PUBLISH_FAILED,
        "Count",
        "Sum",
        "writes",
        ("PatchAttributes",),
        "the Patched audit event could not be published (the write stands)",
    ),
    Metric(
        SYNC_CAP_REACHED,
        "Count",
        "Sum",
        "writes",
        ("SyncExternal",),
        "MaxSyncsPerConversation stopped a sync: a loop that escaped",
    ),
    Metric(
        IDEMPOTENCY_RECORD_NOT_SAVED,
        "Count",
        "Sum",
        "outcomes",
        HANDLERS[:3],
        "the step's work is done but its idempotency record was not saved",
    ),
    Metric(
        DUPLICATE_IN_PROGRESS,
        "Count",
        "Sum",
        "outcomes",
        HANDLERS[:3],
        "the same delivery is in progress elsewhere: retried later",
    ),
    Metric(
        IDEMPOTENCY_STORE_FAILED,
        "Count",
        "Sum",
        "outcomes",
        HANDLERS[:3],
        "the idempotency table failed before the step: retried",
    ),
    *(
        Metric(name, "Count", "Sum", "outcomes", (RESOLVE,), meaning)
        for name, meaning in (
            (RESOLVED, "a data action answered the external system's answer"),
            (RESOLVE_FAILED, "a data action answered a failure (or raised: Failure path)"),
            (RESOLVE_WRITTEN, "a data action wrote the answer through the write rules"),
            (RESOLVE_WRITE_FAILED, "a data action's write failed (the answer still came)"),
            (RESOLVE_INPUT_IGNORED, "input fields not on the allow-lists, ignored"),
            (EXTERNAL_VALUE_REJECTED, "answer values refused by key (mapping, write rules)"),
            (PUBLISH_FAILED, "the Patched audit event of a data action's write failed"),
            (PUBLISH_SKIPPED, "no time left for the audit event of a data action's write"),
        )
    ),
    Metric(API_RESOLVED, "Count", "Sum", "api", (SERVICE_WIDE,), "POST /resolve answered"),
    Metric(API_RESOLVE_FAILED, "Count", "Sum", "api", (SERVICE_WIDE,), "POST /resolve failed"),
    Metric(API_READ, "Count", "Sum", "api", (SERVICE_WIDE,), "GET answered"),
    Metric(API_PATCHED, "Count", "Sum", "api", (SERVICE_WIDE,), "PATCH written"),
    Metric(API_PATCH_QUEUED, "Count", "Sum", "api", (SERVICE_WIDE,), "PATCH queued (async)"),
    Metric(API_SYNC_REQUESTED, "Count", "Sum", "api", (SERVICE_WIDE,), "sync queued"),
    Metric(
        GENESYS_REQUEST, "Count", "Sum", "genesys", GENESYS_CALLERS, "HTTP answers from Genesys"
    ),
    Metric(
        GENESYS_RATE_LIMITED, "Count", "Sum", "genesys", GENESYS_CALLERS, "429 answers (retried)"
    ),
    Metric(
        GENESYS_RATE_LIMIT_HEADROOM,
        "Count",
        "Minimum",
        "genesys",
        GENESYS_CALLERS,
        "inin-ratelimit-allowed minus inin-ratelimit-count: requests left in the window",
    ),
    Metric(
        GENESYS_PACED,
        "Count",
        "Sum",
        "genesys",
        GENESYS_CALLERS,
        "requests held back before sending, headroom low (rate-limit headers): waited or retried",
    ),
    Metric(EXTERNAL_CALL, "Count", "Sum", "external", ("SyncExternal",), "attempts"),
    Metric(
        EXTERNAL_FAILURE,
        "Count",
        "Sum",
        "external",
        ("SyncExternal",),
        "attempts that failed (timeout, connection, or not 2xx)",
    ),
    Metric(
        EXTERNAL_LATENCY,
        "Milliseconds",
        "p99",
        "external",
        ("SyncExternal",),
        "time of one attempt",
    ),
)
BY_NAME: dict[str, Metric] = {metric.name: metric for metric in CATALOG}


def emit(name: str, value: float = 1, unit: str = "Count") -> None:
    """Add a metric to the invocation's set (Powertools keeps one set per process; the
    handler's `log_metrics` prints it when the invocation ends)."""
    Metrics().add_metric(name=name, unit=unit, value=value)
