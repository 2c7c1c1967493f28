"""One conversation's trail: every log line the functions wrote about it, in order, with
each step's function, outcome and reason.

    python scripts/trail.py CONVERSATION_ID --stack participant-attributes-dev [--hours 24]
    python scripts/trail.py CONVERSATION_ID --logs FILE     # JSON log lines; - for stdin

The handlers put `conversationId` and `correlation_id` on every line of an invocation
(attribute_bridge/handling.py). The trail is the lines of the conversation, plus the lines
of the correlation ids those carry (an API request, a step that failed before it could
read the conversation id). With --stack it runs a CloudWatch Logs Insights query over the
stack's function log groups (the stack's saved queries ConversationTrailQuery and
CorrelationTrailQuery filter the same way); with --logs it reads local logs, e.g. the
stderr of `python -m localdev pipeline`. Exit status: 0 found, 1 nothing found, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol, TextIO

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
QUERY_LIMIT = 10000  # Logs Insights' maximum
Record = dict[str, Any]


def conversation_filter(conversation_id: str) -> str:
    return f'filter conversationId = "{conversation_id}"'


def correlation_filter(correlation_ids: Iterable[str]) -> str:
    quoted = ", ".join(json.dumps(value) for value in sorted(correlation_ids))
    return f"filter correlation_id in [{quoted}]"


def insights_query(filter_clause: str) -> str:
    clauses = ("fields @timestamp, @message", filter_clause, "sort @timestamp asc")
    return "\n| ".join([*clauses, f"limit {QUERY_LIMIT}"])


class LogSource(Protocol):
    def records(self, filter_clause: str) -> Iterable[Record]:
        """Log records (parsed JSON lines) that may match `filter_clause`; the caller
        filters again, so a source may answer more than asked."""


@dataclass(frozen=True)
class Step:
    timestamp: str
    function: str
    level: str
    message: str
    outcome: str
    reason: str
    correlation_id: str

    def line(self) -> str:
        what = self.outcome or self.level.lower()
        detail = self.reason or ("" if self.message == "Step done" else self.message)
        return "  ".join(
            part for part in (self.timestamp, f"{self.function:<26}", f"{what:<13}", detail) if part
        ).rstrip()


def trail(conversation_id: str, source: LogSource) -> list[Step]:
    """The conversation's lines and those of the correlation ids they carry, in order."""
    wanted = conversation_id.lower()
    found: dict[tuple[str, str, str, str], Record] = {}

    def keep(records: Iterable[Record], match: Callable[[Record], bool]) -> None:
        for record in records:
            if match(record):
                key = (
                    str(record.get("timestamp", "")),
                    str(record.get("function_request_id", "")),
                    str(record.get("message", "")),
                    str(record.get("outcome", "")),
                )
                found.setdefault(key, record)

    keep(
        source.records(conversation_filter(wanted)),
        lambda r: str(r.get("conversationId", "")).lower() == wanted,
    )
    correlation_ids = {str(r["correlation_id"]) for r in found.values() if r.get("correlation_id")}
    if correlation_ids:
        keep(
            source.records(correlation_filter(correlation_ids)),
            lambda r: str(r.get("correlation_id", "")) in correlation_ids,
        )
    ordered = sorted(found.values(), key=lambda r: str(r.get("timestamp", "")))
    return [_step(record) for record in ordered]


def _step(record: Record) -> Step:
    outcome = record.get("outcome")
    return Step(
        timestamp=str(record.get("timestamp", "")),
        function=str(record.get("function_name") or record.get("service") or "?"),
        level=str(record.get("level", "")),
        message=str(record.get("message", "")),
        outcome=str(outcome) if outcome else "",
        reason=str(record.get("reason") or record.get("error") or ""),
        correlation_id=str(record.get("correlation_id") or ""),
    )


def parse_lines(lines: Iterable[str]) -> Iterator[Record]:
    """The JSON log records among `lines` (metrics blobs and other output are skipped)."""
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "_aws" not in record and "message" in record:
            yield record


class LocalLogs:
    """JSON log lines read once from a file or stdin."""

    def __init__(self, stream: TextIO) -> None:
        self._records = list(parse_lines(stream))

    def records(self, filter_clause: str) -> Iterable[Record]:
        return self._records


