"""What a handler module's import leaves out, so every cold start stays cheap (issue 15).

Lambda counts the handler module's import in every cold start; benchmarks/cold_start.py
measures it on the built layer (every handler >= 10x faster than a bare
`import PureCloudPlatformClientV2`, AttributesApi <= 0.2 s). This test pins the reason
without timing anything: a fresh interpreter imports each functions/*/app.py and must not
have loaded the heavy packages, which are imported where first used instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted(path.parent for path in (REPO_ROOT / "functions").glob("*/app.py"))
# Imported on first use: a session being built, the SDK's lazy loader, a boto3 client.
NOWHERE = ("requests", "boto3", "PureCloudPlatformClientV2", "pydantic")
# The API's routes, their pydantic models and Powertools' validating resolver: on the
# first request (attribute_bridge.attributes_api).
API_ONLY_ON_FIRST_REQUEST = (
    "attribute_bridge.attributes_api",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.event_handler.openapi.models",
)
PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import app
assert callable(app.lambda_handler)
print(json.dumps(sorted(sys.modules)))
"""
# The API's GET, answered in a fresh interpreter; it fails before Genesys is reached
# (no settings in this environment: a 5xx answer), which is enough to see what it loaded.
GET_PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import app
event = json.load(open(sys.argv[3], encoding="utf-8"))
class Context:
    function_name = "AttributesApiFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    aws_request_id = "c0d1e2f3-a4b5-4c6d-8e7f-a0b1c2d3e4f5"
    def get_remaining_time_in_millis(self): return 10_000
answer = app.lambda_handler(event, Context())
print(json.dumps([answer["statusCode"], sorted(sys.modules)]))
"""


def imported_by(function_dir: Path, environment: dict[str, str] | None = None) -> set[str]:
    completed = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(function_dir), str(REPO_ROOT / "layers/shared")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=environment,
    )
    return set(json.loads(completed.stdout))


def test_every_function_is_probed() -> None:
    assert {path.name for path in HANDLERS} >= {
        "fetch_attributes",
        "sync_external",
        "patch_attributes",
        "resolve_attributes",
        "attributes_api",
        "token_refresher",
    }


@pytest.mark.parametrize("function_dir", HANDLERS, ids=[path.name for path in HANDLERS])
def test_a_handler_module_imports_none_of_the_heavy_packages(function_dir: Path) -> None:
    modules = imported_by(function_dir)
    assert "attribute_bridge" in modules  # the probe did import the handler and its layer
    assert sorted(set(NOWHERE) & modules) == []


def test_the_api_handler_leaves_its_routes_to_the_first_request() -> None:
    modules = imported_by(REPO_ROOT / "functions" / "attributes_api")
    assert sorted(set(API_ONLY_ON_FIRST_REQUEST) & modules) == []


@pytest.mark.parametrize("initialization", ["provisioned-concurrency", "snap-start"])
def test_a_prewarmed_api_container_loads_its_routes_at_init(initialization: str) -> None:
    # Pre-warming runs the init before any request: the routes are better paid there.
    modules = imported_by(
        REPO_ROOT / "functions" / "attributes_api",
        {"AWS_LAMBDA_INITIALIZATION_TYPE": initialization, "POWERTOOLS_METRICS_NAMESPACE": "t"},
    )
    assert {"attribute_bridge.attributes_api", "pydantic"} <= modules


def test_an_on_demand_api_container_does_not() -> None:
    modules = imported_by(
        REPO_ROOT / "functions" / "attributes_api",
        {"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "POWERTOOLS_METRICS_NAMESPACE": "t"},
    )
    assert sorted(set(API_ONLY_ON_FIRST_REQUEST) & modules) == []


def test_the_api_answers_a_get_without_pydantic_or_the_validating_router() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            GET_PROBE,
            str(REPO_ROOT / "functions" / "attributes_api"),
            str(REPO_ROOT / "layers/shared"),
            str(REPO_ROOT / "events" / "api-get-attributes.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"POWERTOOLS_METRICS_NAMESPACE": "t", "POWERTOOLS_DEV": "false"},
    )
    status, modules = json.loads(completed.stdout.splitlines()[-1])
    assert status >= 500  # answered (no Genesys here), not raised
    assert "attribute_bridge.api_read" in set(modules)
    assert sorted({"pydantic", *API_ONLY_ON_FIRST_REQUEST} & set(modules)) == []
