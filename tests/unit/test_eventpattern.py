"""EventBridge pattern matching, checked against the examples AWS documents.

Sources: the EventBridge user guide (event patterns, content filtering, arrays, null
values, comparison operators) and the README of AWS's own matcher, Event Ruler.
"""

from __future__ import annotations

from typing import Any

import pytest

from localdev.eventpattern import InvalidPatternError, matches, validate

# The sample event of the Event Ruler README / EventBridge content-filtering docs.
EC2_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "012345679012",
    "time": "2017-10-02T16:24:49Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
    "detail": {
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "instance-id": "i-000000aaaaaa00000",
        "state": "running",
    },
}


def detail(**fields: Any) -> dict[str, Any]:
    return {"source": "test", "detail": fields}


CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # --- Exact values, OR within a field's list, AND across fields ---
    ("exact", {"source": ["aws.ec2"]}, EC2_EVENT, True),
    ("exact wrong value", {"source": ["aws.s3"]}, EC2_EVENT, False),
    ("exact is case sensitive", {"source": ["AWS.EC2"]}, EC2_EVENT, False),
    ("or within list", {"detail": {"state": ["initializing", "running"]}}, EC2_EVENT, True),
    (
        "and across fields",
        {"source": ["aws.ec2"], "detail": {"state": ["running"], "c-count": [5]}},
        EC2_EVENT,
        True,
    ),
    (
        "and across fields, one fails",
        {"source": ["aws.ec2"], "detail": {"state": ["stopped"]}},
        EC2_EVENT,
        False,
    ),
    ("missing field", {"detail": {"nope": ["x"]}}, EC2_EVENT, False),
    ("field in wrong place", {"state": ["running"]}, EC2_EVENT, False),
    ("pattern value on an object", {"detail": ["running"]}, EC2_EVENT, False),
    # --- Arrays in the event: match when the intersection is not empty ---
    (
        "event array intersects",
        {"resources": ["arn:x", "arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"]},
        EC2_EVENT,
        True,
    ),
    ("event array disjoint", {"resources": ["arn:x"]}, EC2_EVENT, False),
    ("empty event array matches no value", {"detail": {"tags": ["a"]}}, detail(tags=[]), False),
    # --- Numbers, booleans, null, empty string ---
    ("number equals", {"detail": {"c-count": [5]}}, EC2_EVENT, True),
    ("number equals other notation", {"detail": {"x-limit": [3.018e2]}}, EC2_EVENT, True),
    ("number is not its string", {"detail": {"c-count": ["5"]}}, EC2_EVENT, False),
    ("string is not a number", {"detail": {"n": [5]}}, detail(n="5"), False),
    ("true equals true", {"detail": {"b": [True]}}, detail(b=True), True),
    ("true is not 1", {"detail": {"b": [True]}}, detail(b=1), False),
    ("1 is not true", {"detail": {"b": [1]}}, detail(b=True), False),
    ("false is not 0", {"detail": {"b": [False]}}, detail(b=0), False),
    ("0 is not false in an array", {"detail": {"b": [0]}}, detail(b=[False, "x"]), False),
    (
        "null equals null",
        {"detail": {"responseElements": [None]}},
        detail(responseElements=None),
        True,
    ),
    ("null is not missing", {"detail": {"responseElements": [None]}}, detail(), False),
    (
        "null is not empty string",
        {"detail": {"eventVersion": [None]}},
        detail(eventVersion=""),
        False,
    ),
    ("empty string equals", {"detail": {"eventVersion": [""]}}, detail(eventVersion=""), True),
    ("empty string is not null", {"detail": {"v": [""]}}, detail(v=None), False),
    # --- prefix / suffix / equals-ignore-case / wildcard ---
    ("prefix", {"time": [{"prefix": "2017-10-02"}]}, EC2_EVENT, True),
    ("prefix no", {"time": [{"prefix": "2018"}]}, EC2_EVENT, False),
    ("prefix only strings", {"detail": {"c-count": [{"prefix": "5"}]}}, EC2_EVENT, False),
    (
        "prefix ignore case",
        {"detail-type": [{"prefix": {"equals-ignore-case": "ec2 INSTANCE"}}]},
        EC2_EVENT,
        True,
    ),
    ("suffix", {"source": [{"suffix": "ec2"}]}, EC2_EVENT, True),
    ("suffix no", {"source": [{"suffix": "s3"}]}, EC2_EVENT, False),
    (
        "suffix ignore case",
        {"detail": {"f": [{"suffix": {"equals-ignore-case": ".png"}}]}},
        detail(f="IMAGE.PNG"),
        True,
    ),
    ("equals-ignore-case", {"source": [{"equals-ignore-case": "AWS.EC2"}]}, EC2_EVENT, True),
    ("equals-ignore-case no", {"source": [{"equals-ignore-case": "aws.ec"}]}, EC2_EVENT, False),
    ("wildcard", {"source": [{"wildcard": "aws.*"}]}, EC2_EVENT, True),
    ("wildcard middle", {"detail": {"p": [{"wildcard": "*/lib/*"}]}}, detail(p="/usr/lib/x"), True),
    ("wildcard no", {"detail": {"p": [{"wildcard": "*/lib/*"}]}}, detail(p="/usr/bin/x"), False),
    ("wildcard escaped star", {"detail": {"p": [{"wildcard": "a\\*b"}]}}, detail(p="a*b"), True),
    (
        "wildcard escaped star no",
        {"detail": {"p": [{"wildcard": "a\\*b"}]}},
        detail(p="axb"),
        False,
    ),
    # --- anything-but ---
    ("anything-but", {"detail": {"state": [{"anything-but": "initializing"}]}}, EC2_EVENT, True),
    ("anything-but no", {"detail": {"state": [{"anything-but": "running"}]}}, EC2_EVENT, False),
    (
        "anything-but list",
        {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}},
        EC2_EVENT,
        True,
    ),
    (
        "anything-but list no",
        {"detail": {"state": [{"anything-but": ["stopped", "running"]}]}},
        EC2_EVENT,
        False,
    ),
    ("anything-but number", {"detail": {"x-limit": [{"anything-but": 123}]}}, EC2_EVENT, True),
    ("anything-but number no", {"detail": {"c-count": [{"anything-but": 5}]}}, EC2_EVENT, False),
    (
        "anything-but number list",
        {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}},
        EC2_EVENT,
        True,
    ),
    (
        "anything-but number list no",
        {"detail": {"c-count": [{"anything-but": [4, 5.0]}]}},
        EC2_EVENT,
        False,
    ),
    ("anything-but 1 keeps true", {"detail": {"b": [{"anything-but": [1]}]}}, detail(b=True), True),
    ("anything-but missing field", {"detail": {"nope": [{"anything-but": "x"}]}}, EC2_EVENT, False),
    (
        "anything-but null value",
        {"detail": {"c": [{"anything-but": ["baz"]}]}},
        detail(c=None),
        True,
    ),
    (
        "anything-but any array element",
        {"detail": {"s": [{"anything-but": "a"}]}},
        detail(s=["a", "b"]),
        True,
    ),
    (
        "anything-but all array elements",
        {"detail": {"s": [{"anything-but": "a"}]}},
        detail(s=["a"]),
        False,
    ),
    (
        "anything-but prefix",
        {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}},
        EC2_EVENT,
        True,
    ),
    (
        "anything-but prefix no",
        {"detail": {"state": [{"anything-but": {"prefix": "run"}}]}},
        EC2_EVENT,
        False,
    ),
    (
        "anything-but suffix",
        {"detail": {"FileName": [{"anything-but": {"suffix": ".png"}}]}},
        detail(FileName="a.jpg"),
        True,
    ),
    (
        "anything-but suffix no",
        {"detail": {"FileName": [{"anything-but": {"suffix": ".png"}}]}},
        detail(FileName="a.png"),
        False,
    ),
    (
        "anything-but ignore case",
        {"detail": {"state": [{"anything-but": {"equals-ignore-case": "RUNNING"}}]}},
        EC2_EVENT,
        False,
    ),
    (
        "anything-but ignore case list",
        {"detail": {"state": [{"anything-but": {"equals-ignore-case": ["STOPPED", "X"]}}]}},
        EC2_EVENT,
        True,
    ),
    (
        "anything-but wildcard",
        {"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}},
        detail(FilePath="/usr/bin/x"),
        True,
    ),
    (
        "anything-but wildcard no",
        {"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}},
        detail(FilePath="/usr/lib/x"),
        False,
    ),
    # --- exists (leaf nodes only) ---
    ("exists true", {"detail": {"c-count": [{"exists": True}]}}, EC2_EVENT, True),
    ("exists true missing", {"detail": {"nope": [{"exists": True}]}}, EC2_EVENT, False),
    ("exists false missing", {"detail": {"nope": [{"exists": False}]}}, EC2_EVENT, True),
    ("exists false present", {"detail": {"c-count": [{"exists": False}]}}, EC2_EVENT, False),
    ("exists true on null", {"detail": {"c": [{"exists": True}]}}, detail(c=None), True),
    ("exists false on null", {"detail": {"c": [{"exists": False}]}}, detail(c=None), False),
    (
        "exists false on an intermediate node",
        {"detail": {"c-count": [{"exists": False}]}},
        detail(**{"c-count": {"c1": 100}}),
        True,
    ),
    (
        "exists true on an intermediate node",
        {"detail": {"c-count": [{"exists": True}]}},
        detail(**{"c-count": {"c1": 100}}),
        False,
    ),
    ("exists true on empty array", {"detail": {"a": [{"exists": True}]}}, detail(a=[]), False),
    ("exists false on empty array", {"detail": {"a": [{"exists": False}]}}, detail(a=[]), True),
    ("exists false on empty object", {"detail": {"o": [{"exists": False}]}}, detail(o={}), True),
    ("exists true on empty object", {"detail": {"o": [{"exists": True}]}}, detail(o={}), False),
    ("exists false, parent missing", {"detail": {"a": {"b": [{"exists": False}]}}}, detail(), True),
    # --- numeric (JSON numbers only) ---
    (
        "numeric ranges",
        {
            "detail": {
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"numeric": ["=", 3.018e2]}],
            }
        },
        EC2_EVENT,
        True,
    ),
    (
        "numeric upper bound excluded",
        {"detail": {"c-count": [{"numeric": ["<", 5]}]}},
        EC2_EVENT,
        False,
    ),
    (
        "numeric lower bound",
        {"detail": {"c-count": [{"numeric": [">=", 5, "<", 6]}]}},
        EC2_EVENT,
        True,
    ),
    ("numeric out of range", {"detail": {"c-count": [{"numeric": [">", 5]}]}}, EC2_EVENT, False),
    ("numeric on a string", {"detail": {"n": [{"numeric": [">", 0]}]}}, detail(n="5"), False),
    ("numeric on a boolean", {"detail": {"n": [{"numeric": [">", 0]}]}}, detail(n=True), False),
    ("numeric on missing", {"detail": {"n": [{"numeric": [">", 0]}]}}, detail(), False),
    (
        "numeric any array element",
        {"detail": {"n": [{"numeric": [">", 2]}]}},
        detail(n=[1, 3]),
        True,
    ),
    # --- cidr ---
    ("cidr", {"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, EC2_EVENT, True),
    ("cidr no", {"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}, EC2_EVENT, False),
    ("cidr ipv6", {"detail": {"ip": [{"cidr": "2001:db8::/32"}]}}, detail(ip="2001:db8::1"), True),
    ("cidr on a number", {"detail": {"ip": [{"cidr": "0.0.0.0/8"}]}}, detail(ip=5), False),
    ("cidr on a non-address", {"detail": {"ip": [{"cidr": "10.0.0.0/8"}]}}, detail(ip="x"), False),
    # --- several filters in one list: OR ---
    (
        "mixed list, second matches",
        {"detail": {"c-count": ["x", {"numeric": [">", 4]}]}},
        EC2_EVENT,
        True,
    ),
    ("mixed list, none match", {"detail": {"c-count": ["x", {"prefix": "5"}]}}, EC2_EVENT, False),
    # --- $or ---
    (
        "$or top level",
        {"$or": [{"source": ["aws.s3"]}, {"detail-type": [{"prefix": "EC2"}]}]},
        EC2_EVENT,
        True,
    ),
    ("$or none", {"$or": [{"source": ["aws.s3"]}, {"source": ["my.app"]}]}, EC2_EVENT, False),
    (
        "$or nested with and",
        {
            "source": ["aws.ec2"],
            "detail": {"$or": [{"c-count": [1]}, {"state": ["running"], "d-count": [3]}]},
        },
        EC2_EVENT,
        True,
    ),
    (
        "$or nested, and fails",
        {
            "source": ["aws.ec2"],
            "detail": {"$or": [{"c-count": [1]}, {"state": ["running"], "d-count": [4]}]},
        },
        EC2_EVENT,
        False,
    ),
]


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [pytest.param(p, e, x, id=name) for name, p, e, x in CASES],
)
def test_operator_table(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, event) is expected


# Arrays of objects: the array is "crushed" and a field inside it yields all its values.
EMPLOYEES = {
    "employees": [
        {"firstName": "John", "lastName": "Doe"},
        {"firstName": "Anna", "lastName": "Smith"},
        {"firstName": "Peter", "lastName": "Jones"},
    ]
}
EMPLOYEES_NESTED = {
    "employees": [
        [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}],
        [{"firstName": "Peter", "lastName": "Jones"}],
    ]
}
CONVERSATION = {
    "source": "aws.partner/genesys.com/cloud/org/topic",
    "detail-type": "v2.detail.events.conversation.{id}.customer.start",
    "detail": {
        "eventBody": {
            "conversationId": "c-1",
            "participants": [
                {"purpose": "agent", "sessions": [{"mediaType": "voice", "state": "connected"}]},
                {
                    "purpose": "customer",
                    "sessions": [
                        {"mediaType": "voice", "state": "disconnected", "count": 2},
                        {"mediaType": "message", "state": "connected"},
                    ],
                    "attributes": {"lang": "en"},
                },
            ],
            "communications": [{"id": "m-1", "mediaType": "VOICE"}],
        }
    },
}

ARRAY_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("ruler employees", {"employees": {"firstName": ["Anna"]}}, EMPLOYEES, True),
    ("ruler employees no", {"employees": {"firstName": ["Zoe"]}}, EMPLOYEES, False),
    ("ruler multi-level arrays", {"employees": {"firstName": ["Peter"]}}, EMPLOYEES_NESTED, True),
    (
        "communications mediaType",
        {"detail": {"eventBody": {"communications": {"mediaType": ["VOICE"]}}}},
        CONVERSATION,
        True,
    ),
    (
        "communications mediaType no",
        {"detail": {"eventBody": {"communications": {"mediaType": ["CHAT"]}}}},
        CONVERSATION,
        False,
    ),
    (
        "array in object in array",
        {"detail": {"eventBody": {"participants": {"sessions": {"mediaType": ["message"]}}}}},
        CONVERSATION,
        True,
    ),
    (
        "array in object in array no",
        {"detail": {"eventBody": {"participants": {"sessions": {"mediaType": ["email"]}}}}},
        CONVERSATION,
        False,
    ),
    (
        "object in array element",
        {"detail": {"eventBody": {"participants": {"attributes": {"lang": ["en"]}}}}},
        CONVERSATION,
        True,
    ),
    (
        "numeric inside arrays of objects",
        {
            "detail": {
                "eventBody": {"participants": {"sessions": {"count": [{"numeric": [">", 1]}]}}}
            }
        },
        CONVERSATION,
        True,
    ),
    (
        "exists inside arrays of objects",
        {"detail": {"eventBody": {"participants": {"sessions": {"count": [{"exists": True}]}}}}},
        CONVERSATION,
        True,
    ),
    (
        "exists false inside arrays of objects",
        {"detail": {"eventBody": {"participants": {"sessions": {"count": [{"exists": False}]}}}}},
        CONVERSATION,
        False,
    ),
    (
        "prefix inside arrays of objects, with and",
        {
            "source": [{"prefix": "aws.partner/genesys.com"}],
            "detail": {"eventBody": {"participants": {"purpose": ["customer"]}}},
        },
        CONVERSATION,
        True,
    ),
]


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [pytest.param(p, e, x, id=name) for name, p, e, x in ARRAY_CASES],
)
def test_arrays_of_objects(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, event) is expected


