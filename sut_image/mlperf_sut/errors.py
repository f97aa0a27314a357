"""The one exception type that means "the user's input is wrong" (exit code 2), as opposed to a runtime failure."""


class InputError(Exception):
    """Bad input: the message names the file, field or flag and how to fix it."""
