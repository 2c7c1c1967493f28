"""The lazy SDK loader: same models as the eager import, a fraction of the cost, and a
loud failure when an SDK upgrade breaks the approach."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYER = REPO / "layers" / "shared"

# Genesys-shaped payloads, one per response type the adapter asks for.
PAYLOADS = {
    "CallConversation": {
        "id": "6b1f2a9e-3c4d-4e5f-8a7b-9c0d1e2f3a4b",
        "participants": [
            {
                "id": "0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f",
                "purpose": "customer",
                "state": "connected",
                "direction": "inbound",
                "startTime": "2026-11-21T10:30:44.949Z",
                "ani": "tel:+13175550123",
                "attributes": {"case_id": "CASE-1001"},
            },
            {"id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "purpose": "ivr", "state": "connected"},
        ],
        "recordingState": "none",
    },
    "MessageConversation": {
        "id": "a3c5e7f9-1b2d-4f6a-8c0e-2d4f6a8c0e1b",
        "participants": [
            {
                "id": "b4d6f8a0-2c4e-4a7b-9d1f-3e5a7c9e1f2d",
                "purpose": "customer",
                "state": "connected",
                "type": "webmessaging",
                "attributes": {"customer_tier": "gold"},
                "messages": [{"messageId": "m1", "messageStatus": "delivered"}],
            }
        ],
    },
    "Conversation": {
        "id": "6b1f2a9e-3c4d-4e5f-8a7b-9c0d1e2f3a4b",
        "startTime": "2026-11-21T10:30:44.949Z",
        "participants": [
            {
                "id": "0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f",
                "purpose": "customer",
                "attributes": {"case_id": "CASE-1001"},
                "calls": [{"id": "c1", "state": "connected", "direction": "inbound"}],
            }
        ],
    },
}

DESERIALIZE = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {layer!r})
    payloads = json.loads(sys.stdin.read())
    {loader}
    client = ApiClient(host="http://127.0.0.1:9")

    class Response:  # what ApiClient.deserialize reads
        def __init__(self, body):
            self.data = json.dumps(body).encode()
        def getheader(self, name, default=None):
            return "application/json"

    out = {{}}
    for response_type, body in payloads.items():
        model = client.deserialize(Response(body), response_type)
        out[response_type] = {{
            "class": type(model).__module__ + "." + type(model).__name__,
            "participant_classes": sorted({{type(p).__name__ for p in model.participants}}),
            "value": client.sanitize_for_serialization(model),
        }}
    out["sdk_modules"] = len([m for m in sys.modules if m.startswith("PureCloudPlatformClientV2")])
    import threading
    out["threads"] = sorted(t.name for t in threading.enumerate())
    out["watchdog_observers_loaded"] = "watchdog.observers" in sys.modules
    import watchdog.observers  # whoever imports it next gets the real one
    out["observer_after"] = watchdog.observers.Observer.__module__
    print(json.dumps(out, sort_keys=True, default=str))
    """
)
EAGER = "from PureCloudPlatformClientV2 import ApiClient"
LAZY = "from attribute_bridge.genesys.sdk import load_sdk\nApiClient = load_sdk().ApiClient"


def _run(loader: str) -> dict:
    code = DESERIALIZE.format(layer=str(LAYER), loader=loader)
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(PAYLOADS),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def eager() -> dict:
    return _run(EAGER)


@pytest.fixture(scope="module")
def lazy() -> dict:
    return _run(LAZY)


@pytest.mark.parametrize("response_type", sorted(PAYLOADS))
def test_fast_path_returns_the_same_sdk_models_as_the_eager_import(
    eager: dict, lazy: dict, response_type: str
) -> None:
    assert lazy[response_type] == eager[response_type]
    assert lazy[response_type]["class"].startswith("PureCloudPlatformClientV2.models.")
    assert lazy[response_type]["value"]["participants"][0]["attributes"]


def test_fast_path_imports_a_small_fraction_of_the_sdk(eager: dict, lazy: dict) -> None:
    assert eager["sdk_modules"] > 6000
    assert lazy["sdk_modules"] < 60, lazy["sdk_modules"]


def test_fast_path_starts_no_config_file_watcher(eager: dict, lazy: dict) -> None:
    # The eager import's Configuration() starts a watchdog observer thread; ours must not.
    assert len(eager["threads"]) > 1
    assert lazy["threads"] == ["MainThread"]


def test_fast_path_does_not_import_the_file_watcher_but_leaves_it_importable(
    eager: dict, lazy: dict
) -> None:
    assert eager["watchdog_observers_loaded"] is True
    assert lazy["watchdog_observers_loaded"] is False  # ~10 ms of every cold start saved
    assert lazy["observer_after"] == eager["observer_after"]
    assert lazy["observer_after"].startswith("watchdog.observers.")


def test_installed_sdk_is_the_pinned_one_and_keeps_the_layout_we_rely_on() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(LAYER)!r})\n"
        "from attribute_bridge.genesys.sdk import check_sdk_layout; check_sdk_layout()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_pin_in_requirements_matches_the_loader() -> None:
    requirements = (LAYER / "requirements.txt").read_text()
    sys.path.insert(0, str(LAYER))
    from attribute_bridge.genesys.sdk import PINNED_SDK_VERSION

    assert f"PureCloudPlatformClientV2=={PINNED_SDK_VERSION}" in requirements


def test_an_unknown_model_name_is_a_clear_error() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(LAYER)!r})\n"
        "from attribute_bridge.genesys.sdk import load_sdk\n"
        "try:\n    load_sdk().models.NoSuchModel\nexcept AttributeError as e:\n    print(e)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "no model 'NoSuchModel'" in done.stdout
