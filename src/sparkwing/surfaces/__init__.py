"""Persistence surfaces: state, cache, logs and secrets, each a small interface plus backends.

Backends are opened only through :mod:`sparkwing.surfaces.open` from a resolved spec, so
the engine never imports a concrete backend.
"""
