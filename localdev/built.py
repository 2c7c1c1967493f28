"""Run the `sam build` output the way Lambda would: a fresh python3.12 process whose
sys.path is the built function folder, then the built layer's `python/` folder, then
only what the runtime provides (boto3, botocore, s3transfer). AWS is a moto server, Genesys
the emulator and the external system the stub, all over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess  # nosec B404
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localdev.emulator import EmulatorConfig, GenesysEmulator
from localdev.external import ExternalSystemStub
from localdev.sandbox import (
    LOCAL_ENVIRONMENT,
    REPO_ROOT,
    _create_aws_resources,
    _store_credentials,
    environment_set,
)
from localdev.template import Template, load_template

BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer")  # what Lambda's python3.12 ships
RESULT_MARKER = "@@lambda-result@@"

# The child: path set up like Lambda's, one handler import, one event, a report.
CHILD = r"""
import time
started = time.perf_counter()
import json, os, resource, sys
function_dir, layer_dir, runtime_dir, marker = sys.argv[1:5]
sys.path[:0] = [function_dir, layer_dir, runtime_dir]
import app
imported = time.perf_counter()
event = json.loads(sys.stdin.read())

class Context:
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = "$LATEST"
    memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    aws_request_id = "built-run"
    deadline = time.monotonic() + float(os.environ["FUNCTION_TIMEOUT"])
    def get_remaining_time_in_millis(self):
        return int((self.deadline - time.monotonic()) * 1000)

result = app.lambda_handler(event, Context())
handled = time.perf_counter()
from importlib.util import cache_from_source
files = {m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)}
allowed = (function_dir, layer_dir, runtime_dir, sys.base_prefix)
outside = sorted(f for f in files if not f.startswith(allowed))
no_pyc = sorted(f for f in files if f.startswith(layer_dir) and f.endswith(".py")
                and not os.path.exists(cache_from_source(f)))
print(marker + json.dumps({
    "result": result, "import_seconds": imported - started, "handle_seconds": handled - imported,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "outside_build": outside, "layer_modules_without_pyc": no_pyc,
}, default=str))
"""


@dataclass
class ServedStack:
    template: Template
    emulator: GenesysEmulator
    external: ExternalSystemStub
    aws_endpoint: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def served_stack(
    emulator_config: EmulatorConfig | None = None,
    parameter_overrides: Mapping[str, str] | None = None,
) -> Iterator[ServedStack]:
    """moto server, emulator and stub, with the template's resources created in moto."""
    from moto.server import ThreadedMotoServer

    from localdev import sandbox as local
    from localdev.moto_aws import atomic_dynamodb_writes

    local._client.cache_clear()  # this stack's clients talk to the moto server below
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with (
            environment_set({**LOCAL_ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint}),
            atomic_dynamodb_writes(),
            GenesysEmulator(emulator_config or EmulatorConfig()) as emulator,
            ExternalSystemStub() as external,
        ):
            names, _ = _create_aws_resources(REPO_ROOT / "template.yaml")
            overrides = {
                "GenesysRegion": emulator.base_url,
                "ExternalSystemUrl": external.sync_url,
                "MaxEventAgeSeconds": str(10 * 365 * 24 * 3600),
                **(parameter_overrides or {}),
            }
            template = load_template(
                REPO_ROOT / "template.yaml", parameter_overrides=overrides, resource_names=names
            )
            _store_credentials(template, emulator)
            yield ServedStack(template, emulator, external, endpoint)
    finally:
        server.stop()


@contextlib.contextmanager
def runtime_packages_dir() -> Iterator[Path]:
    """A folder holding only what Lambda's runtime provides, linked from this venv."""
    import importlib.util

    with tempfile.TemporaryDirectory(prefix="lambda-runtime-") as folder:
        for package in RUNTIME_PACKAGES:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise RuntimeError(f"{package} is not installed in this environment")
            source = Path(next(iter(spec.submodule_search_locations)))
            (Path(folder) / package).symlink_to(source, target_is_directory=True)
        yield Path(folder)


def run_built_function(
    stack: ServedStack,
    function_id: str,
    event: Any,
    runtime_dir: Path,
    preamble: str = "",
    build_dir: Path = BUILD_DIR,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """One cold start of the built function in a fresh process; its report as a dict.
    `preamble` runs first in the child (e.g. a naive `import PureCloudPlatformClientV2`)."""
    spec = stack.template.functions[function_id]
    env = {
        "PATH": os.environ.get("PATH", ""),
        **LOCAL_ENVIRONMENT,
        "AWS_ENDPOINT_URL": stack.aws_endpoint,
        **spec.environment,
        "AWS_LAMBDA_FUNCTION_NAME": function_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "FUNCTION_TIMEOUT": str(spec.timeout),
        "HOME": tempfile.gettempdir(),
    }
    layer_dir = build_dir / "SharedLayer" / "python"
    code = CHILD.replace("import time\n", "import time\n" + preamble + "\n", 1)
    done = subprocess.run(  # noqa: S603 (our own interpreter)  # nosec B603
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            code,
            str(build_dir / function_id),
            str(layer_dir),
            str(runtime_dir),
            RESULT_MARKER,
        ],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            report: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            report["stderr"] = done.stderr[-2000:]
            return report
    raise RuntimeError(
        f"{function_id} failed in a fresh process (exit {done.returncode}):\n"
        f"{done.stderr[-4000:]}\n{done.stdout[-2000:]}"
    )
