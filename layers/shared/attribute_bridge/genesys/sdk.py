"""Loads the parts of the official Genesys SDK this project uses, without its eager import.

`import PureCloudPlatformClientV2` runs a package `__init__` that imports ~6,650 model
modules (2-2.5 s and 213 MB here; 9 s without .pyc) and starts a watchdog thread that
watches the home directory. We need `ApiClient`, `ApiException` and a handful of models,
so the package and its `models` subpackage are registered as light modules whose
attributes load on first use. `ApiClient` resolves response classes by name on
`PureCloudPlatformClientV2.models`, so deserialization still yields the SDK's own models.

The approach relies on the SDK's layout; `check_sdk_layout()` (run by the tests) fails
loudly when an upgrade changes it. The SDK is pinned in layers/shared/requirements.txt.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import re
import sys
import types
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

SDK_PACKAGE = "PureCloudPlatformClientV2"
PINNED_SDK_VERSION = "269.0.0"
_MODEL_IMPORT = re.compile(r"^from \.(\w+) import (\w+)$", re.MULTILINE)


class SdkLayoutChanged(RuntimeError):
    """The installed SDK no longer looks like the one the lazy loader was written for."""


class _LazyModels(types.ModuleType):
    """`PureCloudPlatformClientV2.models` whose model classes import on first access."""

    def __getattr__(self, name: str) -> Any:
        module_name = _model_modules(self.__path__[0]).get(name)
        if module_name is None:
            raise AttributeError(f"{SDK_PACKAGE}.models has no model {name!r}")
        model = getattr(importlib.import_module(f"{self.__name__}.{module_name}"), name)
        setattr(self, name, model)  # later lookups skip __getattr__
        return model


@cache
def _model_modules(models_dir: str) -> dict[str, str]:
    """Model class name -> module name, read from the SDK's own models/__init__.py."""
    source = (Path(models_dir) / "__init__.py").read_text(encoding="utf-8")
    return {cls: module for module, cls in _MODEL_IMPORT.findall(source)}


def _register_light_packages() -> None:
    if SDK_PACKAGE in sys.modules:
        return  # already imported (eagerly by someone else, or by us): both work
    spec = importlib.util.find_spec(SDK_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SdkLayoutChanged(f"{SDK_PACKAGE} is not installed as a package")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    package = types.ModuleType(SDK_PACKAGE, "Genesys Cloud SDK, loaded lazily")
    package.__path__ = [str(package_dir)]
    package.__file__ = str(package_dir / "__init__.py")
    models = _LazyModels(f"{SDK_PACKAGE}.models")
    models.__path__ = [str(package_dir / "models")]
    models.__file__ = str(package_dir / "models" / "__init__.py")
    package.models = models  # type: ignore[attr-defined]
    sys.modules[SDK_PACKAGE] = package
    sys.modules[f"{SDK_PACKAGE}.models"] = models


_WATCHDOG_OBSERVERS = "watchdog.observers"


class _FileWatcherNeverStarted:
    """Stands in for watchdog's `Observer`, which the SDK's configuration module imports
    at its top but only instantiates to watch its config file, which this layer never does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise SdkLayoutChanged("the SDK tried to start its config-file watcher")


@contextlib.contextmanager
def _watchdog_observers_not_imported() -> Iterator[None]:
    """Importing `watchdog.observers` (its inotify observer, ctypes) costs ~10 ms of every
    cold start for a watcher that never runs: a placeholder serves the SDK's import, and
    is taken out again so that anyone else importing watchdog gets the real one."""
    if _WATCHDOG_OBSERVERS in sys.modules:
        yield
        return
    placeholder = types.ModuleType(_WATCHDOG_OBSERVERS, "placeholder; see attribute_bridge")
    placeholder.Observer = _FileWatcherNeverStarted  # type: ignore[attr-defined]
    sys.modules[_WATCHDOG_OBSERVERS] = placeholder
    try:
        yield
    finally:
        if sys.modules.get(_WATCHDOG_OBSERVERS) is placeholder:
            del sys.modules[_WATCHDOG_OBSERVERS]


def _configuration_without_file_watcher() -> None:
    """Create the SDK's Configuration singleton with live reload off.

    Its constructor would start a watchdog thread watching ~/.genesyscloudpython (or the
    nearest existing parent, recursively): wasted work in Lambda, where configuration
    comes from the environment, not from a file.
    """
    with _watchdog_observers_not_imported():
        configuration = importlib.import_module(f"{SDK_PACKAGE}.configuration")
    factory = configuration.Configuration
    cells = dict(zip(factory.__code__.co_freevars, factory.__closure__ or (), strict=True))
    if "cls" not in cells or "instances" not in cells:
        raise SdkLayoutChanged("Configuration is no longer the closure-based singleton")
    cls, instances = cells["cls"].cell_contents, cells["instances"].cell_contents
    if cls in instances:
        return
    read_file = cls._update_config_from_file

    def no_config_file(self: Any) -> None:
        self.live_reload_config = False

    cls._update_config_from_file = no_config_file
    try:
        instances[cls] = cls()
    finally:
        cls._update_config_from_file = read_file


@cache
def load_sdk() -> types.SimpleNamespace:
    """ApiClient, ApiException, AbstractHttpClient and the lazy models module."""
    _register_light_packages()
    _configuration_without_file_watcher()
    api_client = importlib.import_module(f"{SDK_PACKAGE}.api_client")
    rest = importlib.import_module(f"{SDK_PACKAGE}.rest")
    http_client = importlib.import_module(f"{SDK_PACKAGE}.abstract_http_client")
    return types.SimpleNamespace(
        ApiClient=api_client.ApiClient,
        ApiException=rest.ApiException,
        AbstractHttpClient=http_client.AbstractHttpClient,
        models=sys.modules[f"{SDK_PACKAGE}.models"],
    )


def check_sdk_layout() -> None:
    """Raise SdkLayoutChanged if the installed SDK breaks an assumption made above."""
    from importlib.metadata import version

    installed = version(SDK_PACKAGE)
    if installed != PINNED_SDK_VERSION:
        raise SdkLayoutChanged(
            f"{SDK_PACKAGE} {installed} installed, the lazy loader was checked against "
            f"{PINNED_SDK_VERSION}: rerun tests/unit/test_sdk_loader.py and update the pin"
        )
    sdk = load_sdk()
    for name in ("CallConversation", "MessageConversation", "Conversation"):
        getattr(sdk.models, name)
    api_client_source = Path(sys.modules[sdk.ApiClient.__module__].__file__ or "").read_text()
    if "eval('models.' + klass)" not in api_client_source:
        raise SdkLayoutChanged("ApiClient no longer resolves models by name on `models`")
