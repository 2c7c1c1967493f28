"""Shared code of the participant-attributes functions: domain logic and the adapters
(Genesys Cloud, SSM token store, EventBridge, the external system)."""
