"""`python -m localdev route EVENT_FILE`: which functions the template's rules send an event to.

Prints a JSON array of function logical ids (sorted; `[]` when no rule matches). Event
buses are ignored: see localdev.template. Exit status 0 on success, 2 when the event file
cannot be read or is not a JSON object, 1 when template.yaml is missing or unusable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from localdev.template import Template, TemplateError, load_template

TEMPLATE_NAME = "template.yaml"


def find_template() -> Path:
    """template.yaml in the current directory, else at the repository root."""
    for directory in (Path.cwd(), Path(__file__).resolve().parent.parent):
        candidate = directory / TEMPLATE_NAME
        if candidate.is_file():
            return candidate
    raise TemplateError(f"no {TEMPLATE_NAME} in {Path.cwd()} or at the repository root")


def route(event: dict[str, Any], template: Template | None = None) -> list[str]:
    """The logical ids of the functions whose rules match `event`."""
    return (template or load_template(find_template())).route(event)


def read_event(event_file: str) -> dict[str, Any]:
    """The event in `event_file`; ValueError with a readable reason if there is none."""
    try:
        text = Path(event_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read event file {event_file}: {exc.strerror or exc}") from exc
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"event file {event_file} is not valid JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise ValueError(f"event file {event_file} must hold a JSON object (an event)")
    return event


def route_main(event_file: str) -> int:
    try:
        event = read_event(event_file)
    except ValueError as exc:
        print(f"route: {exc}", file=sys.stderr)
        return 2
    try:
        function_ids = route(event)
    except ValueError as exc:  # TemplateError, or an event pattern EventBridge would refuse
        print(f"route: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(function_ids))
    return 0
