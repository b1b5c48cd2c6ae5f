"""The one error type that reaches the user as a single line and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a flag, a file or a value.

    The CLI prints ``lrsuite: error: <message>`` and exits with code 2, without a
    traceback. Messages name the file, field or value, and say what to do.
    """

    exit_code = 2
