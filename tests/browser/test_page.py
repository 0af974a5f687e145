"""The rehearsal page in a real browser: Debian's Chromium driven by Playwright, a fake camera
playing a clip of the labelled fixture (a real face, then an empty frame, then the face again),
a fake microphone, a real server. Run for both transports; the page is served under the strict
Content-Security-Policy the hardening issue adds, and any violation fails the test."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Route,
    WebSocketRoute,
    expect,
    sync_playwright,
)
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as connect_ws

from app.config import Settings
from app.media.vp9 import read_vp9_header
from app.wiring import default_hooks
from tests.support.server import ThreadServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CLIP_FPS = 15
STRICT_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self' ws: wss:; style-src 'self'"
)


def write_y4m(path: Path, frames: list[Any], fps: int) -> None:
    """Frames (640x480 BGR) as a YUV4MPEG2 file, Chromium's fake-camera input."""
    import cv2

    height, width = frames[0].shape[:2]
    cache: dict[int, bytes] = {}  # the fixture shares one array across a static segment
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for image in frames:
            planes = cache.get(id(image))
            if planes is None:
                planes = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes()
                cache[id(image)] = planes
            out.write(b"FRAME\n")
            out.write(planes)


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures.clips import Segment, labelled_clip
    from tests.fixtures.gaze_photos import moving_photo_frames

    # Face, then the presenter walks out of the frame sideways and leaves an empty room long
    # enough for `face_lost` (held 1.5 s) to turn on, then the face again; then a real photo
    # of a woman whose face is turned away to a laptop at her side (FaceMesh finds no face in
    # the middle of the frame, Pose sees her: `face_lost`, hidden), and the face again.
    # Chromium loops the file.
    clip = labelled_clip(
        fps=CLIP_FPS,
        segments=[
            Segment("frontal", 5.0),
            Segment("out_of_frame", 2.0),
            Segment("empty", 3.5),
            Segment("frontal", 4.0),
        ],
    )
    images = [frame.image for frame in clip]
    back = images[-4 * CLIP_FPS :]
    images += moving_photo_frames("tp_sofa_laptop", 5 * CLIP_FPS, len(images), seed=7) + back
    path = tmp_path_factory.mktemp("camera") / "presenter.y4m"
    write_y4m(path, images, CLIP_FPS)
    return path


def chromium_args(camera: Path | None, *, allow_media: bool = True) -> list[str]:
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream",  # camera from the file below, a beeping microphone
    ]
    args.append("--use-fake-ui-for-media-stream" if allow_media else "--deny-permission-prompts")
    if camera is not None:
        args.append(f"--use-file-for-fake-video-capture={camera}")
    return args


def launch(playwright: Any, args: list[str]) -> Browser:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium fonts-noto-cjk")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)


@contextmanager
def ready_page(server: ThreadServer, camera: Path, query: str) -> Iterator[Page]:
    """The page at `query` (say "?lang=ko") in a browser whose camera plays `camera`, once
    its script is ready; the browser closes after."""
    with sync_playwright() as pw:
        browser = launch(pw, chromium_args(camera))
        try:
            page = browser.new_page()
            page.goto(server.http + "/" + query)
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            yield page
        finally:
            browser.close()


class StrictCsp:
    """Pure ASGI middleware: the page's own files carry the hardening issue's CSP. The API's
    answers are left alone: report.html is a self-contained document with its own inline CSS,
    which needs a policy of its own."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return

        async def with_csp(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"content-security-policy", STRICT_CSP.encode()),
                ]
            await send(message)

        await self.app(scope, receive, with_csp)


@pytest.fixture
def csp_server(settings: Settings) -> Iterator[ThreadServer]:
    srv = ThreadServer(settings)
    srv.app.add_middleware(StrictCsp)
    with srv:
        yield srv


class PageProblems:
    """Console errors, CSP violations and uncaught exceptions seen by a page."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.messages.append(f"pageerror: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "error" or "Content Security Policy" in text:
            self.messages.append(f"console.{message.type}: {text}")

    def unexpected(self) -> list[str]:
        # A 409 from the report while it is being written is expected: the page retries.
        return [m for m in self.messages if "status of 409" not in m]


