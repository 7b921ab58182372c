"""The package version, importable without the rest of hrpose."""

__version__ = "0.1.0"
