"""The one exception type for mistakes a user can cause (bad paths, bad data, bad flags).

The CLI turns it into a single line on stderr and exit code 2; library code raises it
instead of printing, so the same functions stay usable from Python.
"""


class UserError(Exception):
    """A problem with the user's input: reported as one line, exit code 2, no traceback."""
