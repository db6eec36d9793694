"""Exceptions named after the error codes of the jobstore API contract.

Every error the server sends is ``{"error": {"code": ..., "message": ...}}``; the client raises
the matching subclass of :class:`JobstoreError`, carrying the HTTP status and the server's message.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class JobstoreError(Exception):
    """Base of every error raised by the client."""

    code = "error"

    def __init__(self, message: str, status: int = 0, body: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body or {}


class InvalidArgument(JobstoreError):
    code = "invalid_argument"


class Unauthenticated(JobstoreError):
    code = "unauthenticated"


class Forbidden(JobstoreError):
    code = "forbidden"


class NotFound(JobstoreError):
    code = "not_found"


class InvalidTransition(JobstoreError):
    code = "invalid_transition"


class AlreadyExists(JobstoreError):
    code = "already_exists"


class StaleRequest(JobstoreError):
    code = "stale_request"


class Truncated(JobstoreError):
    """The event feed no longer holds the asked-for history; ``first`` is the first retained seq."""

    code = "truncated"

    @property
    def first(self) -> int:
        return int(self.body.get("first", 0))

    def resuming_after(self, after: int) -> "Truncated":
        """The same error, saying which resume point (``after``) fell off the history."""
        return Truncated(f"history after seq {after} is gone; the first retained seq is "
                         f"{self.first}", status=self.status, body=self.body)


class VersionMismatch(JobstoreError):
    code = "version_mismatch"


class PayloadTooLarge(JobstoreError):
    code = "payload_too_large"


class UnsupportedMediaType(JobstoreError):
    """The request body carried a Content-Encoding (compressed bodies are refused)."""

    code = "unsupported_media_type"


class MisdirectedRequest(JobstoreError):
    """The server does not answer for the Host the request named (see --allowed-hosts)."""

    code = "misdirected_request"


class IdempotencyKeyReused(JobstoreError):
    """The Idempotency-Key was already used to create a job with a different body."""

    code = "idempotency_key_reused"


class HeadersTooLarge(JobstoreError):
    code = "headers_too_large"


class Unavailable(JobstoreError):
    """The server is starting, shutting down, or cannot write its log; nothing was written."""

    code = "unavailable"


class BadGateway(JobstoreError):
    """502 from a proxy in front of the server: the request may or may not have reached it."""

    code = "bad_gateway"


class GatewayTimeout(JobstoreError):
    """504 from a proxy in front of the server: the request may or may not have reached it."""

    code = "gateway_timeout"


class ConnectionFailed(JobstoreError):
    """The server could not be reached (after the retries the call allows)."""

    code = "connection_failed"


class HitlTimeout(JobstoreError):
    """``wait_for_hitl_response`` gave up waiting before anyone answered."""

    code = "hitl_wait_timeout"


_BY_CODE: Dict[str, Type[JobstoreError]] = {
    cls.code: cls
    for cls in (InvalidArgument, Unauthenticated, Forbidden, NotFound, InvalidTransition,
                AlreadyExists, StaleRequest, Truncated, VersionMismatch, PayloadTooLarge,
                UnsupportedMediaType, MisdirectedRequest, IdempotencyKeyReused, HeadersTooLarge,
                Unavailable)
}


_BY_STATUS: Dict[int, Type[JobstoreError]] = {502: BadGateway, 503: Unavailable,
                                              504: GatewayTimeout}


def error_from_response(status: int, body: Any, raw: bytes = b"") -> JobstoreError:
    """The exception for an error response: by the contract's code, else (a proxy's page, say)
    by the status, with the first bytes of the body in the message."""
    error = body.get("error", {}) if isinstance(body, dict) else {}
    code = error.get("code", "") if isinstance(error, dict) else ""
    message = error.get("message", "") if isinstance(error, dict) else ""
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or JobstoreError
    if not message:
        text = raw[:200].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    return cls(message, status=status, body=body if isinstance(body, dict) else {})


def finish_error(result: Dict[str, Any]) -> JobstoreError:
    """The exception a refused entry of ``finish`` stands for (the one its own ``complete`` or
    ``fail`` would raise), from its result ``{"job_id", "status", "error"}``."""
    return error_from_response(int(result.get("status", 0)), {"error": result.get("error", {})})
