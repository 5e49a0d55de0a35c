"""User-facing errors: each carries one line the CLI prints before exiting with status 2."""

from __future__ import annotations


class NnlccError(Exception):
    """An error the user can act on (bad input, unsupported model, missing tool)."""

    exit_code = 2


class UnsupportedModelError(NnlccError):
    """The model uses an operator, attribute or shape nnlcc cannot compile."""


class BadInputError(NnlccError):
    """A file, option or data set given by the user is unusable."""


class PassOptionError(NnlccError):
    """A pass pipeline text names an unknown pass or option."""


class ToolchainError(NnlccError):
    """A simulator or FPGA tool is missing or failed."""


class VerificationError(NnlccError):
    """Hardware and golden model disagree (exit status 1)."""

    exit_code = 1


class TaskFailedError(NnlccError):
    """A task (one layer's coding, lowering, a sweep point) ran out of memory, or the worker
    running it died; nothing is written."""
