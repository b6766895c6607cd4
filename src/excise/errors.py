"""User-facing errors: reported as one paragraph with exit code 2, no traceback."""


class UserError(Exception):
    """A problem with the user's input (config, data, paths, run directories)."""
