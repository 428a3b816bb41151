"""User-facing errors: the CLI prints their message as one line and exits with status 2."""


class MasktaxError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""
