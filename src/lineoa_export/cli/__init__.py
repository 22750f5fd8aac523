"""The command line: ``lineoa-export``."""

from .main import main

__all__ = ["main"]
