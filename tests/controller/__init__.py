"""Controller tests: security (auth, scopes, ids), schemathesis, end to end."""
