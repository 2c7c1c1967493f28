"""moto as this project's local AWS, with DynamoDB's conditional writes made atomic.

moto evaluates a `ConditionExpression` and then writes the item, in two steps and under
no lock. Real DynamoDB applies each conditional write atomically, and the token lease
relies on that: of 50 cold containers asking at once, exactly one may win. Locally the
containers are threads, so two of them could both pass moto's check and both mint (seen
in CI). Serializing moto's item writes gives local runs AWS's semantics.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

# The DynamoDB backend methods that check a condition before they write.
_CONDITIONAL_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_write_lock = threading.RLock()


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def write(*args: Any, **kwargs: Any) -> Any:
        with _write_lock:
            return method(*args, **kwargs)

    return write


@contextlib.contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    """Within this block, moto's DynamoDB conditional writes are atomic (in-process moto
    and a ThreadedMotoServer started in this process alike)."""
    from moto.dynamodb.models import DynamoDBBackend

    originals = {name: getattr(DynamoDBBackend, name) for name in _CONDITIONAL_WRITES}
    for name, method in originals.items():
        setattr(DynamoDBBackend, name, _serialized(method))
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(DynamoDBBackend, name, method)


@contextlib.contextmanager
def local_aws() -> Iterator[None]:
    """`moto.mock_aws()`, with the fidelity fix above."""
    from moto import mock_aws

    with mock_aws(), atomic_dynamodb_writes():
        yield