def fetch(server: ThreadServer, href: str) -> httpx.Response:
    response = httpx.get(server.http + href, timeout=30)
    assert response.status_code == 200, (href, response.status_code, response.text[:300])
    return response


def save_screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@pytest.mark.parametrize("transport", ["webrtc", "ws"])
def test_rehearsal_in_a_real_browser(
    csp_server: ThreadServer, camera_clip: Path, transport: str
) -> None:
    query = "?lang=en" + ("&transport=ws" if transport == "ws" else "")
    with sync_playwright() as pw:
        browser = launch(pw, chromium_args(camera_clip))
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            problems = PageProblems(page)
            page.goto(csp_server.http + "/" + query)
            expect(page.locator("body")).to_have_attribute("data-ready", "true")

            # Start by keyboard alone: type the title, Tab to the button, Enter.
            page.locator("#title").fill("Series A pitch")
            page.locator("#start-button").focus()
            page.keyboard.press("Enter")
            expect(page.locator("body")).to_have_attribute("data-screen", "live")
            expect(page.locator("body")).to_have_attribute("data-transport", transport)
            if transport == "ws":
                # Forced, so no fallback notice: the badge says which transport is used.
                expect(page.locator("#transport-badge")).to_have_text("Connected over WebSocket")
                # Chromium encodes the camera as VP9 itself (WebCodecs): the VP91 messages
                expect(page.locator("body")).to_have_attribute("data-video", "vp9")
            else:
                expect(page.locator("#notice-banner")).to_be_hidden()
                # The page offers VP9 first and the server takes it: the browser's own frames
                expect(page.locator("body")).to_have_attribute("data-video", "vp9")

            # Metrics arrive and drive the overlay, the counters and the chart.
            # (Locator assertions, not wait_for_function: the strict CSP forbids its eval.)
            expect(page.locator("body")).to_have_attribute(
                "data-metrics", re.compile(r"^([5-9]|\d{2,})$"), timeout=30_000
            )
            expect(page.locator("#latency")).to_have_text(re.compile(r"^\d+ ms$"))
            # ... and the server takes Chromium's own VP9 on both transports (recorded as sent,
            # not encoded again)
            sessions = [s for s in csp_server.manager.sessions.values() if s.state == "live"]
            assert [s.video_kind for s in sessions] == ["vp9"], sessions
            expect(page.locator("#eye-indicator")).to_have_attribute(
                "data-state", "on", timeout=30_000
            )
            # The "look into the camera" prompt stays until the server says it has learnt the
            # presenter's look at the camera (metrics.gaze.calibration), then goes.
            expect(page.locator("body")).to_have_attribute(
                "data-calibration", "learnt", timeout=30_000
            )
            expect(page.locator("#calibrate")).to_be_hidden()

            # The clip's empty segment: the face_lost cue shows as a badge and is announced.
            badge = page.locator('.cue-badge[data-cue="face_lost"]')
            expect(badge).to_be_visible(timeout=40_000)
            expect(badge.locator(".cue-name")).to_have_text("Face out of view")
            expect(page.locator("#cue-announcer")).not_to_be_empty()
            save_screenshot(page, f"page-live-{transport}.png")

            # ... and fades once the face is back.
            expect(badge).to_have_count(0, timeout=30_000)
            expect(page.locator("#eye-indicator")).to_have_attribute(
                "data-state", "on", timeout=30_000
            )
            save_screenshot(page, f"page-live-face-{transport}.png")

            # The face turned away in the frame: the badge says hidden, not out of view.
            hidden = page.locator('.cue-badge[data-cue="face_lost"]')
            expect(hidden).to_be_visible(timeout=40_000)
            expect(hidden.locator(".cue-name")).to_have_text("Face hidden")
            expect(hidden.locator(".cue-message")).to_have_text(
                "Your face is hidden - head down or turned away? Face the camera."
            )
            expect(hidden).to_have_count(0, timeout=30_000)

            page.locator("#end-button").focus()
            page.keyboard.press("Enter")
            expect(page.locator("body")).to_have_attribute("data-screen", "end")
            expect(page.locator("#downloads")).to_be_visible(timeout=90_000)
            expect(page.locator("#end-state")).to_have_attribute("data-state", "completed")

            # The embedded report loaded in the page.
            report_frame = page.frame_locator("#report-frame")
            expect(report_frame.locator("body")).to_contain_text("Series A pitch", timeout=15_000)
            save_screenshot(page, f"page-end-{transport}.png")

            recording_href = page.locator("#download-recording").get_attribute("href")
            report_href = page.locator("#open-report").get_attribute("href")
            json_href = page.locator("#download-json").get_attribute("href")
            assert recording_href and report_href and json_href

            recording = fetch(csp_server, recording_href)
            with av.open(io.BytesIO(recording.content)) as container:
                assert container.streams.video[0].codec_context.name == "vp9"
                # The fake microphone's beeps reached the server (WebRTC track or AUD1 PCM).
                assert [a.codec_context.name for a in container.streams.audio] == ["opus"]
                packets = [p for p in container.demux(video=0) if p.size]
            droppable = sum(read_vp9_header(bytes(p)).droppable for p in packets)
            if transport == "webrtc":
                # The page asks WebRTC for two temporal layers: every other frame is one the
                # server may leave undecoded while its analysis is busy.
                assert 0.4 * len(packets) <= droppable <= 0.6 * len(packets), droppable
            else:
                # Chromium's WebCodecs encoder makes none (docs/protocol.md): one layer
                assert droppable == 0, droppable
            if transport == "ws":
                # What the page encoded, as it came: its keyframe every 2 s, where the server's
                # own encoder would start one only with each 10 s segment.
                keyframes = sum(p.is_keyframe for p in packets)
                seconds = float((packets[-1].pts - packets[0].pts) * packets[0].time_base)
                assert seconds > 8 and keyframes >= seconds / 2.5, (keyframes, seconds)
            report_html = fetch(csp_server, report_href)
            assert report_html.headers["content-type"].startswith("text/html")
            assert "Series A pitch" in report_html.text
            report = json.loads(fetch(csp_server, json_href).text)
            assert report["title"] == "Series A pitch"
            assert any(c["cue"] == "face_lost" for c in report["cues"])

            assert problems.unexpected() == []
        finally:
            browser.close()


