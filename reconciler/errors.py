"""Exit codes and the expected-error hierarchy.

Every failure a user can cause or meet (bad input, bad state, an API answer)
is a `DfrError`. The CLI turns one into a one-line message on stderr and exit 1;
nothing else ever reaches the user as a traceback.

    DfrError                      expected failure, exit 1
    ├── UsageError                bad flags or arguments
    ├── ValidationFailed          manifests or project file have errors (already reported)
    ├── PlanError                 a saved plan is stale, edited or unreadable
    ├── StateError                the state cannot be used
    │   ├── StateLockedError      another process holds the lock (names the holder)
    │   ├── StateConflictError    the state changed under us (serial or lineage moved)
    │   ├── StateCorruptError     unreadable or invalid state file (names the backup)
    │   └── StateVersionError     written by a newer dfr
    └── APIError                  the Dataframer API refused or failed
        ├── AuthError             401/403: DATAFRAMER_API_KEY is missing or wrong
        ├── NotFoundError         404 for a run or spec
        ├── RequestRejected       other 4xx on one request (recorded on that run)
        ├── APIUnavailable        retries exhausted: 5xx, 429, connection errors
        ├── BadAnswer             an answer that is not the JSON we expect
        └── OutcomeUnknown        a create-run POST whose answer never came

Exit codes: 0 success; 1 any error (usage errors too, so that `plan
--detailed-exitcode` can use 2 for "changes present" unambiguously, as Terraform
does); 2 only from `--detailed-exitcode`; 130 after Ctrl-C (SIGINT), 143 after SIGTERM.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class DfrError(Exception):
    """An expected failure: its message is shown to the user as is."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(DfrError):
    pass


class ValidationFailed(DfrError):
    """Raised after diagnostics were reported; the message is only a summary."""


class PlanError(DfrError):
    pass


class StateError(DfrError):
    pass


class StateLockedError(StateError):
    pass


class StateConflictError(StateError):
    pass


class StateCorruptError(StateError):
    pass


class StateVersionError(StateError):
    pass


class APIError(DfrError):
    def __init__(
        self, message: str, *, status_code: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code


class AuthError(APIError):
    pass


class NotFoundError(APIError):
    pass


class RequestRejected(APIError):
    pass


class APIUnavailable(APIError):
    pass


class BadAnswer(APIError):
    pass


class OutcomeUnknown(APIError):
    """A POST that may or may not have created a run; never retry it blindly."""


class WrongAPIError(DfrError):
    """The API answers as if it were another service or account than the state's:
    every recorded run 404s at once, or the state was written against another URL.
    Nothing is marked gone and nothing is resubmitted."""
