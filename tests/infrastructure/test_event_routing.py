"""Every sample in events/ routes, by template.yaml's own patterns, to exactly the
functions it is meant for (events/routing.json); events to ignore route nowhere."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from localdev.template import Template, load_template

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
EXPECTED: dict[str, list[str]] = json.loads((EVENTS / "routing.json").read_text())["routes"]


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(REPO / "template.yaml")


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def test_every_sample_has_an_expectation() -> None:
    samples = {
        str(p.relative_to(EVENTS)) for p in EVENTS.rglob("*.json") if p.name != "routing.json"
    }
    assert samples == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_routes_to_exactly_its_functions(template: Template, name: str) -> None:
    assert template.route(load(name)) == EXPECTED[name]


def test_route_command_prints_the_same_json(template: Template) -> None:
    name = "genesys-voice-attributes-update.json"
    done = subprocess.run(
        [sys.executable, "-m", "localdev", "route", str(EVENTS / name)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == ["FetchAttributesFunction"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda e: e["detail"]["eventBody"].update(mediaType="EMAIL"), "another media"),
        (lambda e: e.update({"detail-type": "v2.detail.events.conversation.{id}.acw"}), "topic"),
        (lambda e: e.update(source="aws.partner/salesforce.com/x"), "another partner"),
        (lambda e: e["detail"].pop("eventBody"), "no eventBody"),
    ],
)
def test_genesys_events_to_ignore_route_nowhere(template: Template, change: Any, why: str) -> None:
    event = copy.deepcopy(load("genesys-voice-customer-start.json"))
    change(event)
    assert template.route(event) == [], why


def test_attributes_topic_is_filtered_by_its_communications_media(template: Template) -> None:
    event = copy.deepcopy(load("genesys-voice-attributes-update.json"))
    event["detail"]["eventBody"]["communications"] = [{"id": "x", "mediaType": "EMAIL"}]
    assert template.route(event) == []
    event["detail"]["eventBody"]["communications"].append({"id": "y", "mediaType": "MESSAGE"})
    assert template.route(event) == ["FetchAttributesFunction"]


def test_topics_and_media_are_parameters(template: Template) -> None:
    widened = load_template(
        REPO / "template.yaml",
        parameter_overrides={
            "MediaTypes": "VOICE,MESSAGE,EMAIL",
            "GenesysTopics": "v2.detail.events.conversation.{id}.customer.start",
        },
    )
    email = copy.deepcopy(load("genesys-voice-customer-start.json"))
    email["detail"]["eventBody"]["mediaType"] = "EMAIL"
    assert widened.route(email) == ["FetchAttributesFunction"]
    assert widened.route(load("genesys-voice-attributes-update.json")) == []
