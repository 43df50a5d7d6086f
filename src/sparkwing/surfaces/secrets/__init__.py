"""Secrets surface: where ``sparkwing.secret()`` and ``sparkwing.config()`` resolve from."""
