"""Errors whose message is the one line a user reads."""


class WhyzeroError(Exception):
    """Bad input: the message says what was expected and what was received."""


class UnsafeModelError(WhyzeroError):
    """The model file holds code (Lambda layers) and trust was not given."""


def first_line(err: BaseException | str, limit: int = 200) -> str:
    """An exception's (or a text's) first non-empty line, cut to ``limit`` characters; for an exception without a
    message, its type's name.

    The one place whyzero turns an error from a library into the part of a message a user reads.
    """
    lines = str(err).strip().splitlines()
    if lines:
        return lines[0][:limit]
    return "" if isinstance(err, str) else type(err).__name__
