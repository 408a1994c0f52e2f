"""Errors that the command line turns into one clear line instead of a traceback."""


class InputError(ValueError):
    """Bad user input: a missing, empty, unreadable or wrongly shaped file or folder.

    The message names the culprit. The command line prints it and exits with code 2.
    """


class ServingError(RuntimeError):
    """A model server answered with an error (NOT_FOUND, INVALID_ARGUMENT, unreachable...).

    The command line prints it and exits with code 1.
    """
