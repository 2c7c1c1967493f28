"""Local AWS keeps DynamoDB's promise the token lease depends on: one conditional write
wins, however many containers race for it."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import boto3
import pytest
from attribute_bridge.aws import TokenLease

from localdev.moto_aws import local_aws

CONTAINERS = 50
TRIALS = 20


@pytest.fixture
def lease_table() -> Iterator[object]:
    with local_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName="lease",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb


@pytest.fixture
def eager_thread_switching() -> Iterator[None]:
    # Switch threads as often as possible, so that a check-then-write race shows at once
    # (without the fix this gave up to 9 winners of 50 within a few trials).
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def lease_winners(lease: TokenLease, containers: int) -> list[int]:
    """Let `containers` threads ask for the lease at the same instant; who got it."""
    winners: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(containers)

    def race(owner: int) -> None:
        try:
            start.wait()
            if lease.acquire(str(owner), seconds=10):
                winners.append(owner)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(containers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and not any(thread.is_alive() for thread in threads), errors
    return winners


@pytest.mark.usefixtures("eager_thread_switching")
def test_one_of_fifty_racing_containers_gets_the_lease(lease_table: object) -> None:
    for trial in range(TRIALS):
        lease = TokenLease("lease", key=f"race-{trial}", client=lease_table)

        winners = lease_winners(lease, CONTAINERS)

        assert len(winners) == 1, f"trial {trial}: {len(winners)} containers got the lease"
