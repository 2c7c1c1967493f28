"""The `sam build` output, run the way Lambda runs it (see localdev/built.py): every
handler imports from its function folder and the built layer only, ships .pyc for 3.12,
handles its sample event, and fits Lambda's 250 MB unzipped limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.built import (
    BUILD_DIR,
    ServedStack,
    run_built_function,
    runtime_packages_dir,
    served_stack,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
LIMIT_BYTES = 250 * 1024 * 1024

# function -> (sample event, the outcomes its handler may report). TokenRefresher runs
# first: it is the only minter, and the others find its token in SSM (a built function run
# here cannot invoke another; tests/integration/test_token_path.py covers that path).
SAMPLES: dict[str, tuple[str, set[Any]]] = {
    "FetchAttributesFunction": ("genesys-voice-customer-start.json", {"fetched"}),
    "SyncExternalFunction": ("app-attributes-fetched.json", {"synced"}),
    "PatchAttributesFunction": ("app-attributes-resolved.json", {"patched"}),
    "TokenRefresherFunction": ("schedule-token-refresh.json", {"token_minted"}),
    "AttributesApiFunction": ("api-get-attributes.json", {200}),
}


@pytest.fixture(scope="module")
def build() -> Path:
    layer = BUILD_DIR / "SharedLayer" / "python"
    assert layer.is_dir(), "no sam build output: run `make build` (make test does)"
    return BUILD_DIR


@pytest.fixture(scope="module")
def stack(build: Path) -> Iterator[ServedStack]:
    with served_stack() as served:
        served.emulator.create_conversation(
            media_type="VOICE",
            conversation_id="6b1f2a9e-3c4d-4e5f-8a7b-9c0d1e2f3a4b",
            participants=[
                {
                    "purpose": "customer",
                    "id": "0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f",
                    "attributes": {"case_id": "CASE-1001"},
                },
                {"purpose": "ivr"},
            ],
        )
        yield served


@pytest.fixture(scope="module")
def runtime_dir() -> Iterator[Path]:
    with runtime_packages_dir() as folder:
        yield folder


def outcome_of(function_id: str, result: Any) -> Any:
    return result["statusCode"] if function_id == "AttributesApiFunction" else result["outcome"]


@pytest.mark.parametrize(
    "function_id", sorted(SAMPLES, key=lambda f: (f != "TokenRefresherFunction", f))
)
def test_built_function_handles_its_sample_event_from_the_build_alone(
    function_id: str, stack: ServedStack, runtime_dir: Path, build: Path
) -> None:
    event_file, expected = SAMPLES[function_id]
    event = json.loads((EVENTS / event_file).read_text())

    report = run_built_function(stack, function_id, event, runtime_dir, build_dir=build)

    assert outcome_of(function_id, report["result"]) in expected, report["stderr"]
    assert report["outside_build"] == [], "imported from outside the build and the runtime"
    assert report["layer_modules_without_pyc"] == [], "the layer must ship .pyc for 3.12"


def test_each_function_plus_its_layer_fits_lambdas_unzipped_limit(build: Path) -> None:
    def size(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())

    layer = size(build / "SharedLayer")
    for function_id in SAMPLES:
        assert size(build / function_id) + layer < LIMIT_BYTES, function_id


def test_layer_ships_bytecode_compiled_for_python_312(build: Path) -> None:
    layer = build / "SharedLayer" / "python"
    compiled = list((layer / "attribute_bridge").rglob("*.cpython-312.pyc"))
    sources = list((layer / "attribute_bridge").rglob("*.py"))
    assert len(compiled) == len(sources)
    assert (
        layer / "PureCloudPlatformClientV2" / "__pycache__" / "api_client.cpython-312.pyc"
    ).exists()
