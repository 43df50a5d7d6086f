"""Logs surface: one record stream per job of a run."""
