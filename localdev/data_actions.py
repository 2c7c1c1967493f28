"""Genesys Cloud data actions, run here the way Genesys runs them: the action's request
rendered from its templates, its response translated into the output contract.

Stand-ins for Genesys's engines (/work/shared/GENESYS.md, "Architect and data actions"):
`airspeed` for Velocity (`${input.x}` prints its own name when null, `$!{input.x}`
nothing; `$esc` is supplied as an object), `jsonpath-ng` for the translationMap's JSONPath
and `jsonschema` for the contracts. Which JSONPath engine Genesys runs is not documented;
the list rule here is Jayway's (the Java library such platforms use): a *definite* path
(`$.a.b`, `$.a[0]`) yields its one value, an *indefinite* one (`..`, `*`, filters, unions,
slices) always a list. That is what the reference exports rely on: `$.results[0].data..x`
has the default "[0]", a list.

- `render_request(action, input, credentials)`: URL, headers and body as Genesys sends
  them. `$input.rawRequest` is the input as JSON, Genesys's default request template and
  what an AWS Lambda data action's function receives as its event.
- `translate(action, raw_result)`: translationMap (each value as JSON text, as the
  successTemplate receives it), translationMapDefaults (used only when a path resolves
  nothing: a null does not fall back), successTemplate, then the success schema. Any
  failure raises TranslationError: Architect then takes the action's Failure path.
- `contract_problems(action)`: Genesys's contract rules (flat objects, names matching
  `^[a-zA-Z][a-zA-Z0-9_-]*$`, no reserved names, no `$ref`, no nested arrays).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import airspeed  # type: ignore[import-untyped]
import jsonschema  # type: ignore[import-untyped]
from jsonpath_ng.ext import parse as parse_jsonpath  # type: ignore[attr-defined]

NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]*$")
RESERVED_INPUTS = frozenset({"orgId", "integrationId", "rawRequest"})
SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean", "null"})
EXPORT_KEYS = frozenset({"name", "integrationType", "actionType", "config", "contract", "secure"})
INDEFINITE = re.compile(r"\.\.|\*|\[\?|\[[^\]]*[,:][^\]]*\]")


class TranslationError(ValueError):
    """The response could not be translated into the output contract (Failure path)."""


class Escape:
    """Velocity's EscapeTool as the templates use it: `$esc.jsonString`, `$esc.url`."""

    def jsonString(self, value: Any) -> str:  # the template calls it by this name
        return json.dumps("" if value is None else str(value), ensure_ascii=False)[1:-1]

    def url(self, value: Any) -> str:
        # java.net.URLEncoder, which EscapeTool.url uses: form encoding, space -> "+"
        return quote_plus("" if value is None else str(value), safe="*-._")


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: str


def load_action(path: str | Path) -> dict[str, Any]:
    action: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return action


def _render(template: str, namespace: Mapping[str, Any]) -> str:
    return str(airspeed.Template(template).merge(dict(namespace)))


def render_request(
    action: Mapping[str, Any], inputs: Mapping[str, Any], credentials: Mapping[str, str]
) -> Request:
    """The request Genesys sends for these inputs (validated against the input schema
    first, as Genesys does before it calls anything)."""
    validate(action["contract"]["input"]["inputSchema"], inputs, "input")
    request = action["config"]["request"]
    namespace = {
        "input": {**inputs, "rawRequest": json.dumps(dict(inputs), separators=(",", ":"))},
        "credentials": dict(credentials),
        "esc": Escape(),
    }
    return Request(
        method=str(request["requestType"]),
        url=_render(str(request["requestUrlTemplate"]), namespace),
        headers={k: _render(str(v), namespace) for k, v in request.get("headers", {}).items()},
        body=_render(str(request.get("requestTemplate", "${input.rawRequest}")), namespace),
    )


def _json_path(expression: str, document: Any) -> list[Any]:
    try:
        return [match.value for match in parse_jsonpath(expression).find(document)]
    except Exception as error:  # jsonpath-ng raises bare Exceptions on syntax errors
        raise TranslationError(f"JSONPath {expression!r}: {error}") from error


def translation_values(response: Mapping[str, Any], raw_result: str) -> dict[str, str]:
    """translationMap name -> the value as JSON text, defaults applied."""
    try:
        document = json.loads(raw_result)
    except ValueError as error:
        raise TranslationError(f"the response is not JSON: {error}") from error
    defaults: Mapping[str, str] = response.get("translationMapDefaults", {})
    values: dict[str, str] = {}
    for name, expression in response.get("translationMap", {}).items():
        found = _json_path(str(expression), document)
        if not found:
            if name not in defaults:
                raise TranslationError(f"translationMap {name}: {expression} matched nothing")
            values[name] = str(defaults[name])
            continue
        definite = INDEFINITE.search(str(expression)) is None
        value = found[0] if definite and len(found) == 1 else found
        values[name] = json.dumps(value, ensure_ascii=False)
    return values


def translate(action: Mapping[str, Any], raw_result: str) -> dict[str, Any]:
    """The action's output for a raw response body, validated against the success schema."""
    response = action["config"]["response"]
    namespace: dict[str, Any] = {
        **translation_values(response, raw_result),
        "rawResult": raw_result,
        "esc": Escape(),
    }
    text = _render(str(response.get("successTemplate", "${rawResult}")), namespace)
    try:
        output = json.loads(text)
    except ValueError as error:
        raise TranslationError(f"the successTemplate made invalid JSON: {error}") from error
    try:
        validate(action["contract"]["output"]["successSchema"], output, "output")
    except jsonschema.ValidationError as error:
        raise TranslationError(
            f"output does not match the success schema: {error.message}"
        ) from None
    if not isinstance(output, dict):
        raise TranslationError("the output is not an object")
    return output


def validate(schema: Mapping[str, Any], value: Any, what: str) -> None:
    """jsonschema's validator for the schema's draft (Genesys writes draft-04 style)."""
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft4Validator)
    validator.check_schema(schema)
    validator(schema).validate(value)


def contract_problems(action: Mapping[str, Any]) -> list[str]:
    """Every way the export breaks Genesys's format or contract rules."""
    problems = [f"unknown top-level key {key!r}" for key in set(action) - EXPORT_KEYS]
    problems += [f"missing top-level key {key!r}" for key in EXPORT_KEYS - set(action)]
    if problems:
        return problems
    if action["actionType"] != "custom":
        problems.append("actionType must be 'custom'")
    if '"$ref"' in json.dumps(action["contract"]):
        problems.append("$ref is not allowed in a contract")
    inputs = action["contract"]["input"]["inputSchema"]
    outputs = action["contract"]["output"]["successSchema"]
    for where, schema in (("input", inputs), ("output", outputs)):
        if schema.get("type") != "object":
            problems.append(f"{where} schema must be an object")
        for name, prop in schema.get("properties", {}).items():
            if not NAME.fullmatch(name):
                problems.append(f"{where} name {name!r} does not match {NAME.pattern}")
            kind = prop.get("type")
            if where == "input" and kind not in SCALAR_TYPES:
                problems.append(f"input {name} is {kind}: inputs must be flat scalars")
            if kind == "array" and prop.get("items", {}).get("type") == "array":
                problems.append(f"output {name} is a nested array")
    for name in set(inputs.get("properties", {})) & RESERVED_INPUTS:
        problems.append(f"input {name} is a reserved name")
    response = action["config"]["response"]
    for name in response.get("translationMapDefaults", {}):
        if name not in response.get("translationMap", {}):
            problems.append(f"translationMapDefaults {name} has no translationMap entry")
    return problems
