"""AWS adapters: SSM parameters, TokenRefresher invoked for a token, the token-minting lease
(DynamoDB, for the benchmarks of that design), EventBridge.

boto3 and its clients are created on first use, once per container: importing boto3 and
building three clients costs ~0.28 s and ~60 MB here, which a handler module's import
must not pay (tests and `sam local`-style runs that never touch AWS skip it entirely).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from attribute_bridge.errors import PublishFailed, TokenUnavailable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    from attribute_bridge.budget import Budget

logger = Logger(child=True)


@cache
def aws_client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    # Short timeouts and the SDK's standard retry mode: AWS calls share the invocation's
    # budget with Genesys calls. boto3's default Session for every client: a Session per
    # client loads botocore's shared data again (~0.1 s more per cold start: benchmarks/).
    config = Config(
        connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}
    )
    return boto3.client(service, config=config)


def _error_code(error: Exception) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class ParameterMissing(KeyError):
    """The SSM parameter does not exist (yet)."""


class ParameterStore:
    """SSM Parameter Store through Powertools Parameters (in-memory cache with max_age)."""

    def __init__(self, provider: SSMProvider | None = None, kms_key_id: str | None = None) -> None:
        self._provider = provider
        self._kms_key_id = kms_key_id or None

    @property
    def provider(self) -> SSMProvider:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SSMProvider

            self._provider = SSMProvider(boto3_client=aws_client("ssm"))
        return self._provider

    def get_secure(self, name: str, max_age: int, force: bool = False) -> str:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = self.provider.get(name, max_age=max_age, decrypt=True, force_fetch=force)
        except GetParameterError as error:
            if "ParameterNotFound" in str(error):
                raise ParameterMissing(name) from None
            raise
        return str(value)

    def put_secure(self, name: str, value: str) -> None:
        provider: Any = self.provider  # its overloads insist on a KMS key; None = aws/ssm
        provider.set(
            name, value, overwrite=True, parameter_type="SecureString", kms_key_id=self._kms_key_id
        )
        # The next read must see this value, not the cached one.
        provider.clear_cache()


class LambdaTokenRefresher:
    """TokenRefresher invoked synchronously (RequestResponse) for a token.

    Its client does not retry: a throttle (TooManyRequestsException: reserved concurrency
    1, another invocation is minting) goes straight back to the TokenStore, which waits for
    that token in SSM instead of queueing more invokes."""

    def __init__(self, function_name: str, client: Any = None) -> None:
        self._function = function_name
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or _lambda_client()

    def request_token(self, request: Mapping[str, Any], budget: Budget) -> Mapping[str, Any]:
        from attribute_bridge.token_store import RefresherBusy, TokenPathMisconfigured

        try:
            response = self.client.invoke(
                FunctionName=self._function,
                InvocationType="RequestResponse",
                Payload=json.dumps(request).encode(),
            )
        except Exception as error:
            code = _error_code(error)
            if code == "TooManyRequestsException":
                raise RefresherBusy(self._function) from None
            if code in ("AccessDeniedException", "ResourceNotFoundException"):
                raise TokenPathMisconfigured(f"cannot invoke {self._function}: {code}") from None
            raise TokenUnavailable(f"invoking {self._function} failed: {code or error}") from None
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            # Unhandled in the refresher (token endpoint down, SSM unavailable): transient.
            raise TokenUnavailable(f"{self._function} failed: {payload[:200]!r}")
        answer = json.loads(payload or b"{}")
        return answer if isinstance(answer, dict) else {}


@cache
def _lambda_client() -> Any:
    import boto3
    from botocore.config import Config

    # No retries (see LambdaTokenRefresher); the read timeout covers TokenRefresher's own
    # Timeout (10 s) so that a slow mint is waited for, not abandoned and asked again.
    config = Config(connect_timeout=2, read_timeout=12, retries={"total_max_attempts": 1})
    return boto3.client("lambda", config=config)


class TokenLease:
    """A short lease (a conditional DynamoDB write) so that one container mints a token
    while the others wait for it to appear in SSM."""

    def __init__(
        self, table_name: str, key: str = "genesys-token-mint", client: Any = None
    ) -> None:
        self._table = table_name
        self._key = key
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws_client("dynamodb")

    def acquire(self, owner: str, seconds: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        try:
            self.client.put_item(
                TableName=self._table,
                Item={
                    "id": {"S": self._key},
                    "owner": {"S": owner},
                    "lease_until": {"N": f"{now + seconds:.3f}"},
                    "expiration": {"N": str(int(now + seconds + 3600))},  # table TTL
                },
                ConditionExpression="attribute_not_exists(id) OR lease_until < :now",
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
            )
        except Exception as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, owner: str) -> None:
        try:
            self.client.delete_item(
                TableName=self._table,
                Key={"id": {"S": self._key}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except Exception as error:
            # If it expired and someone else holds it now, it is theirs to release.
            if _error_code(error) != "ConditionalCheckFailedException":
                raise


class EventPublisher:
    """PutEvents on the app's bus. Failed entries are retried; if some still fail the
    call raises, so the invocation fails and its event is retried or dead-lettered."""

    def __init__(
        self,
        bus_name: str,
        source: str,
        client: Any = None,
        attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._bus = bus_name
        self._source = source
        self._client = client
        self._attempts = attempts
        self._sleep = sleep

    @property
    def client(self) -> Any:
        return self._client or aws_client("events")

    def publish(self, detail_type: str, details: Sequence[Mapping[str, Any]]) -> None:
        pending = [
            {
                "EventBusName": self._bus,
                "Source": self._source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, separators=(",", ":")),
            }
            for detail in details
        ]
        for attempt in range(1, self._attempts + 1):
            if not pending:
                return
            response = self.client.put_events(Entries=pending)
            if not response.get("FailedEntryCount"):
                return
            failed = [
                (entry, result)
                for entry, result in zip(pending, response["Entries"], strict=True)
                if result.get("ErrorCode")
            ]
            codes = sorted({str(result.get("ErrorCode")) for _, result in failed})
            logger.warning(
                "PutEvents entries failed",
                extra={"failed": len(failed), "codes": codes, "attempt": attempt},
            )
            pending = [entry for entry, _ in failed]
            if attempt < self._attempts:
                self._sleep(0.1 * 2**attempt)
        if pending:
            raise PublishFailed(
                f"{len(pending)} {detail_type} event(s) not accepted by EventBridge"
            )
