"""Errors that the command line turns into one clear line instead of a traceback."""


class InputError(ValueError):
    """Bad user input: a missing, empty, unreadable or wrongly shaped file or folder.

    The message names the culprit. The command line prints it and exits with code 2.
    """


class ServingError(RuntimeError):
    """A model server answered with an error (NOT_FOUND, INVALID_ARGUMENT, unreachable...).

    The command line prints it and exits with code 1.
    """


class OutputError(RuntimeError):
    """An output could not be written part-way through a command (a full disk, a file system that
    turned read-only, a permission taken away).

    The message names the path, the cause and what had been written before; nothing half-written
    is left (writes are atomic). The command line prints it and exits with code 1.
    """


class NonFiniteTrainingError(RuntimeError):
    """Training stopped because a loss, a weight or an optimiser variable became NaN or infinite.

    Nothing non-finite was written: the last checkpoint on disk is the last finite one. The
    message names what went non-finite and when. The command line prints it and exits with code 1.
    """
