"""Test doubles for object stores: an in-memory store and a request-counting wrapper."""
