"""The write rules: what may be written into a live conversation, decided in one place.

Architect flows route and authenticate on participant attributes, so every path that
writes (PatchAttributes, the API's PATCH, the data action, the mapping of the external
system's answer) asks `decide_write` and writes only what it allows:

- the participant's purpose is one of `WritablePurposes` (default: customer);
- each key matches KEY_PATTERN and is on the `WritableAttributes` list (names, or prefixes
  written `crm_*`); no default allows every key;
- each value is text Genesys can hold: a string, no NUL, no lone surrogate, within the
  length limit; at most `max_keys` keys;
- when the write may be stale (late, replayed, or a newer write happened since the read it
  is based on), only the keys whose current value is still the one the write replaces
  (compare-and-set by value).

A refused key is reported with its reason; the other keys still go.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from attribute_bridge.validation import AttributeLimits

# Letters, digits, `_`, `.` and `-`, 1 to 128 characters: what Architect expressions,
# scripts and the Messenger SDK all handle without quoting. Documented in README.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

NOT_WRITABLE = "not writable"
STALE = "stale"
INVALID_KEY = "invalid key"
PURPOSE_NOT_WRITABLE = "participant purpose not writable"


@dataclass(frozen=True)
class NameList:
    """Attribute names and prefixes (`crm_*`), as the template's list parameters hold them."""

    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, items: Iterable[str]) -> NameList:
        names: set[str] = set()
        prefixes: list[str] = []
        for item in (entry.strip() for entry in items):
            if not item:
                continue
            if item.endswith("*"):
                prefix = item[:-1]
                if not prefix or "*" in prefix:
                    # `*` alone would allow every key: refused as a configuration error.
                    raise ValueError(f"attribute list entry {item!r}: only `prefix*` is allowed")
                prefixes.append(prefix)
            elif "*" in item:
                raise ValueError(f"attribute list entry {item!r}: `*` only at the end")
            else:
                names.add(item)
        return cls(frozenset(names), tuple(prefixes))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (
            key in self.names or any(key.startswith(prefix) for prefix in self.prefixes)
        )

    def __or__(self, other: NameList) -> NameList:
        return NameList(self.names | other.names, (*self.prefixes, *other.prefixes))

    def select(self, attributes: Mapping[str, str]) -> dict[str, str]:
        return {key: value for key, value in attributes.items() if key in self}


@dataclass(frozen=True)
class WriteRules:
    writable: NameList = field(default_factory=NameList)
    purposes: frozenset[str] = frozenset({"customer"})
    limits: AttributeLimits = field(default_factory=AttributeLimits)


@dataclass(frozen=True)
class WriteDecision:
    """What to write, and why each other key is not written."""

    write: dict[str, str]
    refused: dict[str, str] = field(default_factory=dict)  # key -> reason

    @property
    def stale(self) -> list[str]:
        return sorted(key for key, reason in self.refused.items() if reason == STALE)


def key_problem(key: object) -> str | None:
    if not isinstance(key, str) or KEY_PATTERN.fullmatch(key) is None:
        return INVALID_KEY
    return None


def value_problem(value: object, limits: AttributeLimits) -> str | None:
    if not isinstance(value, str):
        return f"value is a {type(value).__name__}, not a string"
    if "\x00" in value:
        return "value holds a NUL character"
    if _SURROGATE.search(value):
        return "value holds a lone surrogate"
    if len(value) > limits.max_value_length:
        return f"value of {len(value)} characters, at most {limits.max_value_length}"
    return None


def check_keys(attributes: Mapping[str, object], rules: WriteRules) -> WriteDecision:
    """The key and value rules alone: used where the purpose is checked elsewhere (the
    mapping of the external answer, before the Resolved event). `decide_write` runs them."""
    write: dict[str, str] = {}
    refused: dict[str, str] = {}
    for key, value in attributes.items():
        problem = key_problem(key) or value_problem(value, rules.limits)
        if problem is None and key not in rules.writable:
            problem = NOT_WRITABLE
        if problem is None:
            write[str(key)] = str(value)
        else:
            refused[_shown(key)] = problem
    for key in sorted(write)[rules.limits.max_keys :]:
        refused[key] = f"more than {rules.limits.max_keys} attributes"
        del write[key]
    return WriteDecision(write, refused)


def decide_write(
    attributes: Mapping[str, object],
    rules: WriteRules,
    *,
    purpose: str,
    current: Mapping[str, str] | None = None,
    based_on: Mapping[str, str | None] | None = None,
) -> WriteDecision:
    """The one decision every write path makes. `current` is given when the write must be
    compared-and-set: a key is then written only if its current value (None: absent) is
    the one `based_on` says the write replaces; a key `based_on` does not name is stale."""
    if purpose not in rules.purposes:
        reason = f"{PURPOSE_NOT_WRITABLE} ({purpose or 'unknown'})"
        return WriteDecision({}, {_shown(key): reason for key in attributes})
    checked = check_keys(attributes, rules)
    if current is None:
        return checked
    write: dict[str, str] = {}
    refused = dict(checked.refused)
    for key, value in checked.write.items():
        if current.get(key) == value:
            continue  # already there: nothing to write, nothing refused
        expected = (based_on or {}).get(key, _UNKNOWN)
        if expected is _UNKNOWN or current.get(key) != expected:
            refused[key] = STALE
        else:
            write[key] = value
    return WriteDecision(write, refused)


_UNKNOWN = object()


def _shown(key: object) -> str:
    """A refused key as it may appear in a log line or an answer: printable, bounded."""
    text = key if isinstance(key, str) else repr(key)
    return text.encode("unicode_escape").decode("ascii")[:80]
