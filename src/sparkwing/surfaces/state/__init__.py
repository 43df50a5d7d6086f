"""State surface: run records, plan snapshots, node status, events, coordination."""