def test_camera_refused_is_explained_in_korean(csp_server: ThreadServer) -> None:
    with sync_playwright() as pw:
        browser = launch(pw, chromium_args(None, allow_media=False))
        try:
            page = browser.new_page()
            page.goto(csp_server.http + "/?lang=ko")
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            expect(page.locator("#start-button")).to_have_text("리허설 시작")
            page.locator("#start-button").click()
            expect(page.locator("#error-text")).to_contain_text("카메라 또는 마이크 권한이 차단")
            expect(page.locator("body")).to_have_attribute("data-screen", "start")
            save_screenshot(page, "page-start-camera-refused-ko.png")
            # Switching language re-renders the message too.
            page.locator('input[name="language"][value="en"]').check()
            expect(page.locator("#error-text")).to_contain_text("camera or microphone was blocked")
            # Refused before any session was created.
            assert csp_server.manager.sessions == {}
        finally:
            browser.close()


def test_server_unreachable_is_explained(csp_server: ThreadServer, camera_clip: Path) -> None:
    with ready_page(csp_server, camera_clip, "?lang=en") as page:
        page.route("**/api/sessions", lambda route: route.abort("connectionrefused"))
        page.locator("#start-button").click()
        expect(page.locator("#error-text")).to_contain_text("cannot be reached")
        expect(page.locator("#start-button")).to_be_enabled()


