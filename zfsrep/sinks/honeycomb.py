"""Honeycomb: one event per dataset × target and one run summary, to /1/events/<dataset> (or
all in one POST to /1/batch/<dataset> with ``batch = true``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from zfsrep.config.model import HoneycombSink
from zfsrep.core.run_report import RunReport, rfc3339
from zfsrep.sinks.shared import USER_AGENT, Credential, Request, read_secret

NAME = "honeycomb"
CREDENTIAL = Credential(option="honeycombKey", name="honeycomb-key", key="key_file")


def build_requests(sink: HoneycombSink, run: RunReport | None, run_id: str | None) -> list[Request]:
    """Honeycomb has no start event: nothing for ``run`` None."""
    if run is None:
        return []
    events = [(rfc3339(run.finished_at), run.item_fields(i)) for i in run.items]
    events.append((rfc3339(run.finished_at), run.summary_fields()))
    return event_requests(sink, events)


def event_requests(sink: HoneycombSink, events: list[tuple[str, dict[str, Any]]]) -> list[Request]:
    """``events`` are ``(RFC 3339 time, fields)``: one POST each to /1/events/<dataset>, or one
    POST to /1/batch/<dataset> with ``sink.batch``."""
    key = read_secret(sink.key_file, "Honeycomb key", "report.honeycomb.key_file")
    fix = f"check the key in {sink.key_file} and report.honeycomb.api_host"
    base = sink.api_host.rstrip("/")
    dataset = quote(sink.dataset, safe="")
    headers = {"X-Honeycomb-Team": key, "Content-Type": "application/json", "User-Agent": USER_AGENT}
    if sink.batch:
        body = json.dumps([{"time": t, "data": data} for t, data in events]).encode()
        return [Request(NAME, f"{base}/1/batch/{dataset}", body, headers,
                        f"{len(events)} events (batch)", fix, (key,), batch_size=len(events))]
    return [
        Request(NAME, f"{base}/1/events/{dataset}", json.dumps(data).encode(),
                headers | {"X-Honeycomb-Event-Time": t}, f"{data.get('event', 'event')} event", fix, (key,))
        for t, data in events
    ]
