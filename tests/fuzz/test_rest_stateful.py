"""Stateful fuzzing of the REST API with schemathesis' state machine, built from the OpenAPI
links: on a fresh server with default settings, scenarios create a session (or upload a video)
and follow the links of the answer into the calls that take its id and token.

Every answer must be no 5xx at all and conform to the schema (declared status code, content
type, body schema, headers), and schemathesis' stateful checks hold (a call without its
credentials or with wrong ones is refused, a deleted resource is gone, a created one is there).

Bounded (`SCENARIOS` scenarios of at most `STEPS` calls, `SUITE_SCENARIOS` a seed; up to
`MAX_SCENARIOS` while a token operation is unreached) and seeded (suite `n` runs with seed
`n`), so CI stays fast and a failure reproduces.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Flaky, FlakyFailure
from schemathesis import GenerationMode
from schemathesis.checks import (
    ignored_auth,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.stateful import run_state_machine_as_test

from app.config import Settings
from tests.fixtures.clips import Segment
from tests.fixtures.videos import write_mp4
from tests.support.server import ThreadServer

SCENARIOS = 250
MAX_SCENARIOS = 750
# Scenarios a seed runs before the next seed's: one seed's scenarios follow a few paths, and
# which (deterministic for a given build) changes with any change to the server's code.
SUITE_SCENARIOS = 50
STEPS = 10
MAX_SUITES = 40
# Real videos sent in place of fuzzed upload bodies (a schema-valid body is never a video), so
# that the links of an accepted upload are followed too; few: each one is analysed.
REAL_UPLOADS = 6

CREATE = "POST /api/sessions"
CREATE_PITCH = "POST /api/pitches"
UPLOAD = "POST /api/video/receive-video/"
# Every operation that takes a session id and its token.
TOKEN_OPERATIONS = {
    "GET /api/sessions/{session_id}",
    "DELETE /api/sessions/{session_id}",
    "POST /api/sessions/{session_id}/end",
    "GET /api/sessions/{session_id}/events",
    "GET /api/sessions/{session_id}/report",
    "GET /api/sessions/{session_id}/report.html",
    "GET /api/sessions/{session_id}/recording.webm",
    "POST /api/sessions/{session_id}/offer",
}
# Every operation that takes a pitch's id and its token.
PITCH_OPERATIONS = {
    "GET /api/pitches/{pitch_id}",
    "GET /api/pitches/{pitch_id}/compare",
    "DELETE /api/pitches/{pitch_id}",
}
# Every operation that takes an upload's id.
UPLOAD_OPERATIONS = {
    "GET /api/video/video-send-feedback/{video_id}",
    "DELETE /api/video/delete_files/{video_id}",
    "GET /api/video/recording/{video_id}/",
    "GET /api/video/report/{video_id}/",
    "GET /api/video/report/{video_id}/html/",
}


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ThreadServer]:
    # The default settings, but for where the data goes, how much is logged, and how many
    # sessions a client may create a minute: at the default 30 a run of under a minute made
    # ~21, few enough that whether each linked call was followed at least once came down to
    # the path, and that changed with unrelated server code (tests/api/test_limits.py tests
    # the limit itself).
    config = Settings(
        data_dir=tmp_path / "data",
        log_json=False,
        log_level="ERROR",
        session_create_per_minute=300,
        _env_file=None,  # type: ignore[call-arg]
    )
    with ThreadServer(config) as srv:
        yield srv


def sent_token(case: schemathesis.Case) -> str | None:
    """The token the server reads from the call: the Bearer header first, else `?token=`
    (app/api/deps.py)."""
    header = str(case.headers.get("Authorization", "")).strip()  # as on the wire
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    token = case.query.get("token")
    return token if isinstance(token, str) else None


class Observed:
    """What the run did: per operation the statuses answered, and those answered to calls that
    carried a real id (and for the session calls that session's own token)."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}  # session id -> token, from the 201 answers
        self.pitch_tokens: dict[str, str] = {}  # pitch id -> token
        self.videos: set[str] = set()  # ids of accepted uploads
        self.statuses: dict[str, set[int]] = defaultdict(set)
        self.reached: dict[str, set[int]] = defaultdict(set)
        self.failures: list[str] = []
        self.calls = 0
        self.scenarios = 0

    def has_valid_token(self, case: schemathesis.Case) -> bool:
        session_id = case.path_parameters.get("session_id")
        if session_id is None:
            pitch_id = case.path_parameters.get("pitch_id")
            token = self.pitch_tokens.get(pitch_id) if pitch_id is not None else None
            return token is not None and sent_token(case) == token
        return session_id in self.tokens and sent_token(case) == self.tokens[session_id]

    def record(self, case: schemathesis.Case, status: int, body: Any) -> None:
        label = case.operation.label
        self.calls += 1
        self.statuses[label].add(status)
        if label == CREATE and status == 201:
            self.tokens[body["session_id"]] = body["token"]
        elif label == CREATE_PITCH and status == 201:
            self.pitch_tokens[body["pitch_id"]] = body["token"]
        elif label == UPLOAD and status == 200:
            self.videos.add(body["video_id"])
        elif (label in TOKEN_OPERATIONS | PITCH_OPERATIONS and self.has_valid_token(case)) or (
            label in UPLOAD_OPERATIONS and case.path_parameters["video_id"] in self.videos
        ):
            self.reached[label].add(status)

    def summary(self) -> str:
        reached = {label: sorted(statuses) for label, statuses in sorted(self.reached.items())}
        with_token = len(TOKEN_OPERATIONS & reached.keys())
        return (
            f"{self.scenarios} scenarios, {self.calls} calls, {len(self.tokens)} sessions "
            f"created, {len(self.videos)} uploads accepted\n"
            f"reached with a valid token: {with_token} of {len(TOKEN_OPERATIONS)} operations; "
            f"with a real upload id: {len(UPLOAD_OPERATIONS & reached.keys())} of "
            f"{len(UPLOAD_OPERATIONS)}\n"
            + "\n".join(f"  {label}: {statuses}" for label, statuses in reached.items())
            + "\nall answers: "
            + ", ".join(f"{k} {sorted(v)}" for k, v in sorted(self.statuses.items()))
        )


def describe(exc: FailureGroup, case: schemathesis.Case, response: Any) -> str:
    failures = "; ".join(f"{failure.title}: {failure.message}" for failure in exc.exceptions)
    body = response.text[:500] if response.text else ""
    return (
        f"{case.operation.label} -> {response.status_code} {body}\n  {failures}\n"
        f"  {case.as_curl_command()[:1500]}"
    )


def no_session_limit_503(_ctx: object, response: Any, case: schemathesis.Case) -> bool:
    """Spelled out, though `not_a_server_error` covers it: one client alone meets the bound per
    client address (429), never the server's `503 too_many_sessions`."""
    if case.operation.label == CREATE:
        assert response.status_code != 503, f"one client exhausted the server: {response.text}"
    return True


def test_stateful_fuzz_reaches_past_the_token(fresh_server: ThreadServer, tmp_path: Path) -> None:
    schema = schemathesis.openapi.from_url(f"{fresh_server.http}/openapi.json")
    # The links reach every operation but the health probes (fuzzed in test_rest_schema.py).
    assert (
        schema.operations_with_incoming_links()
        == TOKEN_OPERATIONS | PITCH_OPERATIONS | UPLOAD_OPERATIONS
    )
    video = write_mp4(
        tmp_path / "clip.mp4", segments=(Segment("frontal", 1.0),), fps=5, audio=False
    ).read_bytes()
    observed = Observed()
    real_uploads = [REAL_UPLOADS]

    class Fuzz(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            observed.scenarios += 1
            self.created: dict[str, str] = {}

        def before_call(self, case: schemathesis.Case) -> None:
            if observed.has_valid_token(case):
                # A link filled in the session's own token. schemathesis takes credentials it
                # did not configure itself for generated ones, which its `ignored_auth` check
                # fails on a 2xx; said to be real, they make the check send the call again
                # without them and with wrong ones, and expect 401 / 403.
                case._has_explicit_auth = True

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            kwargs: dict[str, Any] = {"timeout": 60}
            if (
                case.operation.label == UPLOAD
                and real_uploads[0] > 0
                and case.meta is not None
                and case.meta.generation.mode is GenerationMode.POSITIVE
            ):
                real_uploads[0] -= 1  # sent instead of the generated body
                kwargs["files"] = {"file": ("clip.mp4", video, "video/mp4")}
            return kwargs

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            try:
                body = response.json()
            except ValueError:
                body = None
            observed.record(case, response.status_code, body)
            if case.operation.label == CREATE and response.status_code == 201:
                self.created[body["session_id"]] = body["token"]

        def validate_response(
            self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kw: Any
        ) -> None:
            # Every built-in check (not_a_server_error among them: no 5xx at all), but that any
            # schema-valid data be accepted: a schema-valid upload is no video and a schema-valid
            # SDP is no offer (400 both, by design).
            excluded = [positive_data_acceptance]
            if case.method.upper() == "DELETE":
                # It probes a call again without credentials and expects 401 / 403; after a
                # delete the resource is gone (404).
                excluded.append(ignored_auth)
            try:
                case.validate_response(
                    response,
                    excluded_checks=excluded,
                    # Named, so that no configuration can turn them off.
                    additional_checks=[
                        not_a_server_error,
                        response_schema_conformance,
                        no_session_limit_503,
                    ],
                    transport_kwargs=kw or None,
                    recorder=self.recorder,
                )
            except FailureGroup as exc:
                # Kept here: a replay that goes otherwise (see below) would not report it.
                failure = describe(exc, case, response)
                if failure not in observed.failures:
                    observed.failures.append(failure)
                raise

        def teardown(self) -> None:
            # As a client would: end what the scenario created, so that later scenarios are not
            # all refused by the bound on sessions waiting for their first media per address.
            for session_id, token in self.created.items():
                httpx.post(
                    f"{fresh_server.http}/api/sessions/{session_id}/end",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
            super().teardown()

    started = time.monotonic()
    for seed in range(MAX_SUITES):
        # at least SCENARIOS; on to MAX_SCENARIOS while a token operation is still unreached
        # (which ones a run reaches depends on the server's answers: any change to them, even
        # one no fuzzed call sees, sends the seeded scenarios down other paths)
        covered = observed.reached.keys() >= TOKEN_OPERATIONS
        goal = SCENARIOS if covered else MAX_SCENARIOS
        if observed.scenarios >= goal or observed.failures:
            break
        suite = hypothesis.seed(seed)(type(f"Fuzz{seed}", (Fuzz,), {"rule_order_seed": seed}))
        try:
            run_state_machine_as_test(
                suite,
                settings=hypothesis.settings(
                    max_examples=min(goal - observed.scenarios, SUITE_SCENARIOS),
                    stateful_step_count=STEPS,
                    deadline=None,
                    database=None,
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                ),
            )
        except FailureGroup:
            pass  # in `observed.failures`
        except FlakyFailure as exc:
            # A failure that its replay did not meet again: kept if it was a check's (in
            # `observed.failures`), raised if anything else went wrong (a connection reset).
            if not all(isinstance(error, FailureGroup) for error in exc.exceptions):
                raise
        except Flaky:
            # The server answered a replayed prefix otherwise (a rate limit, a session ended
            # meanwhile): Hypothesis ends the suite, as in schemathesis' own runner, and the
            # next suite goes on with the next seed.
            pass
    print(f"\n{observed.summary()}\n{time.monotonic() - started:.0f} s")
    assert not observed.failures, "\n".join(observed.failures)
    assert observed.scenarios >= SCENARIOS
    assert observed.reached.keys() >= TOKEN_OPERATIONS, observed.summary()
    assert observed.videos, "no upload was accepted: the upload's links were not followed"
