"""HTTP sinks for `report-result`: Honeycomb events, healthchecks-style pings, a JSON webhook.

The only module that imports ``requests``. Secrets — the Honeycomb key, ping and webhook URLs,
webhook headers — are read from files, go only into the request, and never into a message: a
destination is shown as ``scheme://host[:port]``, exceptions are described by their kind (never
``str(exc)``, which holds the URL), and every message is scrubbed of the secrets it could hold.
Each request has a bounded timeout and a bounded number of retries with exponential backoff.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import requests

from zfsrep import __version__
from zfsrep.config.model import HoneycombSink, PingSink, WebhookSink
from zfsrep.core.run_report import truncate_utf8
from zfsrep.errors import ZfsrepError

log = logging.getLogger(__name__)
# urllib3 logs request paths at DEBUG; a healthchecks path is a secret.
logging.getLogger("urllib3.connectionpool").setLevel(logging.WARNING)

USER_AGENT = f"zfsrep/{__version__}"
PING_BODY_LIMIT = 100_000  # healthchecks keeps at most 100 kB of a ping body
BACKOFF_BASE = 1.0  # seconds before the first retry; doubled each time
BACKOFF_CAP = 30.0  # no wait between attempts is longer (also caps Retry-After)


class SinkError(ZfsrepError):
    """A sink cannot be used as configured (e.g. its secret file is unreadable)."""


@dataclass(frozen=True)
class Request:
    """One POST to a sink. ``url``, ``headers`` and ``secrets`` may hold secrets."""

    sink: str
    url: str
    body: bytes
    headers: dict[str, str]
    what: str  # "run event", "fail ping", ...: for messages
    fix: str  # what to check when it is refused
    secrets: tuple[str, ...] = ()
    batch_size: int | None = None  # a Honeycomb batch: check each event's status

    @property
    def destination(self) -> str:
        return destination(self.url)


@dataclass
class Delivery:
    """What became of a sink's requests."""

    sink: str
    ok: bool
    destination: str
    sent: list[str] = field(default_factory=list)  # what was delivered
    attempts: int = 0
    detail: str = ""  # why not (redacted), or "" when ok

    def to_dict(self) -> dict[str, Any]:
        return {"sink": self.sink, "ok": self.ok, "destination": self.destination, "sent": self.sent,
                "attempts": self.attempts, "error": self.detail or None}


# --- secrets -----------------------------------------------------------------------------------


def read_secret(path: str, what: str, config_key: str) -> str:
    """The stripped content of a secret file; a SinkError (naming the file, never its content)."""
    try:
        value = Path(path).read_text().strip()
    except FileNotFoundError:
        raise SinkError(f"{what} file {path} does not exist; create it or fix {config_key}") from None
    except OSError as e:
        raise SinkError(f"cannot read {what} file {path}: {e.strerror}; "
                        f"check its permissions or fix {config_key}") from None
    except UnicodeDecodeError:
        raise SinkError(f"{what} file {path} is not UTF-8 text; fix {config_key}") from None
    if not value:
        raise SinkError(f"{what} file {path} is empty; put the {what} in it or fix {config_key}")
    return value


def read_headers(path: str, config_key: str) -> dict[str, str]:
    """``Name: value`` lines (blank lines and ``#`` comments skipped)."""
    text = read_secret(path, "headers", config_key)
    headers: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
            raise SinkError(f"headers file {path} line {n}: expected `Name: value`; fix the file or {config_key}")
        headers[name.strip()] = value.strip()
    return headers


def destination(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: safe to show (no path, query or credentials)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme or '?'}://{host}{port}"


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


# --- building requests ---------------------------------------------------------------------------


def honeycomb_requests(sink: HoneycombSink, events: list[tuple[str, dict[str, Any]]]) -> list[Request]:
    """``events`` are ``(RFC 3339 time, fields)``: one POST each to /1/events/<dataset>, or one
    POST to /1/batch/<dataset> with ``sink.batch``."""
    key = read_secret(sink.key_file, "Honeycomb key", "report.honeycomb.key_file")
    fix = f"check the key in {sink.key_file} and report.honeycomb.api_host"
    base = sink.api_host.rstrip("/")
    dataset = quote(sink.dataset, safe="")
    headers = {"X-Honeycomb-Team": key, "Content-Type": "application/json", "User-Agent": USER_AGENT}
    if sink.batch:
        body = json.dumps([{"time": t, "data": data} for t, data in events]).encode()
        return [Request("honeycomb", f"{base}/1/batch/{dataset}", body, headers,
                        f"{len(events)} events (batch)", fix, (key,), batch_size=len(events))]
    return [
        Request("honeycomb", f"{base}/1/events/{dataset}", json.dumps(data).encode(),
                headers | {"X-Honeycomb-Event-Time": t}, f"{data.get('event', 'event')} event", fix, (key,))
        for t, data in events
    ]


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
    return Request("healthchecks", full, truncate_utf8(body, PING_BODY_LIMIT),
                   {"Content-Type": "text/plain; charset=utf-8", "User-Agent": USER_AGENT},
                   f"{kind} ping", f"check the URL in {sink.url_file or where}", (url, parts.path))


