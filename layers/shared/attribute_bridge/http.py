"""One keep-alive HTTP connection pool per container, shared by every outbound call."""

from __future__ import annotations

import ipaddress
import os
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import requests


@cache
def shared_session() -> requests.Session:
    """A requests Session reused across invocations: TLS handshakes happen once per host.

    max_retries=0: every retry is decided by this project, never hidden in the pool.
    requests is imported here, not at module import: the API's sync route never needs it."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=10, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_https(url: str, what: str) -> str:
    """HTTPS everywhere but loopback (the local emulator and stub) and the hosts a local
    configuration lists in ALLOW_HTTP_HOSTS (`sam local invoke` reaching the host machine
    as host.docker.internal). A deployed function pointed at plain http refuses to start."""
    parts = urlsplit(url)
    allowed = {h.strip() for h in os.environ.get("ALLOW_HTTP_HOSTS", "").split(",") if h.strip()}
    if parts.scheme == "https" or (
        parts.scheme == "http" and (is_loopback_url(url) or parts.hostname in allowed)
    ):
        return url.rstrip("/")
    raise ValueError(f"{what} must be an https:// URL (http is allowed on loopback only): {url}")
