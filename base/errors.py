"""Errors that the command line reports as one line, without a traceback."""


class UserError(Exception):
    """A mistake in what the user gave us (a file, a folder, a z, a model, an option).

    The CLI prints ``avatargan <command>: error: <message>`` on stderr and exits with status 2.
    Raise it with a message that names the offending input and says what was expected.
    """
