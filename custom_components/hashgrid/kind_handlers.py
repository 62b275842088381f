"""Import every kind's handler so that each registers itself."""

from .mining import handler as _mining  # noqa: F401
