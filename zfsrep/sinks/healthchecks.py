"""healthchecks-style pings: success → URL, failure → URL/fail, the start of a run → URL/start;
the body is the run's plain-text summary."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from zfsrep.config.model import PingSink
from zfsrep.core.run_report import RunReport, truncate_utf8
from zfsrep.sinks.shared import USER_AGENT, Credential, Request, read_secret

NAME = "healthchecks"
CREDENTIAL = Credential(option="healthchecksUrl", name="healthchecks-url", key="url_file")
PING_BODY_LIMIT = 100_000  # healthchecks keeps at most 100 kB of a ping body


def build_requests(sink: PingSink, run: RunReport | None, run_id: str | None) -> list[Request]:
    """The start ping for ``run`` None, else the success or fail ping."""
    if run is None:
        return [ping_request(sink, "start", "", run_id)]
    return [ping_request(sink, "success" if run.success else "fail", run.text(), run_id)]


def ping_request(sink: PingSink, kind: str, body: str, run_id: str | None = None) -> Request:
    """A healthchecks-style ping: ``kind`` "success" → URL, "fail" → URL/fail, "start" → URL/start."""
    url = sink.url or read_secret(sink.url_file or "", "ping URL", "report.healthchecks.url_file")
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + ("" if kind == "success" else f"/{kind}")
    query = parts.query
    if run_id:
        query = (query + "&" if query else "") + urlencode({"rid": run_id})
    full = urlunsplit((parts.scheme, parts.netloc, path, query, parts.fragment))
    where = f"report.healthchecks.{'url_file' if sink.url_file else 'url'}"
    return Request(NAME, full, truncate_utf8(body, PING_BODY_LIMIT),
                   {"Content-Type": "text/plain; charset=utf-8", "User-Agent": USER_AGENT},
                   f"{kind} ping", f"check the URL in {sink.url_file or where}", (url, parts.path))
