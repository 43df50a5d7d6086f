"""Configuration: the project file, user profiles, validation, interpolation and resolution.

Named ``conf`` rather than ``config`` so it never shadows the public ``sparkwing.config()``.
"""
