"""User-facing errors raised below the jobs layer (bad input, a missing table)."""
from __future__ import annotations


class InputError(ValueError):
    """Bad arguments or input discovered by a job; printed without a stack trace."""


class MissingInput(InputError):
    """A table the job needs does not exist (an entity absent from the landing files).

    A job run on its own stops with the message; ``memberlake pipeline`` logs it and goes on with
    the next job, so a dataset without clickstream (or without order lines) still gets the rest.
    The run is recorded in ``job_runs`` as ``skipped``.
    """

    skip_run = True
