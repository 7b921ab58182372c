"""The one exception type that reaches users as a one-line message."""


class HrposeError(Exception):
    """A user-facing error: bad input, a bad file, a failed download.

    The CLI prints its message on one line and exits with status 2; the message names the file,
    field or value at fault.
    """


class CheckpointError(HrposeError):
    """A checkpoint file that cannot be read or does not fit the model."""
