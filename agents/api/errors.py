"""One JSON error shape for every 4xx and 5xx the API answers:

    {"error": {"status": 404, "code": "not_found", "message": "no asset 0x12…", "details": {...}}}

`code` is stable (clients branch on it); `message` is for people; `details` is optional. The
middleware turns aiohttp's own HTTP errors (unknown route, wrong method, body too large) and any
unexpected exception into this shape; an unexpected one is logged and answered as 500 without
its text (nothing internal leaks).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("proofmint.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {
    400: "bad_request",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal",
    502: "upstream_failed",
    503: "unavailable",
}


class ApiError(Exception):
    """An answer other than success: raised by handlers, rendered by the middleware."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.code = code or _CODES.get(status, "error")
        self.details, self.headers = details, headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def error_response(error: ApiError, extra: dict[str, Any] | None = None) -> web.Response:
    body = {**error.body(), **(extra or {})}
    return web.Response(
        status=error.status,
        text=json.dumps(body, separators=(",", ":")),
        content_type="application/json",
        headers=error.headers,
    )


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        message = exc.reason if exc.status != 413 else "the request body is larger than this server accepts"
        return error_response(ApiError(exc.status, message, headers=headers))
    except Exception:
        log.exception("unhandled error", extra={"fields": {"path": request.path, "method": request.method}})
        return error_response(ApiError(500, "internal error; the server logged it"))
