"""Feedback on content from the VLM endpoint: one text-only chat request with a JSON schema."""

from __future__ import annotations

import json

import pytest

from app.coaching.content import llm_content, make_content_client
from app.config import Settings
from tests.coaching.fake_vlm import Reply, completion, running_fake_vlm

ITEM = {"category": "structure", "observation": "o", "suggestion": "s", "severity": "warn"}


async def test_one_text_only_request_in_the_sessions_language(settings: Settings) -> None:
    with running_fake_vlm() as fake:
        fake.script(Reply(body=completion(json.dumps({"items": [ITEM]}))))
        s = settings.updated(vlm_base_url=fake.base_url)
        client = make_content_client(s)
        assert client is not None
        try:
            content = await llm_content(
                client, s, "안녕하세요 음 제품을", "ko", duration_s=30, wpm=120.0, fillers="1 (음)"
            )
        finally:
            await client.close()
    assert content == {"source": "llm", "items": [ITEM]}
    (request,) = fake.requests
    body = request.body
    assert body["response_format"]["json_schema"]["name"] == "content"
    assert all(isinstance(m["content"], str) for m in body["messages"])  # no images
    assert "안녕하세요 음 제품을" in body["messages"][1]["content"]
    assert "한국어" in body["messages"][0]["content"]


async def test_a_bad_answer_raises_so_the_rules_stand_in(settings: Settings) -> None:
    with running_fake_vlm() as fake:
        fake.script(Reply(body=completion("not json")))
        s = settings.updated(vlm_base_url=fake.base_url)
        client = make_content_client(s)
        assert client is not None
        try:
            with pytest.raises(ValueError):
                await llm_content(client, s, "hi", "en", duration_s=5, wpm=None, fillers="0")
        finally:
            await client.close()
