"""User-facing errors.

A :class:`UserError` is a mistake the user can fix (bad path, bad YAML key, malformed data
line, unknown explainer). The CLI prints its message on one line and exits with code 2, with
no traceback. Messages say *what*, *where* and *how to fix*.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input; the CLI prints ``str(err)`` and exits 2."""

    exit_code = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        parts = [f"{where}: {what}" if where else what]
        if fix:
            parts.append(f"fix: {fix}")
        super().__init__(" — ".join(parts))


class DataError(UserError):
    """Malformed or unreadable dataset file (names the file and line)."""


class ConfigError(UserError):
    """Invalid suite or task YAML, or a bad ``--set`` key (names file:key)."""
