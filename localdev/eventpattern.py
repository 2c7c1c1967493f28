"""EventBridge event-pattern matching: moto's matcher, mended where it disagrees with AWS.

`matches(pattern, event)` answers what an EventBridge rule with `pattern` would do with
`event`. The tree walk, `$or`, AND across fields and the string/numeric/cidr operators
are moto's (`moto.events.models.EventPattern`); this module replaces only the parts of it
that give a different answer from AWS. AWS's matcher is the open-source Event Ruler
(github.com/aws/event-ruler); the rules below are from its README and the EventBridge
user guide ("Arrays in event patterns", "Content filtering", "null values").

Mended gaps (each one has a test in tests/unit/test_eventpattern.py):

1. Arrays of objects. AWS "crushes" arrays out of the event: a field inside an array of
   objects (at any depth, arrays of arrays too) yields the list of its values, so
   `{"a": {"b": ["x"]}}` matches `{"a": [{"b": "y"}, {"b": "x"}]}`. Moto stopped at arrays.
2. Empty arrays and empty objects are not leaves: they give no value, so `exists: true`
   does not match them and `exists: false` does. Moto kept them as present values.
3. Strict JSON equality. `true` is not `1` and `false` is not `0` (moto used Python's
   `==`, where `True == 1`), for plain values and `anything-but` alike. Numbers still
   compare numerically (`300` matches `3.0e2`, as Ruler compares numbers).
4. `numeric` matches JSON numbers only: a boolean is not a number (moto: `True > 0`).
5. `cidr` matches strings only (moto turned a number into an address: 5 -> 0.0.0.5).
6. An unknown operator such as `{"prefixx": "a"}` is an invalid pattern (AWS rejects the
   rule); moto silently matched everything with it.

Checked and already right in moto, so kept: `anything-but` on a missing field does not
match, `anything-but` matches a null value, `[null]` matches null only (not a missing
field, not ""), numeric on a string value does not match, `exists: false` matches a field
that is an object with children (exists works on leaves only), `$or` at any level.

Not modelled: Ruler's "array-consistent" matching, where two fields of one pattern must
come from the same element of an array of objects. Here, as in Ruler's flattened mode,
`{"a": {"b": ["1"], "c": ["2"]}}` matches `{"a": [{"b": "1"}, {"c": "2"}]}`.

Importing this module imports moto (about 0.3 s, most of it boto3): import it lazily.
"""

from __future__ import annotations

import json
from typing import Any

from moto.events.models import UNDEFINED, EventPattern

__all__ = ["InvalidPatternError", "matches", "validate"]

# Every comparison operator EventBridge accepts inside a field's list.
_OPERATORS = frozenset(
    {
        "prefix",
        "suffix",
        "equals-ignore-case",
        "wildcard",
        "anything-but",
        "numeric",
        "exists",
        "cidr",
    }
)


class InvalidPatternError(ValueError):
    """The pattern would be refused by EventBridge (PutRule fails with it)."""


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """True when an EventBridge rule with `pattern` would match `event`."""
    return _compile(pattern).matches(event)


def validate(pattern: dict[str, Any]) -> None:
    """Raise InvalidPatternError if EventBridge would refuse `pattern`."""
    _compile(pattern)


def _compile(pattern: dict[str, Any]) -> _AwsEventPattern:
    if not isinstance(pattern, dict) or not pattern:
        raise InvalidPatternError("an event pattern must be a non-empty JSON object")
    try:
        raw = json.dumps(pattern)
        compiled = _AwsEventPattern(raw, EventPattern.load(raw).get_pattern())
    except Exception as exc:  # moto raises its own HTTP-flavoured error type
        raise InvalidPatternError(f"invalid event pattern: {exc}") from exc
    _check_operators(pattern)
    return compiled


def _check_operators(node: dict[str, Any]) -> None:
    """Refuse what moto lets through: empty objects and unknown operators (gap 6)."""
    if not node:
        raise InvalidPatternError("empty objects are not allowed in an event pattern")
    for key, value in node.items():
        if key == "$or" and isinstance(value, list):
            for branch in value:
                _check_operators(branch if isinstance(branch, dict) else {})
        elif isinstance(value, dict):
            _check_operators(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and set(item) - _OPERATORS:
                    raise InvalidPatternError(f"unrecognized match type in {item!r}")


class _AwsEventPattern(EventPattern):
    """moto's EventPattern with the event flattening and leaf comparisons AWS uses."""

    def matches(self, event: dict[str, Any]) -> bool:
        return bool(self._does_event_match(self._flatten_dict(event), self.get_pattern()))

    @staticmethod
    def _flatten_dict(
        node: Any, prefix: str = "", result: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Map each dotted leaf path to the list of its values (gaps 1 and 2).

        Every path maps to a list, even a single value: moto's walk hands that list to
        `_does_item_match_filters`, which matches when any value does.
        """
        if result is None:
            result = {}
        if isinstance(node, dict):
            for key, value in node.items():
                _AwsEventPattern._flatten_dict(value, f"{prefix}.{key}" if prefix else key, result)
        elif isinstance(node, list):
            for element in node:  # arrays are crushed: elements join the parent path
                _AwsEventPattern._flatten_dict(element, prefix, result)
        elif prefix:
            result.setdefault(prefix, []).append(node)
        return result

    def _does_item_match_filters(self, item: Any, filters: list[Any]) -> bool:
        values: list[Any] = [] if item is UNDEFINED else item
        for value_filter in filters:
            if isinstance(value_filter, dict):
                if _named_filter_matches(values, value_filter):
                    return True
            elif any(_json_equal(value, value_filter) for value in values):
                return True
        return False


def _named_filter_matches(values: list[Any], value_filter: dict[str, Any]) -> bool:
    """One `{"operator": argument}` filter against all the values of a field."""
    operator, argument = next(iter(value_filter.items()))
    if operator == "exists":
        return bool(values) == (argument is True)
    # AWS tests every other operator against the field's values, so a missing field
    # matches none of them: not even anything-but.
    return any(_leaf_matches(value, operator, argument) for value in values)


def _leaf_matches(value: Any, operator: str, argument: Any) -> bool:
    if operator == "anything-but":
        if isinstance(argument, dict):  # anything-but prefix/suffix/wildcard/ignore-case
            nested_operator, nested_argument = next(iter(argument.items()))
            return not _leaf_matches(value, nested_operator, nested_argument)
        excluded = argument if isinstance(argument, list) else [argument]
        return not any(_json_equal(value, item) for item in excluded)
    if operator == "numeric" and isinstance(value, bool):
        return False  # gap 4
    if operator == "cidr" and not isinstance(value, str):
        return False  # gap 5
    # prefix, suffix, equals-ignore-case, wildcard, numeric, cidr: moto has them right.
    return bool(EventPattern._does_item_match_named_filter(value, {operator: argument}))


def _json_equal(left: Any, right: Any) -> bool:
    """Equality of two JSON scalars as EventBridge sees them (gap 3)."""
    if isinstance(left, bool) or isinstance(right, bool) or left is None or right is None:
        return left is right  # true, false and null only equal themselves
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and bool(left == right)
