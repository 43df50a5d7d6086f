"""The controller (mode 4): an HTTP service that owns the stores, its token auth, and the
HTTP client the ``controller`` surface backends use. Heavy imports stay inside functions."""
