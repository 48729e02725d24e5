"""A JSON webhook: the run document (`RunReport.to_dict`) POSTed to a URL, with optional extra
headers (e.g. Authorization) from a file."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from zfsrep.config.model import WebhookSink
from zfsrep.core.run_report import RunReport
from zfsrep.sinks.shared import USER_AGENT, Credential, Request, read_headers, read_secret

NAME = "webhook"
CREDENTIAL = Credential(option="webhookUrl", name="webhook-url", key="url_file")


def build_requests(sink: WebhookSink, run: RunReport | None, run_id: str | None) -> list[Request]:
    """The webhook has no start message: nothing for ``run`` None."""
    if run is None:
        return []
    url = sink.url or read_secret(sink.url_file or "", "webhook URL", "report.webhook.url_file")
    extra = read_headers(sink.headers_file, "report.webhook.headers_file") if sink.headers_file else {}
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT} | extra
    secrets = (url, urlsplit(url).path, *extra.values())
    return [Request(NAME, url, json.dumps(run.to_dict()).encode(), headers, "run document",
                    f"check {sink.url_file or 'report.webhook.url'}"
                    + (f" and {sink.headers_file}" if sink.headers_file else ""), secrets)]
