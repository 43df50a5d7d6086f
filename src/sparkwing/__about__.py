"""Version string, kept in a module with no imports so ``sparkwing --version`` stays instant."""

__version__ = "0.1.0"
