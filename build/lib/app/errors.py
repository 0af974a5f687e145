"""Stable machine error codes and the one exception that carries them to the HTTP layer."""

from __future__ import annotations

from typing import Any


class CoachError(Exception):
    """An error with a stable machine `code`, raised by services and turned into JSON by the API.

    Routes and dependencies raise these (or map them); the pipeline never raises across stages,
    it emits `error` events instead.
    """

    status_code = 400

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers
        self.extra = extra or {}

    def detail(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


def not_found(what: str = "session") -> CoachError:
    return CoachError(f"{what}_not_found", f"No such {what}.", status_code=404)
