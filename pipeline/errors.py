"""The one exception type for mistakes a user can make and fix."""


class PipelineError(Exception):
    """A user-facing error: the message names the file or option and says what to do.

    The CLI prints it as one line and exits with status 2; anything else is a bug
    and keeps its traceback.
    """
