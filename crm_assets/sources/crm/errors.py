"""Errors that say which resource and page failed, what the server said, and what to do."""

from __future__ import annotations

from urllib.parse import urlsplit

from requests import HTTPError, Response
from requests.exceptions import Timeout
from urllib3.exceptions import NameResolutionError

_HINTS: dict[int, str] = {
    400: "the server rejected the query; check the resource's path and the sync settings",
    401: "token rejected: check CRM_ACCESS_TOKEN (or access_token in .dlt/secrets.toml)",
    403: "the token may not read this path: check the token's permissions",
    404: "no such path: check CRM_BASE_URL and the resource's path in the resource table",
    429: "still rate limited after all retries: sync less often or lower the concurrency",
}
_SERVER_HINT = "the CRM kept failing after all retries: try again later"


class CrmError(HTTPError):
    """A failed CRM request or page, naming the resource and page.

    Subclasses ``requests.HTTPError`` so dlt's retry logic still sees ``response``.
    """

    def __init__(
        self, resource: str, page: str, problem: str, hint: str, response: Response | None
    ) -> None:
        self.resource = resource
        self.page = page
        self.problem = problem
        self.hint = hint
        super().__init__(
            f"CRM resource '{resource}', page {page}: {problem} ({hint})", response=response
        )

    def __reduce__(self) -> tuple[type[CrmError], tuple[str, str, str, str, Response | None]]:
        return (type(self), (self.resource, self.page, self.problem, self.hint, self.response))


class CrmStatusError(CrmError):
    """The CRM answered with an error status."""


class CrmMalformedPageError(CrmError):
    """A 200 whose body is not the contract's envelope; retried like a transient fault."""


class CrmRecordError(CrmError):
    """A well-formed page holding a record the warehouse cannot take; not retried."""


class CrmUnreachableError(CrmError):
    """The CRM could not be reached, or did not answer, after all retries."""


def unreachable(resource: str, url: str, page: str, error: BaseException) -> CrmUnreachableError:
    """What went wrong reaching ``url``, in the shape of every other CRM error."""
    parts = urlsplit(url)
    host = parts.hostname or url
    place = f"{host}:{parts.port}" if parts.port else host
    if _caused_by(error, NameResolutionError):
        problem = f"cannot reach {place} (name does not resolve)"
    elif _caused_by(error, ConnectionRefusedError):
        problem = f"cannot reach {place} (connection refused)"
    elif isinstance(error, Timeout):
        problem = f"no answer from {place} in time ({type(error).__name__})"
    else:
        problem = f"cannot reach {place} ({type(error).__name__})"
    hint = "check CRM_BASE_URL, and that this machine can reach the CRM"
    return CrmUnreachableError(resource, page, problem, hint, None)


def _caused_by(error: BaseException | None, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return True
        seen.add(id(error))
        nested = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
        reason = getattr(error, "reason", None)
        error = error.__cause__ or error.__context__ or reason or nested
    return False


def hint_for(status: int) -> str:
    """What a user should do about ``status``."""
    return _HINTS.get(status, _SERVER_HINT if status >= 500 else "see the server's message")
