"""The pack's error types: every one names what was wrong so a user can fix it from the message."""
from __future__ import annotations


class SpecError(ValueError):
    """A JobSpec field is wrong. ``field`` is its dotted path (``cameras.views``,
    ``subjects[0].poses[2].preset``), ``allowed`` says what would be accepted.

    str(): ``cameras.views: got 0, allowed: an integer from 1 to 64``."""

    def __init__(self, field: str, message: str, allowed: str = ""):
        if not allowed and "allowed" in message.lower():  # a message that already says it
            i = message.lower().index("allowed")
            allowed = message[i + len("allowed"):].lstrip(": ")
            text = message
        else:
            text = f"{message}, allowed: {allowed}" if allowed else message
        super().__init__(field, message, allowed)  # args round-trip through pickle
        self.field, self.message, self.allowed = field, message, allowed
        self._text = f"{field}: {text}" if field else text

    def __str__(self) -> str:
        return self._text


class ManifestError(ValueError):
    """A manifest is malformed or of an unknown major version; ``field`` names where."""

    def __init__(self, field: str, message: str = ""):
        super().__init__(field, message)
        self.field, self.message = field, message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.message else self.field


class StorageError(Exception):
    """A storage key is unsafe, a file is missing, or a batch cannot be committed."""