def webhook_request(sink: WebhookSink, document: dict[str, Any]) -> Request:
    url = sink.url or read_secret(sink.url_file or "", "webhook URL", "report.webhook.url_file")
    extra = read_headers(sink.headers_file, "report.webhook.headers_file") if sink.headers_file else {}
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT} | extra
    secrets = (url, urlsplit(url).path, *extra.values())
    return Request("webhook", url, json.dumps(document).encode(), headers, "run document",
                   f"check {sink.url_file or 'report.webhook.url'}"
                   + (f" and {sink.headers_file}" if sink.headers_file else ""), secrets)


# --- sending -----------------------------------------------------------------------------------


def deliver(
    sink: str,
    requests_: list[Request],
    *,
    timeout: float,
    retries: int,
    sleep: Callable[[float], None] = time.sleep,
    session: requests.Session | None = None,
) -> Delivery:
    """Send a sink's requests in order; stop at the first that still fails after its retries
    (a sink that is down costs one request's retries, not one per event)."""
    own = session is None
    session = session or requests.Session()
    result = Delivery(sink, True, requests_[0].destination if requests_ else "")
    try:
        for req in requests_:
            attempts, problem = _send(session, req, timeout=timeout, retries=retries, sleep=sleep)
            result.attempts += attempts
            if problem is not None:
                result.ok = False
                result.detail = redact(
                    f"{sink} ({req.destination}): {req.what} not delivered: {problem}"
                    f" (after {attempts} attempt{'s' if attempts != 1 else ''}); {req.fix}",
                    req.secrets)
                break
            result.sent.append(req.what)
    finally:
        if own:
            session.close()
    return result


def _send(session: requests.Session, req: Request, *, timeout: float, retries: int,
          sleep: Callable[[float], None]) -> tuple[int, str | None]:
    """(attempts made, None when delivered or why not)."""
    problem: str | None = None
    for attempt in range(1, retries + 2):
        wait = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
        try:
            response = session.post(req.url, data=req.body, headers=req.headers, timeout=timeout,
                                    allow_redirects=True)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema, ValueError, UnicodeError):
            return attempt, "not a valid http(s) URL or header"
        except requests.RequestException as e:
            problem = describe_exception(e)
        else:
            with response:
                code = response.status_code
                if 200 <= code < 300:
                    rejected = _batch_rejections(response, req.batch_size)
                    return attempt, (redact(rejected, req.secrets) if rejected else None)
                problem = f"HTTP {code}" + _reason(response)
                if not (code in (408, 425, 429) or code >= 500):
                    return attempt, problem
                wait = min(BACKOFF_CAP, max(wait, _retry_after(response)))
        log.info("%s (%s): %s; attempt %d of %d", req.sink, req.destination,
                 redact(problem, req.secrets), attempt, retries + 1)
        if attempt <= retries:
            sleep(wait)
    return retries + 1, problem


def _batch_rejections(response: requests.Response, size: int | None) -> str | None:
    """Honeycomb's batch answer has one status per event: a 2xx request can still lose events."""
    if size is None:
        return None
    try:
        statuses = response.json()
    except ValueError:
        return "the batch answer is not JSON"
    if not isinstance(statuses, list) or len(statuses) != size:
        return f"the batch answer does not list {size} event statuses"
    bad = [s for s in statuses if not (isinstance(s, dict) and 200 <= int(s.get("status", 0)) < 300)]
    if not bad:
        return None
    first = bad[0].get("error") if isinstance(bad[0], dict) else None
    return f"{len(bad)} of {size} events rejected" + (f": {str(first)[:200]}" if first else "")


def _reason(response: requests.Response) -> str:
    try:
        text = response.text.strip()
    except Exception:  # noqa: BLE001 — a broken body must not hide the status code
        return ""
    if not text:
        return ""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            text = data["error"]
    except ValueError:
        pass
    text = " ".join(text.split())
    return f": {text[:200]}"


def _retry_after(response: requests.Response) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0


def describe_exception(exc: BaseException) -> str:
    """What went wrong, without ``str(exc)`` (requests puts the URL, a secret, in it)."""
    exceptions = requests.exceptions
    if isinstance(exc, exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, exceptions.ReadTimeout):
        return "no answer in time"
    if isinstance(exc, exceptions.SSLError):
        return "TLS failed (certificate or protocol)"
    if isinstance(exc, exceptions.ConnectionError):
        reason = _os_reason(exc)
        return f"cannot connect: {reason}" if reason else "cannot connect"
    return type(exc).__name__


def _os_reason(exc: BaseException) -> str | None:
    """The OS-level reason (``Connection refused``, ``Name or service not known``) in a chain."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and isinstance(e.strerror, str) and e.strerror:
            return e.strerror
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
    return None
