"""Scrape a server's Prometheus `/metrics` into {sample name: value} (labelled samples summed)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def parse(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def parse_labelled(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(base_http: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base_http, timeout=30) as http:
        answer = await http.get("/metrics")
        answer.raise_for_status()
        return parse(answer.text)
