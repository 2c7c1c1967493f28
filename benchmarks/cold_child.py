"""The process whose cold start benchmarks/cold_start.py measures. Standard library only.

Run as a script, isolated from the venv: `python -I -S cold_child.py CONFIG_JSON`. It puts
the built function folder and the built layer first on sys.path (as Lambda puts /var/task
and /opt/python), the "runtime" folder (boto3 & co, which Lambda provides) last, then:
- mode "handler": imports the handler module and handles one event;
- mode "import": imports the handler module only;
- mode "sdk": `import PureCloudPlatformClientV2` only.
With "naive": true, `import PureCloudPlatformClientV2` comes first (the eager approach).
It writes its measurements as JSON to the configured result file and exits with
os._exit (Lambda freezes the process after the handler; nobody waits for a teardown).
"""

import time

T0 = time.perf_counter()  # the first thing the script does (interpreter start is before)
T0_EPOCH = time.time()

import importlib  # noqa: E402 - the clock starts first on purpose
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402


class LambdaContext:
    """What the Lambda runtime passes as `context` (what Powertools and Budget read)."""

    def __init__(self, function_name: str, timeout_seconds: float, memory_mb: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "cold-start-benchmark"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (less sensitive than wall time to
    other processes competing for the CPUs)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_kib() -> int:
    """VmHWM: the peak resident set of this process image. (getrusage's ru_maxrss is not
    used: on Linux it keeps the parent's peak across fork + exec, ~250 MB here.)"""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def time_first_event_parts() -> dict[str, float]:
    """Wall-clock wrappers (a few calls: negligible) around the parts of the first event:
    `aws_client()` (client creation), each AWS call made by those clients,
    every requests `Session.send` (Genesys and token HTTP) and the lazy SDK load. Installed
    after the handler module's import; they import only `requests` and the Genesys
    adapter, which the handler imports on its first event anyway (AttributesApi's routes,
    a session being built): that counts in the first event."""
    parts = {"boto3_setup": 0.0, "aws_calls": 0.0, "http_calls": 0.0, "sdk_load": 0.0}

    def timed(part: str, call: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                parts[part] += time.perf_counter() - started

        return wrapper

    aws: Any = importlib.import_module("attribute_bridge.aws")  # boto3 stays unimported
    build_client = aws.aws_client
    seen: set[int] = set()

    def client(service: str) -> Any:
        made = timed("boto3_setup", build_client)(service)
        if id(made) not in seen:
            seen.add(id(made))
            made._make_api_call = timed("aws_calls", made._make_api_call)
        return made

    aws.aws_client = client
    requests: Any = importlib.import_module("requests")
    requests.Session.send = timed("http_calls", requests.Session.send)
    sdk: Any = importlib.import_module("attribute_bridge.genesys.sdk")
    sdk.load_sdk = timed("sdk_load", sdk.load_sdk)
    client_module: Any = importlib.import_module("attribute_bridge.genesys.client")
    client_module.load_sdk = sdk.load_sdk  # imported by name there
    return parts


def main() -> None:
    config: dict[str, Any] = json.loads(sys.argv[1])
    sys.path[:0] = config["front"]
    sys.path.extend(config["back"])
    marks: dict[str, float] = {}
    result: Any = None
    if config["naive"] or config["mode"] == "sdk":
        importlib.import_module("PureCloudPlatformClientV2")
        marks["sdk_imported"] = time.perf_counter() - T0
    if config["mode"] in ("handler", "import"):
        module = importlib.import_module(config["handler_module"])
        marks["handler_imported"] = time.perf_counter() - T0
        if config["mode"] == "handler":
            with open(config["event_file"], encoding="utf-8") as source:
                event = json.load(source)
            breakdown = time_first_event_parts()
            handler = getattr(module, config["handler_function"])
            context = LambdaContext(config["function_name"], config["timeout"], config["memory"])
            result = handler(event, context)
            marks["handled"] = time.perf_counter() - T0
    end_epoch = time.time()
    if config["mode"] == "handler":
        marks.update({f"part_{name}": value for name, value in breakdown.items()})
    files = {
        name: getattr(sys.modules[name], "__file__", None)
        for name in config["check_modules"]
        if name in sys.modules
    }
    sdk_modules = sum(1 for name in sys.modules if name.startswith("PureCloudPlatformClientV2."))
    report = {
        "t0_epoch": T0_EPOCH,
        "end_epoch": end_epoch,
        "marks": marks,
        "cpu_seconds": cpu_seconds(),
        "maxrss_kib": peak_rss_kib(),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "modules": len(sys.modules),
        "sdk_modules": sdk_modules,
        "files": files,
        "result": result,
    }
    with open(config["result_file"], "w", encoding="utf-8") as sink:
        json.dump(report, sink, default=str)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
