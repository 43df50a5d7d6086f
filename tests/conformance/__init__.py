"""Conformance suites: one test class per surface, subclassed unchanged by every backend."""
