"""Genesys region setting -> API and login base URLs."""

from __future__ import annotations

from dataclasses import dataclass

from attribute_bridge.http import require_https


@dataclass(frozen=True)
class GenesysEndpoints:
    api_url: str
    login_url: str


def resolve_endpoints(region: str) -> GenesysEndpoints:
    """Accepts a region domain (`mypurecloud.com`, `mypurecloud.de`, `usw2.pure.cloud`), an
    SDK region name (`us_east_1`, `eu_central_1`), or a full base URL (how the local
    emulator is reached). Login host = API host with `api.` -> `login.`, as the SDK does;
    a URL without `//api.` is used for both."""
    region = region.strip()
    if not region:
        raise ValueError("GENESYS_REGION is empty")
    if "://" in region:
        api_url = require_https(region, "GENESYS_REGION")
    elif "." in region:
        api_url = f"https://api.{region.removeprefix('api.').rstrip('/')}"
    else:
        api_url = _sdk_region_host(region)
    return GenesysEndpoints(api_url=api_url, login_url=api_url.replace("//api.", "//login.", 1))


def _sdk_region_host(name: str) -> str:
    # The SDK's own region table (its module imports nothing but `enum`); load_sdk() first
    # so that importing it does not run the SDK's eager package __init__.
    import importlib

    from attribute_bridge.genesys.sdk import SDK_PACKAGE, load_sdk

    load_sdk()
    hosts = importlib.import_module(f"{SDK_PACKAGE}.purecloud_region_hosts")
    PureCloudRegionHosts = hosts.PureCloudRegionHosts

    try:
        return str(PureCloudRegionHosts[name].get_api_host())
    except KeyError:
        known = ", ".join(r.name for r in PureCloudRegionHosts)
        raise ValueError(
            f"unknown Genesys region {name!r}; use a domain or one of: {known}"
        ) from None
