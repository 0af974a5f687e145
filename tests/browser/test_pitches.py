"""My pitches and the report that plays, in Debian's Chromium with the fake camera: a pitch is
created, two takes of it rehearsed in one click each, the progress chart shows both, the
comparison shows the change and both recordings, a report's timeline marker seeks its video
(served, and downloaded next to its recording), the pitch is deleted. The page runs under the
strict CSP and report.html under its own; any violation or page error fails the test."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from app.config import Settings
from tests.browser.test_page import (
    CLIP_FPS,
    PageProblems,
    StrictCsp,
    chromium_args,
    launch,
    save_screenshot,
    write_y4m,
)
from tests.support.server import ThreadServer

# Resolves with the video's currentTime at its next `seeked`, or null after a bounded number
# of animation frames (no wall-clock wait).
ARM_SEEKED = """(selector) => {
  const video = document.querySelector(selector);
  window.__seeked = new Promise((resolve) => {
    let frames = 0;
    video.addEventListener("seeked", () => resolve(video.currentTime), { once: true });
    const tick = () => (++frames > 1800 ? resolve(null) : requestAnimationFrame(tick));
    requestAnimationFrame(tick);
  });
}"""


@pytest.fixture(scope="module")
def take_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures.clips import Segment, labelled_clip

    # A face, then an empty room (the `face_lost` cue: a moment on every take's timeline).
    clip = labelled_clip(fps=CLIP_FPS, segments=[Segment("frontal", 4.0), Segment("empty", 5.0)])
    path = tmp_path_factory.mktemp("camera") / "takes.y4m"
    write_y4m(path, [frame.image for frame in clip], CLIP_FPS)
    return path


@pytest.fixture
def csp_server(settings: Settings) -> Iterator[ThreadServer]:
    srv = ThreadServer(settings)
    srv.app.add_middleware(StrictCsp)
    with srv:
        yield srv


def click_and_await_seek(page: Page, video: str, target: Locator, *, key: str = "") -> float:
    page.evaluate(ARM_SEEKED, video)
    if key:
        target.focus()
        page.keyboard.press(key)
    else:
        target.click()
    current = page.evaluate("() => window.__seeked")
    assert current is not None, "the video never seeked"
    return float(current)


def rehearse_take(page: Page, pitch: Locator, title: str) -> None:
    """One click on "Start next take", a cue, the end, back to the start screen."""
    body = page.locator("body")
    pitch.locator(".pitch-take").click()
    expect(body).to_have_attribute("data-screen", "live")
    expect(page.locator(".cue-badge").first).to_be_visible(timeout=40_000)
    page.locator("#end-button").click()
    expect(body).to_have_attribute("data-screen", "end")
    expect(page.locator("#end-title")).to_have_text(title)
    expect(page.locator("#downloads")).to_be_visible(timeout=90_000)
    expect(page.locator("#end-state")).to_have_attribute("data-state", "completed")
    page.locator("#new-button").click()
    expect(body).to_have_attribute("data-screen", "start")


def signed(value: float) -> str:
    rounded = round(value)
    return "±0" if rounded == 0 else ("+" if rounded > 0 else "−") + str(abs(rounded))


def test_two_takes_of_a_pitch_compared_and_the_report_plays(
    csp_server: ThreadServer, take_clip: Path, tmp_path: Path
) -> None:
    base = csp_server.http
    with sync_playwright() as pw:
        browser = launch(pw, chromium_args(take_clip))
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            problems = PageProblems(page)
            page.goto(base + "/?lang=en")
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            expect(page.locator("#pitches-heading")).to_have_text("My pitches")

            # Create a pitch by keyboard: its language defaults to the page's.
            page.locator("#pitch-title").fill("Seed round")
            page.locator("#pitch-target").fill("1")
            page.locator("#pitch-create").focus()
            page.keyboard.press("Enter")
            pitch = page.locator("li.pitch")
            expect(pitch).to_have_count(1)
            expect(page.locator("#pitches-status")).to_have_text("Pitch “Seed round” created.")
            expect(pitch.locator(".pitch-take")).to_be_focused()
            stored = json.loads(
                page.evaluate("() => localStorage.getItem('coach.pitches')") or "[]"
            )
            assert [p["title"] for p in stored] == ["Seed round"]
            pitch_id, token = stored[0]["pitch_id"], stored[0]["token"]
            auth = {"Authorization": f"Bearer {token}"}
            answer = httpx.get(f"{base}/api/pitches/{pitch_id}", headers=auth, timeout=30)
            assert answer.json()["target_duration_s"] == 60 and answer.json()["language"] == "en"

            # The list survives a reload (the browser keeps the pitch and its token), in Korean.
            page.goto(base + "/?lang=ko")
            expect(page.locator("#pitches-heading")).to_have_text("내 피치")
            expect(pitch.locator(".pitch-take")).to_have_text("다음 테이크 시작")
            page.goto(base + "/?lang=en")
            expect(pitch).to_have_attribute("data-state", "ready")

            rehearse_take(page, pitch, "Seed round")
            expect(pitch.locator(".pitch-meta")).to_contain_text("Takes: 1")
            rehearse_take(page, pitch, "Seed round")
            expect(pitch.locator(".pitch-meta")).to_contain_text("Takes: 2")
            save_screenshot(page, "pitches-list.png")

            # The progress chart: a point for each take in every score measured.
            pitch.locator(".pitch-open").click()
            expect(pitch.locator(".pitch-open")).to_have_attribute("aria-expanded", "true")
            overall = pitch.locator('.progress-metric[data-key="overall"] circle.progress-point')
            expect(overall).to_have_count(2)
            expect(overall.nth(0)).to_have_attribute("data-take", "1")
            expect(overall.nth(1)).to_have_attribute("data-take", "2")
            expect(pitch.locator(".progress-metric")).to_have_count(10)
            expect(pitch.locator(".takes-table tbody tr")).to_have_count(2)

            # Compare take 1 with take 2: the change is the server's b - a.
            takes = httpx.get(f"{base}/api/pitches/{pitch_id}", headers=auth, timeout=30).json()
            a, b = (k["session_id"] for k in takes["takes"])
            expect(pitch.locator("select.compare-a")).to_have_value(a)
            expect(pitch.locator("select.compare-b")).to_have_value(b)
            pitch.locator(".compare-button").click()
            comparison = pitch.locator(".comparison")
            expect(comparison).to_be_visible()
            expect(page.locator("#pitches-status")).to_have_text("Take 1 and take 2 side by side.")
            delta = httpx.get(
                f"{base}/api/pitches/{pitch_id}/compare",
                params={"a": a, "b": b},
                headers=auth,
                timeout=30,
            ).json()["delta"]
            overall_change = comparison.locator('.delta[data-key="overall"]')
            expect(overall_change).to_contain_text(signed(delta["scores"]["overall"]))
            expect(comparison.locator(".compare-table tbody tr")).to_have_count(10)
            # ... and the time looking down, the server's figure in points (JS's toFixed and
            # Python's round part ways at .5: within a point)
            down = delta["figures"]["looking_down_share"]
            assert down is not None, delta
            shown = comparison.locator('.delta[data-key="looking_down_share"]')
            expect(shown).to_contain_text(" pt")
            points = re.search(r"([±+−])(\d+) pt", shown.inner_text())
            assert points is not None, shown.inner_text()
            value = int(points[2]) * (-1 if points[1] == "−" else 1)
            assert abs(value - 100 * down) <= 1, (value, down)
            videos = comparison.locator("video.compare-video")
            expect(videos).to_have_count(2)
            for i, sid in enumerate((a, b)):
                src = videos.nth(i).get_attribute("src") or ""
                assert src.startswith(f"/api/sessions/{sid}/recording.webm?token=")
            # Each take's own timeline seeks its own video.
            moment = comparison.locator('.compare-take[data-take="2"] .take-moment').first
            t = float(moment.get_attribute("data-t") or "nan")
            seeked = click_and_await_seek(page, '.compare-video[data-take="2"]', moment)
            assert abs(seeked - t) < 0.25, (seeked, t)
            comparison.scroll_into_view_if_needed()
            save_screenshot(page, "pitches-compare.png")
            # Each take's moments in time order (a cue said late, like fillers, is not last).
            for n in (1, 2):
                at = comparison.locator(f'.compare-take[data-take="{n}"] .take-moment')
                times = [
                    float(x or "nan") for x in at.evaluate_all("ms => ms.map(m => m.dataset.t)")
                ]
                assert times and times == sorted(times), (n, times)

            # In Korean the particles follow the numbers as they are read: 1 -> 과, 2 -> 를.
            page.goto(base + "/?lang=ko")
            expect(pitch).to_have_attribute("data-state", "ready")
            pitch.locator(".pitch-open").click()
            pitch.locator(".compare-button").click()
            expect(page.locator("#pitches-status")).to_have_text(
                "테이크 1과 테이크 2를 나란히 보여 줍니다."
            )
            seek = comparison.locator('.compare-take[data-take="2"] .take-moment').first
            expect(seek).to_have_attribute("aria-label", re.compile(r"^테이크 2를 "))
            page.goto(base + "/?lang=en")
            expect(pitch).to_have_attribute("data-state", "ready")
            pitch.locator(".pitch-open").click()
            expect(pitch.locator(".takes-table tbody tr")).to_have_count(2)

            # The report plays: its timeline markers seek the recording it shows.
            report_href = pitch.locator(".takes-table a.take-report").nth(1).get_attribute("href")
            assert report_href
            page.goto(base + report_href)
            expect(page.locator("html")).to_have_class(re.compile(r"\bseekable\b"))
            expect(page.locator("video#recording")).to_have_attribute(
                "src", re.compile(r"/recording\.webm\?token=")
            )
            expect(page.locator(".gaze-shares")).to_contain_text("Where your eyes were:")
            marker = page.locator("button.marker").first
            t = float(marker.get_attribute("data-t") or "nan")
            seeked = click_and_await_seek(page, "#recording", marker)
            assert abs(seeked - t) < 0.25, (seeked, t)
            # Enter on a moment that is not a button (a keyframe, a chart's cue shade) too.
            other = page.locator("figure[data-t], rect.cue[data-t]").first
            expect(other).to_have_attribute("role", "button")
            t = float(other.get_attribute("data-t") or "nan")
            seeked = click_and_await_seek(page, "#recording", other, key="Enter")
            assert abs(seeked - t) < 0.25, (seeked, t)
            page.locator("#recording").evaluate("v => v.pause()")
            page.evaluate("() => window.scrollTo(0, 0)")
            save_screenshot(page, "report-plays.png")

            # Downloaded, the report opens offline with the recording file beside it.
            offline = tmp_path / "offline"
            offline.mkdir()
            html = httpx.get(base + report_href, timeout=30).text
            (offline / "report.html").write_text(html, "utf-8")
            session_dir = csp_server.manager.session_dir(b)
            shutil.copy(session_dir / "recording.webm", offline / "recording.webm")
            page.goto((offline / "report.html").as_uri())
            expect(page.locator("html")).to_have_class(re.compile(r"\bseekable\b"))
            marker = page.locator("button.marker").first
            t = float(marker.get_attribute("data-t") or "nan")
            seeked = click_and_await_seek(page, "#recording", marker)
            assert abs(seeked - t) < 0.25, (seeked, t)

            # Delete the pitch: confirmed, gone from the list, the browser and the server.
            page.goto(base + "/?lang=en")
            expect(pitch).to_have_attribute("data-state", "ready")
            pitch.locator(".pitch-delete").click()
            pitch.locator(".pitch-delete-yes").click()
            expect(pitch).to_have_count(0)
            expect(page.locator("#pitches-empty")).to_be_visible()
            expect(page.locator("#pitches-status")).to_have_text("Pitch “Seed round” deleted.")
            assert page.evaluate("() => localStorage.getItem('coach.pitches')") == "[]"
            gone = httpx.get(f"{base}/api/pitches/{pitch_id}", headers=auth, timeout=30)
            assert gone.status_code == 404

            assert problems.unexpected() == []
        finally:
            browser.close()


def test_a_target_of_hours_reads_in_hours(csp_server: ThreadServer, take_clip: Path) -> None:
    """A target past an hour is said h:mm:ss (it read "150:00")."""
    with sync_playwright() as pw:
        browser = launch(pw, chromium_args(take_clip))
        try:
            page = browser.new_page()
            page.goto(csp_server.http + "/?lang=en")
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            page.locator("#pitch-title").fill("Keynote")
            page.locator("#pitch-target").fill("150")
            page.locator("#pitch-create").click()
            expect(page.locator("li.pitch .pitch-meta")).to_contain_text("2:30:00")
        finally:
            browser.close()
