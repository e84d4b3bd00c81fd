"""One exception type for every problem a user can fix; the CLI and app show its message."""


class E2PError(Exception):
    """A user-facing error: its message says what is wrong and what to do."""
