"""What every sink module uses (stdlib only): the `Request` it builds, the `Credential` it is
given under systemd and NixOS, and the reading and hiding of secrets.

A sink module (`zfsrep.sinks`) turns its config and a run into `Request`s; `zfsrep.report`, the
only module that imports ``requests``, sends them. Secrets — keys, ping and webhook URLs, header
values — are read from files, go only into the request, and never into a message: a destination
is shown as ``scheme://host[:port]`` and every message is scrubbed of the request's ``secrets``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from zfsrep import __version__
from zfsrep.errors import ZfsrepError

USER_AGENT = f"zfsrep/{__version__}"


class SinkError(ZfsrepError):
    """A sink cannot be used as configured (e.g. its secret file is unreadable)."""


@dataclass(frozen=True)
class Credential:
    """The secret file a sink reads, as a systemd credential: the NixOS module's option
    ``services.zfsrep.credentials.<option>`` loads it as ``<name>``, and fills in the sink's
    ``<key> = "%d/<name>"`` (nixos-modules/sinks.json, written from this)."""

    option: str  # e.g. "honeycombKey"
    name: str  # e.g. "honeycomb-key"
    key: str  # the sink's config key that holds its path, e.g. "key_file"


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
