"""The API's errors: a fixed status and code each; nothing a caller sent is ever in a body."""

from __future__ import annotations


class ApiError(Exception):
    """An error with a fixed HTTP status and error code; ``str()`` is safe to log."""

    status_code = 500
    code = "internal_error"


class InvalidDayError(ApiError):
    status_code = 400
    code = "invalid_day"


class InvalidEncounterKeyError(ApiError):
    status_code = 400
    code = "invalid_encounter_key"


class InvalidFilterError(ApiError):
    status_code = 400
    code = "invalid_filter"


class NotSignedInError(ApiError):
    status_code = 401
    code = "unauthorized"


class ForbiddenError(ApiError):
    status_code = 403
    code = "forbidden"


class DayNotFoundError(ApiError):
    """The day was never scored (no summary record): not the same as a day without discharges."""

    status_code = 404
    code = "day_not_found"


class EntryNotFoundError(ApiError):
    status_code = 404
    code = "entry_not_found"


class RouteNotFoundError(ApiError):
    status_code = 404
    code = "not_found"


class StoreUnavailableError(ApiError):
    """The worklist table could not be read; the page should retry."""

    status_code = 503
    code = "store_unavailable"


class ServiceMisconfiguredError(ApiError):
    status_code = 500
    code = "service_misconfigured"
