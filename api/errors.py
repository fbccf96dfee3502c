"""Errors in OpenAI's shape, so the official clients raise their usual exceptions with clarify's message.

``{"error": {"message": ..., "type": ..., "param": null, "code": ...}}`` with the HTTP status the client maps to
an exception class (400 BadRequestError, 401 AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError,
409 ConflictError, 429 RateLimitError, 5xx InternalServerError).
"""

from __future__ import annotations

from starlette.responses import JSONResponse

_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


class ApiError(Exception):
    """A refusal meant for the client: HTTP status, a message a person can act on, and a stable code."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers

    def body(self) -> dict:
        kind = _TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "param": None, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)
