"""Genesys Cloud adapter: the official SDK's ApiClient and models, with retries owned here."""
