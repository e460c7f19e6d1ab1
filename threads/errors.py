"""Errors a user can cause; each edge (HTTP, SMTP, CLI) maps them in one table."""

from __future__ import annotations


class PawpostError(Exception):
    """Base of every error Pawpost raises on purpose."""


class AccessDenied(PawpostError):
    """The person may not see or post in this thread (role, schedule or business)."""


class UnknownThread(PawpostError):
    """No active thread answers to this id, token or reply address."""


class UnknownFamily(PawpostError):
    """No family of this business has this id."""


class UnknownStaff(PawpostError):
    """No staff member (or staff session) of this business has this id."""


class EmptyMessage(PawpostError):
    """A message needs text or at least one attachment."""


class FieldProblems(PawpostError):
    """A form's values were refused; `problems` maps each field to what is wrong with it."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(f"{field}: {text}" for field, text in problems.items()))
        self.problems = problems


class DirectoryError(PawpostError):
    """An imported directory is invalid; `problems` lists each one with its path."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s) in the directory")
        self.problems = problems


class StaffAddress(PawpostError):
    """A staff member's address cannot become a contact's: their words would post as the parent's."""
