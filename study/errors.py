"""The study's kind of error that a person fixes, not a bug: the message names the file or setting.

The command line prints such errors in one line (no traceback) and exits with 2.
"""


class InputError(ValueError):
    """Bad input: a config, a dataset, an image, a study folder."""
