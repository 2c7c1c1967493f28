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


def imported_by(function_dir: Path) -> set[str]:
    completed = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(function_dir), str(REPO_ROOT / "layers/shared")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
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
