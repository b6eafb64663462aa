"""One error shape for the whole API: {"error": {"code", "message", "fields"}}."""

import logging
import math

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .failures import ExplainedError  # noqa: F401 (one place to import errors from)

log = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """Redis cannot be reached: nothing was enqueued and nothing was written."""


class ServiceError(Exception):
    """A service refused a request; the message is safe to show to the user."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message, *, code=None, fields=None, status_code=None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.fields = fields or {}
        self.status_code = status_code or self.status_code


class Conflict(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


def error_response(code, message, status_code, fields=None, headers=None):
    body = {"error": {"code": code, "message": message, "fields": fields or {}}}
    return Response(body, status=status_code, headers=headers)


def api_exception_handler(exc, context):
    if isinstance(exc, QueueUnavailable):
        log.warning("queue unavailable: %s", exc)
        return error_response(
            "queue_unavailable",
            "The job queue is unavailable; nothing was changed. Try again shortly.",
            status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, ServiceError):
        return error_response(exc.code, exc.message, exc.status_code, exc.fields)
    if isinstance(exc, exceptions.Throttled):
        return throttled_response(exc, context.get("view"))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    return error_response(*describe(exc), response.status_code, fields_of(exc), headers=dict(response.items()))


def describe(exc):
    if isinstance(exc, exceptions.ValidationError):
        return "invalid", "The request has invalid fields."
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return exc.default_code if isinstance(exc.default_code, str) else "error", detail


def fields_of(exc):
    if not isinstance(exc, exceptions.ValidationError):
        return {}
    if isinstance(exc.detail, dict):
        return exc.detail
    return {"non_field_errors": exc.detail}


def throttled_response(exc, view):
    """A 429 that names the limit hit, and when to come back."""
    from rest_framework.settings import api_settings

    scope = getattr(view, "throttle_scope", None) or "API"
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope, "a limited number")
    wait = math.ceil(exc.wait or 1)
    message = f"Too many {scope} requests: the limit is {rate} per user. Try again in {wait} s."
    return error_response("throttled", message, status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(wait)})
