"""Sending a sink's requests (`zfsrep.sinks` builds them): the only module that imports ``requests``.

Each request has a bounded timeout and a bounded number of retries with exponential backoff.
Secrets stay out of messages: a destination is shown as ``scheme://host[:port]``, exceptions are
described by their kind (never ``str(exc)``, which holds the URL), and every message is scrubbed
of the request's secrets.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from zfsrep.sinks.shared import Request, redact

log = logging.getLogger(__name__)
# urllib3 logs request paths at DEBUG; a healthchecks path is a secret.
logging.getLogger("urllib3.connectionpool").setLevel(logging.WARNING)

BACKOFF_BASE = 1.0  # seconds before the first retry; doubled each time
BACKOFF_CAP = 30.0  # no wait between attempts is longer (also caps Retry-After)


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
