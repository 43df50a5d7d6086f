"""Pipeline bundles: ``.sparkwing/`` plus its installed requirements, content-addressed by a key
over their inputs, kept in a local bundle cache and shared through the cache surface (``bin/``).

Entry point: :func:`sparkwing.bundle.resolve.open_bundle`.
"""
