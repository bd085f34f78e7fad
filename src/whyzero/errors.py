"""Errors whose message is the one line a user reads."""


class WhyzeroError(Exception):
    """Bad input: the message says what was expected and what was received."""


class UnsafeModelError(WhyzeroError):
    """The model file holds code (Lambda layers) and trust was not given."""