def test_expired_session_is_explained(csp_server: ThreadServer, camera_clip: Path) -> None:
    """A session whose token the server refuses (expired, deleted): the socket closes with
    1008 and the page says what happened, in the chosen language."""

    def stale_token(route: Route) -> None:
        answer = route.fetch()
        body = answer.json()
        body["token"] = "stale-" + body["token"]
        body["ws_url"] = body["ws_url"].split("?")[0] + "?token=" + body["token"]
        route.fulfill(response=answer, json=body)

    start_is_explained(csp_server, camera_clip, stale_token, "세션이 만료되었거나")


def start_is_explained(
    server: ThreadServer, camera_clip: Path, on_create: Any, explanation: str
) -> None:
    """Start a rehearsal in Korean over the WebSocket with the session's creation going
    through `on_create` (a Playwright route handler): the page shows `explanation` and is back
    at the start."""
    with ready_page(server, camera_clip, "?lang=ko&transport=ws") as page:
        page.route("**/api/sessions", on_create)
        page.locator("#start-button").click()
        expect(page.locator("#error-text")).to_contain_text(explanation)
        expect(page.locator("body")).to_have_attribute("data-screen", "start")


def test_a_first_frame_the_server_refuses_is_explained_not_retried(
    settings: Settings, camera_clip: Path
) -> None:
    """The session was created, but by its first frame the server's one live place was taken
    (another presenter started in between): the socket closes with 1013 and the page says the
    server is busy, in the chosen language, and is back at the start; no reconnect loop."""
    from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip

    jpeg = encode_jpeg(labelled_clip(15.0, [Segment("frontal", 0.1)])[0].image)
    others: list[ClientConnection] = []

    with ThreadServer(settings.updated(max_concurrent_sessions=1)) as server:

        def then_another_goes_live(route: Route) -> None:
            answer = route.fetch()  # the page's session: created (201)
            other = httpx.post(server.http + "/api/sessions", json={"language": "en"}).json()
            ws = connect_ws(f"{server.ws}/ws/sessions/{other['session_id']}?token={other['token']}")
            others.append(ws)  # held open: the other session stays live
            ws.send(jpeg)
            while json.loads(ws.recv(timeout=60)).get("state") != "live":
                pass
            route.fulfill(response=answer)

        try:
            start_is_explained(server, camera_clip, then_another_goes_live, "서버가 바쁩니다")
        finally:
            for ws in others:
                ws.close()


