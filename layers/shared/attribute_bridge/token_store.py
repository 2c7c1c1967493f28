"""The Genesys OAuth token, kept in an SSM SecureString and shared by every function.

- Readers take it from SSM through Powertools Parameters (cached in memory for
  `cache_seconds`): in steady state no token request and at most one SSM read per cache
  period per container.
- TokenRefresher is the only writer, and the only function that may read the client id
  and secret: on a schedule it mints ahead of expiry.
- When the stored token is missing, about to expire or revoked (401 while it looked
  fresh), a reader asks TokenRefresher for one (a synchronous invoke) and reads SSM again.
  TokenRefresher's reserved concurrency of 1 makes minting single-flight: 50 cold
  containers mint once. An invoke that is throttled means another one is minting right
  now, so the reader waits for the new value in SSM (and asks again if none comes).
- Without a refresher (scripts, benchmarks of the older design), a store mints itself,
  under a lease when it has one.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger

from attribute_bridge.budget import Budget
from attribute_bridge.errors import (
    BridgeError,
    ConfigurationError,
    TokenUnavailable,
    Unauthorized,
)

if TYPE_CHECKING:
    import requests  # imported when a session is built (attribute_bridge.http)

logger = Logger(child=True)


@dataclass(frozen=True)
class StoredToken:
    access_token: str
    token_type: str
    expires_at: float  # epoch seconds; the SDK drops `expires_in`, we keep it

    def usable(self, now: float, skew: float) -> bool:
        return self.expires_at - skew > now

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "token_type": self.token_type,
                "expires_at": self.expires_at,
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> StoredToken:
        data = json.loads(raw)
        return cls(
            access_token=str(data["access_token"]),
            token_type=str(data.get("token_type", "bearer")),
            expires_at=float(data["expires_at"]),
        )

    def __repr__(self) -> str:  # never print the token itself
        return f"StoredToken(token_type={self.token_type!r}, expires_at={self.expires_at})"


class SecureParameters(Protocol):
    def get_secure(self, name: str, max_age: int, force: bool = False) -> str: ...

    def put_secure(self, name: str, value: str) -> None: ...


def fingerprint(access_token: str) -> str:
    """Names a token without revealing it (a reader tells the refresher which one Genesys
    refused this way, never by the token itself)."""
    return hashlib.sha256(access_token.encode()).hexdigest()[:16]


class RefresherBusy(Exception):
    """TokenRefresher is already running (its invoke was throttled): a token is on its way."""


class TokenPathMisconfigured(ConfigurationError):
    """The refresher cannot be invoked at all (no permission, no such function), or does
    not know the client asked for: a configuration error, not a transient."""


class MintRefused(Unauthorized, ConfigurationError):
    """TokenRefresher could not mint for a configuration reason (the token endpoint refused
    the client credentials, or a credential parameter does not exist): reported as a
    configuration error by the function that asked, not retried."""


class TokenRefresher(Protocol):
    def request_token(self, request: Mapping[str, Any], budget: Budget) -> Mapping[str, Any]:
        """Invoke TokenRefresher synchronously with `request`; its result. Raises
        RefresherBusy when it is already running, TokenUnavailable when it failed."""
        ...


class Lease(Protocol):
    def acquire(self, owner: str, seconds: float) -> bool: ...

    def release(self, owner: str) -> None: ...


class ClientCredentialsMinter:
    """POST {login}/oauth/token with the client id and secret (read from SSM SecureString
    parameters whose names are settings). Done here rather than with the SDK's
    get_client_credentials_token, which discards `expires_in`."""

    def __init__(
        self,
        login_url: str,
        parameters: SecureParameters,
        client_id_parameter: str,
        client_secret_parameter: str,
        session: requests.Session,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = f"{login_url.rstrip('/')}/oauth/token"
        self._parameters = parameters
        self._id_parameter = client_id_parameter
        self._secret_parameter = client_secret_parameter
        self._session = session
        self._clock = clock

    def mint(self, budget: Budget) -> StoredToken:
        import requests  # the session's own: already loaded

        try:
            client_id = self._parameters.get_secure(self._id_parameter, max_age=300)
            client_secret = self._parameters.get_secure(self._secret_parameter, max_age=300)
        except KeyError as missing:  # aws.ParameterMissing: no such SSM parameter
            raise ConfigurationError(
                f"the OAuth client credential parameter {missing} does not exist in SSM: "
                "create it as a SecureString (README: Deploy, More than one OAuth client)"
            ) from None
        timeout = max(0.1, min(5.0, budget.remaining()))
        try:
            response = self._session.post(
                self._url,
                auth=(client_id, client_secret),
                data={"grant_type": "client_credentials"},
                timeout=(min(3.05, timeout), timeout),
                allow_redirects=False,
            )
        except (requests.Timeout, requests.ConnectionError) as error:
            raise TokenUnavailable(f"token endpoint unreachable: {type(error).__name__}") from None
        if response.status_code in (400, 401, 403):
            # Wrong credentials or grant: retrying will not help; say so loudly.
            raise Unauthorized(
                f"token endpoint refused the client credentials ({response.status_code})",
                response.status_code,
            )
        if response.status_code != 200:
            raise TokenUnavailable(f"token endpoint answered {response.status_code}")
        try:
            body = response.json()
            token = StoredToken(
                access_token=str(body["access_token"]),
                token_type=str(body.get("token_type", "bearer")),
                expires_at=self._clock() + float(body["expires_in"]),
            )
        except (ValueError, KeyError, TypeError):
            raise TokenUnavailable("token endpoint answered an unreadable body") from None
        logger.info("Minted a Genesys token", extra={"expires_at": token.expires_at})
        return token


class Minter(Protocol):
    def mint(self, budget: Budget) -> StoredToken: ...


@dataclass(frozen=True)
class TokenSettings:
    parameter_name: str
    cache_seconds: int = 300  # SSM read at most once per this, per container
    expiry_skew_seconds: float = 300  # readers stop using a token this long before expiry
    refresh_ahead_seconds: float = 3600  # the refresher replaces a token this long before
    lease_seconds: float = 10  # a crashed minter blocks the others at most this long


class TokenStore:
    """The TokenProvider every Genesys call uses (with a `refresher`), and TokenRefresher's
    writer (with a `minter`)."""

    def __init__(
        self,
        settings: TokenSettings,
        parameters: SecureParameters,
        lease: Lease | None = None,
        minter: Minter | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        refresher: TokenRefresher | None = None,
        client: str = "pipeline",
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if (minter is None) == (refresher is None):
            raise ValueError("a TokenStore either mints (minter) or asks the refresher")
        self._settings = settings
        self._parameters = parameters
        self._lease = lease
        self._minter = minter
        self._refresher = refresher
        self._client = client  # which Genesys OAuth client's token (the API may have its own)
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._owner = str(uuid.uuid4())
        self._rejected: set[str] = set()
        self._last_good: StoredToken | None = None
        self.minted = 0  # tokens this container minted (for logs and tests)
        self.asked = 0  # invokes of the refresher that ran (not throttled)

    def access_token(self, budget: Budget) -> str:
        stored = self._read(force=False)
        if stored is not None and self._usable(stored):
            return stored.access_token
        return self._obtain(budget, rejected=None).access_token

    def reject(self, token: str, budget: Budget) -> None:
        """Genesys said 401 to `token`: never use it again; read SSM afresh (another
        container may have replaced it) or get a new one."""
        self._rejected.add(token)
        if self._usable(self._read(force=True)):
            return
        self._obtain(budget, rejected=fingerprint(token))

    def refresh(
        self, budget: Budget, force: bool = False, rejected: str | None = None
    ) -> tuple[bool, StoredToken]:
        """For TokenRefresher: mint when the stored token is missing, expires within
        `refresh_ahead_seconds`, is the one a reader says Genesys refused (`rejected`, its
        fingerprint), or always if forced. Returns (minted, token)."""
        stored = self._read(force=True)
        if stored is not None and rejected and fingerprint(stored.access_token) == rejected:
            self._rejected.add(stored.access_token)
        ahead = self._settings.refresh_ahead_seconds

        def fresh_enough(token: StoredToken | None) -> bool:
            return (
                not force
                and token is not None
                and token.access_token not in self._rejected
                and token.usable(self._clock(), ahead)
            )

        if stored is not None and fresh_enough(stored):
            return False, stored
        minted_before = self.minted
        token = self._mint_under_lease(fresh_enough, budget, force_first=force)
        return self.minted > minted_before, token

    def _obtain(self, budget: Budget, rejected: str | None) -> StoredToken:
        if self._refresher is not None:
            return self._ask_refresher(self._refresher, budget, rejected)
        return self._mint_under_lease(self._usable, budget)

    def _usable(self, token: StoredToken | None) -> bool:
        return (
            token is not None
            and token.access_token not in self._rejected
            and token.usable(self._clock(), self._settings.expiry_skew_seconds)
        )

    def _read(self, force: bool) -> StoredToken | None:
        from attribute_bridge.aws import ParameterMissing

        try:
            raw = self._parameters.get_secure(
                self._settings.parameter_name, max_age=self._settings.cache_seconds, force=force
            )
            token = StoredToken.from_json(raw)
        except ParameterMissing:
            return None
        except (ValueError, KeyError, TypeError):
            logger.error("The stored Genesys token is unreadable; it will be replaced")
            return None
        except Exception as error:  # SSM throttled or unreachable
            if self._usable(self._last_good):
                logger.warning(
                    "SSM unavailable; using the cached token until it expires",
                    extra={"error": type(error).__name__},
                )
                return self._last_good
            raise TokenUnavailable(f"SSM unavailable and no cached token: {error}") from None
        self._last_good = token
        return token

    def _ask_refresher(
        self, refresher: TokenRefresher, budget: Budget, rejected: str | None
    ) -> StoredToken:
        request: dict[str, Any] = {"client": self._client}
        if rejected:
            request["rejected"] = rejected
        while True:
            try:
                answer = refresher.request_token(request, budget)
            except RefresherBusy:
                # Another container's invoke is minting: wait for its token in SSM, and
                # ask again only if it takes long (that mint may have failed).
                current = self._wait_for_ssm(budget)
                if current is not None:
                    return current
                continue
            self.asked += 1
            outcome = answer.get("outcome")
            if outcome in ("token_minted", "token_fresh"):
                current = self._read(force=True)
                if current is not None and self._usable(current):
                    return current
                raise TokenUnavailable("TokenRefresher answered, but SSM holds no usable token")
            if outcome == "failed":
                # TokenRefresher dead-lettered it: the token endpoint refused the client
                # credentials, or they are not in SSM. Retrying will not help.
                raise MintRefused(f"TokenRefresher could not mint: {answer.get('error')}")
            if outcome == "rejected":
                # It does not know this client: the functions' and its environments differ.
                raise TokenPathMisconfigured(
                    f"TokenRefresher refused the request for client {self._client!r}: "
                    f"{answer.get('error')}"
                )
            raise TokenUnavailable(f"TokenRefresher answered {outcome!r}")

    def _wait_for_ssm(self, budget: Budget, polls: int = 5) -> StoredToken | None:
        """Poll SSM with backoff (50 ms doubling, ~1.5 s in all) and jitter, so that 50
        waiting containers do not read in step; an SSM throttle here is one more wait."""
        for attempt in range(polls):
            wait = 0.05 * 2**attempt * (0.5 + self._jitter())
            if not budget.allows(wait):
                raise TokenUnavailable("timed out waiting for the token being minted")
            self._sleep(wait)
            try:
                current = self._read(force=True)
            except TokenUnavailable:
                continue  # SSM throttled too (many waiters): keep waiting
            if current is not None and self._usable(current):
                return current
        return None

    def _mint_under_lease(
        self,
        good_enough: Callable[[StoredToken | None], bool],
        budget: Budget,
        force_first: bool = False,
    ) -> StoredToken:
        if self._minter is None:
            raise TokenPathMisconfigured("this TokenStore does not mint")
        if self._lease is None:
            # TokenRefresher: Lambda runs one invocation at a time (reserved concurrency 1).
            return self._mint(self._minter, good_enough, budget, force_first)
        wait = 0.05
        while True:
            if self._lease.acquire(self._owner, self._settings.lease_seconds):
                try:
                    return self._mint(self._minter, good_enough, budget, force_first)
                finally:
                    self._lease.release(self._owner)
            # Another container is minting: wait for its token to appear in SSM.
            if not budget.allows(wait):
                raise TokenUnavailable("timed out waiting for another container's new token")
            self._sleep(wait)
            wait = min(wait * 2, 1.0)
            current = self._read(force=True)
            if current is not None and good_enough(current):
                return current

    def _mint(
        self,
        minter: Minter,
        good_enough: Callable[[StoredToken | None], bool],
        budget: Budget,
        force_first: bool,
    ) -> StoredToken:
        # Someone may have written a good token just before we got here.
        current = self._read(force=True)
        if current is not None and good_enough(current) and not force_first:
            return current
        token = minter.mint(budget)
        self.minted += 1
        self._parameters.put_secure(self._settings.parameter_name, token.to_json())
        self._last_good = token
        return token


def refresh_each(
    clients: tuple[str, ...],
    store_for: Callable[[str], TokenStore],
    budget: Budget,
    force: bool = False,
    rejected: str | None = None,
) -> dict[str, Any]:
    """TokenRefresher's work: refresh every client's token in turn. One client's failure
    (its secret missing from SSM, say) does not leave the others unrefreshed: each failure
    is logged with the client's name, and the first is raised once all were tried, so the
    invocation is reported (a configuration error dead-lettered, a transient retried)."""
    results: list[tuple[bool, StoredToken]] = []
    failures: list[BridgeError] = []
    for name in clients:
        try:
            results.append(store_for(name).refresh(budget, force=force, rejected=rejected))
        except BridgeError as error:
            logger.warning(
                "Could not refresh this OAuth client's token; refreshing the others",
                extra={"client": name, "error": str(error)},
            )
            failures.append(error)
    if failures:
        raise failures[0]
    return {
        "outcome": "token_minted" if any(minted for minted, _ in results) else "token_fresh",
        "expiresAt": min(token.expires_at for _, token in results),
    }
