"""Exceptions for expected, user-fixable problems.

The task entry points catch :class:`UserError` and print it as one line (``error: ...``) with a non-zero exit and
no traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad config value, missing file or data, absent device). The message names the
    fix."""


class CheckpointError(UserError):
    """A checkpoint file is missing, unreadable, corrupt, or does not fit the model."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the checkpoints already written are kept."""


class RunFinished(Exception):
    """The run directory already holds a finished run; nothing to do."""

    def __init__(self, run_dir: str) -> None:
        super().__init__(run_dir)
        self.run_dir = run_dir
