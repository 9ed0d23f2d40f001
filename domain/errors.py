"""Domain exceptions: each carries a sentence a user can act on.

The API maps each class to an HTTP status in one table (api/problems.py).
"""


class DomainError(Exception):
    """Base class for every refusal the domain makes."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidValue(DomainError):
    """A value is malformed or out of range (an identifier, an agency code, a level)."""


class InvariantViolated(DomainError):
    """The command would break a rule of the record (category 3 at level 1, ...)."""


class NoChange(InvariantViolated):
    """The change asks for the value already held."""


class RecordClosed(InvariantViolated):
    """The record is deregistered: only re-registration and reads are allowed."""
