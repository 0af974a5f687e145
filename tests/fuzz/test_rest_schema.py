"""Property-based fuzzing of every REST operation on its own (schemathesis' stateless mode, from
the app's OpenAPI description), on a fresh server with default settings: no 5xx at all, and
every answer conforms to the schema. Each generated call is made as generated (mostly unknown
ids) and again against a real session with its token, so every operation behind the token gets
`MAX_EXAMPLES` inputs of its own there (test_rest_stateful.py reaches them through the links).
Bounded by `MAX_EXAMPLES` per operation and derandomised, so CI stays fast and a failure
reproduces."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import ignored_auth, positive_data_acceptance

from app.config import Settings
from tests.support.server import ThreadServer

MAX_EXAMPLES = 30


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    # The default settings, but for where the data goes and how much is logged.
    config = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz") / "data",
        log_json=False,
        log_level="ERROR",
        _env_file=None,  # type: ignore[call-arg]
    )
    with ThreadServer(config) as srv:
        yield srv


@pytest.fixture(scope="module")
def real_session(fuzz_server: ThreadServer) -> dict[str, str]:
    body: dict[str, str] = httpx.post(f"{fuzz_server.http}/api/sessions", json={}).json()
    return body


def test_rest_endpoints_hold_their_schema(
    fuzz_server: ThreadServer, real_session: dict[str, str]
) -> None:
    # Hypothesis driven directly: one bounded run per operation, in one test.
    schema = schemathesis.openapi.from_url(f"{fuzz_server.http}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,  # the same examples every run: a failure reproduces
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            # Every built-in check (not_a_server_error among them), but that any schema-valid
            # data be accepted: a schema-valid upload is no video and a schema-valid SDP no
            # offer (400 both, by design).
            excluded = [positive_data_acceptance]
            case.call_and_validate(base_url=fuzz_server.http, timeout=30, excluded_checks=excluded)
            if case.path_parameters and "session_id" in case.path_parameters:
                case.path_parameters["session_id"] = real_session["session_id"]
                case.headers["Authorization"] = f"Bearer {real_session['token']}"
                # Real credentials (not generated ones): `ignored_auth` then checks that the
                # call without them, or with wrong ones, is refused. (Not after a DELETE: the
                # session would be gone.)
                case._has_explicit_auth = True
                if case.method.upper() == "DELETE":
                    excluded = [*excluded, ignored_auth]
                case.call_and_validate(
                    base_url=fuzz_server.http, timeout=30, excluded_checks=excluded
                )

        fuzz()
