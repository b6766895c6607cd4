"""User-facing errors: reported as one paragraph with exit code 2, no traceback."""


class UserError(Exception):
    """A problem with the user's input (config, data, paths, run directories)."""


class PeerFailure(Exception):
    """Another process of a multi-process run died or hung, so a collective failed.

    Not the user's input: reported as one paragraph (no traceback) with exit code 1.
    """