def test_fields_from_different_array_elements_match_together() -> None:
    # The flattened ("crushed") view: documented as the one difference from Ruler's
    # array-consistent mode, which would refuse this match.
    pattern = {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}
    assert matches(pattern, EMPLOYEES) is True


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param({}, id="empty pattern"),
        pytest.param({"source": "aws.ec2"}, id="value not in a list"),
        pytest.param({"source": []}, id="empty list"),
        pytest.param({"detail": {}}, id="empty object"),
        pytest.param({"source": [{"prefixx": "aws"}]}, id="unknown operator"),
        pytest.param({"$or": [{"source": [{"startswith": "a"}]}, {"id": ["1"]}]}, id="in $or"),
    ],
)
def test_invalid_patterns_are_refused(pattern: dict[str, Any]) -> None:
    with pytest.raises(InvalidPatternError):
        validate(pattern)
    with pytest.raises(InvalidPatternError):
        matches(pattern, EC2_EVENT)


def test_matching_does_not_change_the_event() -> None:
    event = {"detail": {"a": [{"b": 1}], "c": {}}}
    matches({"detail": {"a": {"b": [1]}}}, event)
    assert event == {"detail": {"a": [{"b": 1}], "c": {}}}


# Each mended gap, with moto's own answer: if an upgrade of moto fixes one, this test
# says so, and the mend in localdev/eventpattern.py can go.
MOTO_GAPS: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    (
        "array of objects",
        {"detail": {"eventBody": {"communications": {"mediaType": ["VOICE"]}}}},
        CONVERSATION,
        True,
    ),
    ("empty array is absent", {"detail": {"a": [{"exists": False}]}}, detail(a=[]), True),
    ("empty object is absent", {"detail": {"o": [{"exists": True}]}}, detail(o={}), False),
    ("true is not 1", {"detail": {"b": [True]}}, detail(b=1), False),
    ("anything-but 1 keeps true", {"detail": {"b": [{"anything-but": 1}]}}, detail(b=True), True),
    ("numeric on a boolean", {"detail": {"n": [{"numeric": [">", 0]}]}}, detail(n=True), False),
    ("cidr on a number", {"detail": {"ip": [{"cidr": "0.0.0.0/8"}]}}, detail(ip=5), False),
]


@pytest.mark.parametrize(
    ("pattern", "event", "aws_answer"),
    [pytest.param(p, e, x, id=name) for name, p, e, x in MOTO_GAPS],
)
def test_moto_alone_gets_these_wrong(
    pattern: dict[str, Any], event: dict[str, Any], aws_answer: bool
) -> None:
    import json

    from moto.events.models import EventPattern

    assert matches(pattern, event) is aws_answer
    assert EventPattern.load(json.dumps(pattern)).matches_event(event) is not aws_answer


def test_moto_alone_accepts_unknown_operators() -> None:
    import json

    from moto.events.models import EventPattern

    pattern = {"source": [{"prefixx": "nothing"}]}
    assert EventPattern.load(json.dumps(pattern)).matches_event(EC2_EVENT) is True
    with pytest.raises(InvalidPatternError):
        matches(pattern, EC2_EVENT)