def test_server_text_is_shown_as_text_never_html(
    csp_server: ThreadServer, camera_clip: Path
) -> None:
    """Critiques carry model output: the page must render it as text. A critique with markup
    is slipped into the real event stream (WebSocket transport)."""
    hostile = '<img src=x id=injected onerror="document.title=1">Slow down'
    injected: list[bool] = []

    def relay(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            ws.send(message)
            if injected or not isinstance(message, str) or '"metrics"' not in message:
                return
            injected.append(True)
            critique = {
                "type": "critique",
                "session_id": "x",
                "seq": 10_000,
                "t": 9.0,
                "source": "vlm",
                "t_start": 0.0,
                "t_end": 9.0,
                "items": [
                    {
                        "category": "voice",
                        "observation": hostile,
                        "suggestion": "Pause <b>between</b> points.",
                        "severity": "warn",
                        "frame_t": 4.0,
                    }
                ],
            }
            ws.send(json.dumps(critique))

        server.on_message(to_page)

    with sync_playwright() as pw:
        browser = launch(pw, chromium_args(camera_clip))
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.route_web_socket(re.compile(r"/ws/sessions/"), relay)
            page.goto(csp_server.http + "/?lang=en&transport=ws")
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            page.locator("#start-button").click()
            item = page.locator("#critique-feed .critique-item")
            expect(item).to_have_count(1, timeout=30_000)
            expect(item.locator(".critique-observation")).to_have_text(hostile)
            # the category in the page's words, not the event's key
            expect(item.locator(".critique-category")).to_have_text("Voice")
            expect(item.locator(".critique-suggestion")).to_have_text(
                "Try: Pause <b>between</b> points."
            )
            expect(page.locator("#injected")).to_have_count(0)
            expect(page.locator("#critique-feed b")).to_have_count(0)
            expect(page.locator("#feed-empty")).to_be_hidden()
            save_screenshot(page, "page-live-critique.png")
        finally:
            browser.close()


def test_no_look_into_the_camera_is_said_and_the_prompt_goes(
    settings: Settings, tmp_path: Path
) -> None:
    """The camera shows an empty room: the server sees no look at the camera within
    `gaze_calibration_within_s` (6 s here, 20 by default) of the session's first frame, and
    says it will learn no baseline (`skipped`); the "look into the camera" prompt, shown until
    then, says that eye contact is read with the default settings (in the chosen language),
    and then goes."""
    from tests.fixtures.clips import Segment, labelled_clip

    clip = labelled_clip(fps=CLIP_FPS, segments=[Segment("empty", 4.0)])
    camera = tmp_path / "empty-room.y4m"
    write_y4m(camera, [frame.image for frame in clip], CLIP_FPS)
    with (
        ThreadServer(settings.updated(gaze_calibration_within_s=6.0)) as server,
        ready_page(server, camera, "?lang=ko&transport=ws") as page,
    ):
        page.locator("#start-button").click()
        expect(page.locator("body")).to_have_attribute("data-screen", "live")
        expect(page.locator("body")).to_have_attribute(
            "data-metrics", re.compile(r"^([5-9]|\d{2,})$"), timeout=30_000
        )
        expect(page.locator("body")).to_have_attribute("data-calibration", "learning")
        expect(page.locator("#calibrate")).to_be_visible()
        expect(page.locator("body")).to_have_attribute(
            "data-calibration", "skipped", timeout=30_000
        )
        prompt = page.locator("#calibrate-text")
        expect(prompt).to_contain_text("기본 설정으로 시선을 판단합니다")
        expect(page.locator("#calibrate")).to_be_hidden(timeout=15_000)


def test_a_server_that_learns_no_baseline_shows_no_prompt(
    settings: Settings, camera_clip: Path
) -> None:
    """COACH_GAZE_CALIBRATION_S=0: the metrics say `off` from the first, and the page takes
    down the prompt it showed when the media started."""
    with (
        ThreadServer(settings.updated(gaze_calibration_s=0.0)) as server,
        ready_page(server, camera_clip, "?lang=en&transport=ws") as page,
    ):
        page.locator("#start-button").click()
        expect(page.locator("body")).to_have_attribute("data-calibration", "off", timeout=30_000)
        expect(page.locator("#calibrate")).to_be_hidden()


def test_a_start_submitted_twice_starts_one_rehearsal(
    csp_server: ThreadServer, camera_clip: Path
) -> None:
    """ "Start next take" submits the form by script, which a disabled button does not stop:
    two submits in a row (a double click) start one session, not two with the first one's
    camera and microphone left running."""
    created: list[str] = []

    def count(route: Route) -> None:
        if route.request.method == "POST":
            created.append(route.request.url)
        route.continue_()

    with ready_page(csp_server, camera_clip, "?lang=en&transport=ws") as page:
        page.route("**/api/sessions", count)
        page.evaluate(
            "() => { const form = document.getElementById('start-form');"
            " form.requestSubmit(); form.requestSubmit(); }"
        )
        expect(page.locator("body")).to_have_attribute("data-screen", "live")
        page.locator("#end-button").click()
        expect(page.locator("body")).to_have_attribute("data-screen", "end")
        cameras = page.evaluate(
            "() => document.getElementById('preview').srcObject?.getTracks()"
            ".map(track => track.readyState) ?? []"
        )
    assert len(created) == 1, created
    assert all(state == "ended" for state in cameras), cameras


def test_ending_while_connecting_is_an_end_not_an_error(
    csp_server: ThreadServer, camera_clip: Path
) -> None:
    """The presenter ends the rehearsal while WebRTC is still connecting: the server ends the
    session and refuses the offer that arrives after (409). That refusal is the end they asked
    for: the end screen stays, with no error, and shows the session's result."""
    held: list[Route] = []
    with ready_page(csp_server, camera_clip, "?lang=en") as page:

        def hold(route: Route) -> None:
            held.append(route)  # the offer waits until the end has been asked

        page.route("**/offer", hold)
        page.locator("#start-button").click()
        expect(page.locator("body")).to_have_attribute("data-screen", "live")
        for _ in range(600):  # the offer goes once ICE has gathered: up to 30 s
            if held:
                break
            page.wait_for_timeout(50)  # lets Playwright deliver the route to `hold`
        assert len(held) == 1, "the page sent no offer"
        page.locator("#end-button").click()
        expect(page.locator("body")).to_have_attribute("data-screen", "end")
        with page.expect_response("**/offer") as refused:
            held[0].continue_()
        assert refused.value.status == 409
        expect(page.locator("#downloads")).to_be_visible(timeout=30_000)
        expect(page.locator("body")).to_have_attribute("data-screen", "end")
        expect(page.locator("#error-banner")).to_be_hidden()


class _LoopOf:
    """A frame observer that notes the server's event loop (the test drops a peer on it)."""

    def __init__(self, loops: list[asyncio.AbstractEventLoop]) -> None:
        loops.append(asyncio.get_running_loop())

    def observe(self, analysis: Any, image: Any) -> None:
        pass


def test_webrtc_lost_with_the_server_unreachable_keeps_the_take(
    settings: Settings, camera_clip: Path
) -> None:
    """Mid-rehearsal the WebRTC connection goes and the WebSocket it falls back to cannot
    connect (the server is away): the take is not dropped on the start screen. The page waits
    on the end screen, and when the server has finalised the session (the reconnect grace)
    it shows the report, with no stale notice or error about the connection."""
    loops: list[asyncio.AbstractEventLoop] = []
    hooks = default_hooks(settings)
    hooks.frame_observers.append(lambda session: _LoopOf(loops))
    with ThreadServer(settings, hooks) as server, sync_playwright() as pw:
        browser = launch(pw, chromium_args(camera_clip))
        try:
            page = browser.new_page()
            page.route_web_socket(re.compile(r"/ws/sessions/"), lambda ws: ws.close())
            page.goto(server.http + "/?lang=ko")
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            page.locator("#start-button").click()
            expect(page.locator("body")).to_have_attribute("data-transport", "webrtc")
            peers = server.app.state.rtc_peers
            [session_id] = list(peers.peers)
            session = server.manager.sessions[session_id]
            deadline = time.monotonic() + 60
            while session.frames_received == 0:  # the take is live and has video
                assert time.monotonic() < deadline, "no frame reached the server"
                time.sleep(0.05)
            asyncio.run_coroutine_threadsafe(peers.close_session(session_id), loops[0]).result(30)
            expect(page.locator("body")).to_have_attribute("data-screen", "end", timeout=30_000)
            expect(page.locator("#downloads")).to_be_visible(timeout=60_000)
            expect(page.locator("body")).to_have_attribute("data-screen", "end")
            expect(page.locator("#error-banner")).to_be_hidden()
            expect(page.locator("#notice-banner")).to_be_hidden()
        finally:
            browser.close()
    assert session.state == "completed" and session.duration_s is not None
