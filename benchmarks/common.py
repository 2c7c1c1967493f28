"""What every scenario shares: paths, the report shape, statistics, sample-event builders,
environment and output helpers."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

from localdev.sandbox import environment_set

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
LAYER_SOURCE = REPO_ROOT / "layers" / "shared"
EVENTS_DIR = REPO_ROOT / "events"
WORK_DIR = Path(__file__).resolve().parent / ".work"  # git-ignored scratch space
PYTHON = sys.executable


# ---------------------------------------------------------------------------- report shape


class Table(TypedDict):
    caption: str
    columns: list[str]
    rows: list[list[str]]


class Target(TypedDict):
    what: str
    target: str
    measured: str
    met: bool


class Report(TypedDict):
    """What every `run_<name>(size)` returns."""

    name: str
    title: str
    command: str
    size: int
    seconds: float  # how long the scenario took to run
    tables: list[Table]
    targets: list[Target]
    notes: list[str]
    data: dict[str, Any]  # the raw numbers, for the smoke test and for JSON output


def table(caption: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    return {
        "caption": caption,
        "columns": list(columns),
        "rows": [[str(cell) for cell in row] for row in rows],
    }


def target(what: str, wanted: str, measured: str, met: bool) -> Target:
    return {"what": what, "target": wanted, "measured": measured, "met": bool(met)}


# ---------------------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], percent: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * percent / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def seconds(value: float) -> str:
    return f"{value:.3f} s"


def millis(value_seconds: float) -> str:
    return f"{value_seconds * 1000:.2f} ms"


def megabytes(kib: float) -> str:
    return f"{kib / 1024:.0f} MB"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


# ---------------------------------------------------------------------------- machine


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        uname = subprocess.run(
            ["uname", "-a"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        uname = " ".join(platform.uname())
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
            cwd=REPO_ROOT,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "uname": uname,
        "cpu": cpu,
        "cpus": str(os.cpu_count()),
        "python": sys.version.split()[0],
        "python_full": sys.version.replace("\n", " "),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "commit": commit,
    }


# ---------------------------------------------------------------------------- events


def sample_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    return data


_VOICE_START = "genesys-voice-customer-start.json"
_MESSAGE_START = "genesys-message-customer-start.json"
_ATTRIBUTES = "genesys-voice-attributes-update.json"
_FETCHED = "app-attributes-fetched.json"
_RESOLVED = "app-attributes-resolved.json"


def new_id() -> str:
    return str(uuid.uuid4())


def customer_start_event(conversation_id: str, participant_id: str, media: str) -> dict[str, Any]:
    """The sample customer.start event (voice or web messaging) for another conversation."""
    event = copy.deepcopy(sample_event(_MESSAGE_START if media == "MESSAGE" else _VOICE_START))
    event["id"] = new_id()
    detail = event["detail"]
    detail["topicName"] = f"v2.detail.events.conversation.{conversation_id}.customer.start"
    detail["eventBody"]["conversationId"] = conversation_id
    detail["eventBody"]["participantId"] = participant_id
    detail["eventBody"]["eventTime"] = int(time.time() * 1000)
    detail["metadata"]["CorrelationId"] = new_id()
    return event


def attributes_event(
    conversation_id: str, participant_id: str, attributes: Mapping[str, str]
) -> dict[str, Any]:
    """The sample `attributes` topic event (it carries the attributes) for a voice call."""
    event = copy.deepcopy(sample_event(_ATTRIBUTES))
    event["id"] = new_id()
    detail = event["detail"]
    detail["topicName"] = f"v2.detail.events.conversation.{conversation_id}.attributes"
    detail["eventBody"]["conversationId"] = conversation_id
    detail["eventBody"]["participantId"] = participant_id
    detail["eventBody"]["attributes"] = dict(attributes)
    detail["eventBody"]["eventTime"] = int(time.time() * 1000)
    detail["metadata"]["CorrelationId"] = new_id()
    return event


def app_event(
    kind: str, conversation_id: str, participant_id: str, media: str, attributes: Mapping[str, str]
) -> dict[str, Any]:
    """A ParticipantAttributesFetched ("fetched") or ...Resolved ("resolved") app event."""
    event = copy.deepcopy(sample_event(_FETCHED if kind == "fetched" else _RESOLVED))
    event["id"] = new_id()
    event["detail"].update(
        conversationId=conversation_id,
        participantId=participant_id,
        mediaType=media,
        attributes=dict(attributes),
        correlationId=new_id(),
        sourceEventId=new_id(),
    )
    return event


# ---------------------------------------------------------------------------- process state


def use_layer_source() -> None:
    """Put the layer's source on sys.path, as Lambda puts /opt/python (in-process runs)."""
    if str(LAYER_SOURCE) not in sys.path:
        sys.path.insert(0, str(LAYER_SOURCE))


# os.environ updated with `values`, restored exactly afterwards: the sandbox's own.
environment = environment_set


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """stdout and stderr to /dev/null: the functions log every step (Powertools JSON lines)."""
    with (
        open(os.devnull, "w", encoding="utf-8") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        yield


def require_build() -> tuple[Path, Path]:
    """The built FetchAttributes function folder and the built layer's python folder."""
    function_dir = BUILD_DIR / "FetchAttributesFunction"
    layer_dir = BUILD_DIR / "SharedLayer" / "python"
    for path in (function_dir / "app.py", layer_dir / "attribute_bridge"):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make build` first")
    return function_dir, layer_dir


class Deadline:
    """A wall-clock limit for a loop that must not hang."""

    def __init__(self, seconds_from_now: float) -> None:
        self.end = time.monotonic() + seconds_from_now

    def passed(self) -> bool:
        return time.monotonic() >= self.end

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())


def counter_delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Per-route request counts between two `emulator.counters()["requests"]` snapshots."""
    keys = set(before) | set(after)
    delta = {key: after.get(key, 0) - before.get(key, 0) for key in keys}
    return {key: value for key, value in delta.items() if value}


def genesys_calls(requests_by_route: Mapping[str, int]) -> dict[str, int]:
    """Token requests, conversation reads and attribute PATCHes in a route -> count map."""
    tokens = sum(n for route, n in requests_by_route.items() if route == "POST /oauth/token")
    reads = sum(n for route, n in requests_by_route.items() if route.startswith("GET "))
    patches = sum(n for route, n in requests_by_route.items() if route.startswith("PATCH "))
    return {
        "token": tokens,
        "read": reads,
        "patch": patches,
        "total": sum(requests_by_route.values()),
    }
