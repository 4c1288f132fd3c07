"""The package version, kept apart so every layer can record it without importing the public API."""
__version__ = "0.1.0"
