"""Cache surface: content-addressed artifacts, memoized outputs and pipeline bundles."""