class CloudWatchLogs:
    """Logs Insights over the given log groups, between `start` and `end` (epoch s)."""

    def __init__(
        self,
        client: Any,
        log_groups: list[str],
        start: int,
        end: int,
        sleep: Callable[[float], None] = time.sleep,
        timeout_seconds: float = 120,
    ) -> None:
        self._client = client
        self._log_groups = log_groups
        self._start, self._end = start, end
        self._sleep = sleep
        self._timeout = timeout_seconds

    def records(self, filter_clause: str) -> Iterable[Record]:
        query_id = self._client.start_query(
            logGroupNames=self._log_groups,
            startTime=self._start,
            endTime=self._end,
            queryString=insights_query(filter_clause),
            limit=QUERY_LIMIT,
        )["queryId"]
        waited = 0.0
        while True:
            answer = self._client.get_query_results(queryId=query_id)
            status = answer["status"]
            if status == "Complete":
                break
            if status in ("Failed", "Cancelled", "Timeout", "Unknown"):
                raise RuntimeError(f"the Logs Insights query ended {status}")
            if waited >= self._timeout:
                raise RuntimeError(f"the Logs Insights query is still {status}")
            self._sleep(1.0)
            waited += 1.0
        messages = (
            next((f["value"] for f in row if f["field"] == "@message"), "")
            for row in answer["results"]
        )
        return list(parse_lines(messages))


def stack_log_groups(cloudformation: Any, stack: str) -> list[str]:
    """The stack's function log groups (/aws/lambda/...)."""
    paginator = cloudformation.get_paginator("list_stack_resources")
    return sorted(
        resource["PhysicalResourceId"]
        for page in paginator.paginate(StackName=stack)
        for resource in page["StackResourceSummaries"]
        if resource["ResourceType"] == "AWS::Logs::LogGroup"
        and resource.get("PhysicalResourceId", "").startswith("/aws/lambda/")
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line and exit status 2, like every usage error here."""
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def main(
    argv: list[str] | None = None,
    stdin: TextIO | None = None,
    aws: Callable[[str], Any] | None = None,
) -> int:
    parser = _Parser(prog="trail.py", description=__doc__.splitlines()[0])
    parser.add_argument("conversation_id")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed stack's name")
    where.add_argument("--logs", help="a file of JSON log lines, or - for stdin")
    parser.add_argument("--hours", type=float, default=24.0, help="how far back (--stack)")
    parser.add_argument("--region", help="AWS region (--stack; default: the AWS config's)")
    args = parser.parse_args(argv)
    if not UUID.match(args.conversation_id):
        parser.error(f"CONVERSATION_ID must be a UUID, got {args.conversation_id!r:.60}")
    if args.hours <= 0:
        parser.error("--hours must be > 0")
    source: LogSource
    if args.logs is not None:
        if args.logs == "-":
            source = LocalLogs(stdin or sys.stdin)
        else:
            try:
                with Path(args.logs).open(encoding="utf-8", errors="replace") as stream:
                    source = LocalLogs(stream)
            except OSError as error:
                parser.error(f"cannot read --logs {args.logs}: {error.strerror}")
        where_text = args.logs
    else:
        where_text = f"stack {args.stack}, last {args.hours:g} h"
    try:
        if args.stack is not None:
            client = aws or _boto3_client(args.region)
            groups = stack_log_groups(client("cloudformation"), args.stack)
            if not groups:
                print(f"trail.py: stack {args.stack} has no function log groups", file=sys.stderr)
                return 1
            end = int(time.time()) + 1  # whole seconds: a line logged this second is in
            source = CloudWatchLogs(client("logs"), groups, end - int(args.hours * 3600), end)
        steps = trail(args.conversation_id, source)
    except Exception as error:
        # AWS refusing (no credentials, no such stack, access denied): one line, not a trace.
        if not type(error).__module__.startswith("botocore") and not isinstance(
            error, RuntimeError
        ):
            raise
        print(f"trail.py: cannot read {where_text}: {error}", file=sys.stderr)
        return 1
    if not steps:
        print(
            f"trail.py: no log line about conversation {args.conversation_id.lower()} "
            f"in {where_text}",
            file=sys.stderr,
        )
        return 1
    correlations = sorted({step.correlation_id for step in steps if step.correlation_id})
    print(f"conversation {args.conversation_id.lower()}; correlation ids {', '.join(correlations)}")
    for step in steps:
        print(step.line())
    return 0


def _boto3_client(region: str | None) -> Callable[[str], Any]:
    import boto3

    session = boto3.session.Session(region_name=region)
    return lambda service: session.client(service)


if __name__ == "__main__":
    sys.exit(main())
