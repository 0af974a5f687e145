"""The live session's report, built for an upload from its stored events and keyframes."""

from __future__ import annotations

import asyncio

from app.coaching.report import (
    REPORT_EVENT_TYPES,
    make_report_input,
    render_html,
    render_keyframes,
    report_json,
    rules_summary,
    write_report_files,
)
from app.config import Settings
from app.upload.service import ReportBuilder, UploadReportInput


def upload_report_builder(settings: Settings) -> ReportBuilder:
    """`UploadService.report_builder`: report.json and report.html in the upload's folder,
    the same shape as a live session's report (the summary is the rules summary)."""

    async def build(upload: UploadReportInput) -> None:
        events = [e for e in upload.events if e.get("type") in REPORT_EVENT_TYPES]
        inp = await asyncio.to_thread(
            make_report_input,
            session_id=upload.video_id,
            title=upload.title,
            language=upload.language,
            duration_s=upload.duration_s,
            events=events,
            settings=settings,
        )
        keyframes = await asyncio.to_thread(
            render_keyframes,
            upload.keyframe_candidates,
            upload.language,
            settings.report_font_path,
        )
        report = report_json(
            inp,
            keyframes=keyframes,
            summary=rules_summary(inp),
            summary_source="rules",
            recording_url=upload.recording_url,
        )
        html = await asyncio.to_thread(render_html, report, inp)
        await asyncio.to_thread(write_report_files, upload.upload_dir, report, html)

    return build
