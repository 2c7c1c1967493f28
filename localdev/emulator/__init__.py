"""A local Genesys Cloud emulator: OAuth client credentials and the conversation /
participant-attribute endpoints of ConversationsApi, with rate limits and fault injection.

See docs/emulator.md.
"""

from __future__ import annotations

from localdev.emulator.client import EmulatorClient
from localdev.emulator.config import EmulatorConfig
from localdev.emulator.server import GenesysEmulator, serve_main

__all__ = ["EmulatorClient", "EmulatorConfig", "GenesysEmulator", "serve_main"]
