"""The one error shape of the service: a machine-readable code and a message a person can act on."""

from __future__ import annotations


class CodedError(Exception):
    """An error with a stable ``code`` (for programs and error pages) and a readable ``message``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message
