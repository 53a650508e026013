"""The pack's error types: every one names what was wrong so a user can fix it from the message.

Messages quote what they refuse through ``echo`` / ``clip``, so a refusal never carries megabytes
of someone's input back into a log, a node message or an HTTP answer."""
from __future__ import annotations

MAX_ECHO = 120     # characters of a refused value quoted in a message
MAX_MESSAGE = 2000  # characters of any one message part


def clip(text, limit: int = MAX_MESSAGE) -> str:
    """text (made a str), cut to about ``limit`` characters with the cut said."""
    text = text if isinstance(text, str) else str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters in all)"


def echo(value, limit: int = MAX_ECHO) -> str:
    """repr(value) for a message, at most about ``limit`` characters: a 2 MB string, a
    5000-digit integer or a list nested 100,000 deep each come back as a short description."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * limit:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"… ({len(value)} characters)"
    if isinstance(value, (bytes, bytearray)) and len(value) > limit:
        return repr(bytes(value[:limit])) + f"… ({len(value)} bytes)"
    try:
        text = repr(value)
    except (ValueError, RecursionError, MemoryError):  # huge ints in containers, deep nesting
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + f"… (a {type(value).__name__})"


class SpecError(ValueError):
    """A JobSpec field is wrong. ``field`` is its dotted path (``cameras.views``,
    ``subjects[0].poses[2].preset``), ``allowed`` says what would be accepted.

    str(): ``cameras.views: got 0, allowed: an integer from 1 to 64``."""

    def __init__(self, field: str, message: str, allowed: str = ""):
        field, message, allowed = clip(field, MAX_ECHO * 2), clip(message), clip(allowed)
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
        field, message = clip(field, MAX_ECHO * 2), clip(message)
        super().__init__(field, message)
        self.field, self.message = field, message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.message else self.field


class StorageError(Exception):
    """A storage key is unsafe, a file is missing, or a batch cannot be committed."""

    def __init__(self, message: str = "", *args):
        super().__init__(clip(message), *args)
