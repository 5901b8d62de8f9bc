"""Errors for bad input: the CLI prints these as one message (naming the value and its origin), not a traceback."""


class InputError(ValueError):
    """Bad input: a config value, a dataset file or id."""
