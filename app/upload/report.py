"""An upload's report: the live session's report (`app.coaching.report`), built from what the
upload's analysis collected."""

from __future__ import annotations

import asyncio

from app.coaching.report import REPORT_EVENT_TYPES, ReportInput, build_report, write_report_files
from app.config import Settings
from app.upload.service import ReportBuilder, UploadReportInput


def upload_report_input(upload: UploadReportInput) -> ReportInput:
    """What the upload's analysis collected, as the report's plain input."""
    return ReportInput(
        session_id=upload.video_id,
        title=upload.title,
        language=upload.language,
        duration_s=upload.duration_s,
        events=[e for e in upload.events if e.get("type") in REPORT_EVENT_TYPES],
        keyframe_candidates=upload.keyframe_candidates,
        recording_url=upload.recording_url,
        transcript=upload.transcript,
    )


def upload_report_builder(settings: Settings) -> ReportBuilder:
    """`UploadService.report_builder`: report.json and report.html in the upload's folder,
    the same shape as a live session's report (the summary is the rules summary)."""

    async def build(upload: UploadReportInput) -> None:
        report = await asyncio.to_thread(build_report, upload_report_input(upload), settings)
        await asyncio.to_thread(write_report_files, upload.upload_dir, report)

    return build
