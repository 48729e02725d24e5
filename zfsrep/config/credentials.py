"""systemd credentials in the config: a file path written "%d/NAME" means the credential NAME.

`LoadCredential=NAME:PATH` (the NixOS module's `credentials`, `zfsrep systemd render
--credential`) gives each unit its own copy in `$CREDENTIALS_DIRECTORY`, which differs per unit
(`/run/credentials/zfs-replicate.service/...`). One config serves every unit, so it says "%d/NAME"
(systemd's own specifier for that directory) and it is resolved here, at load time. Outside a unit
(no $CREDENTIALS_DIRECTORY) the value stays as written, and reading it fails naming "%d/NAME".

systemd provides the credentials to ExecStartPre= and ExecStart= only: the ExecStopPost= steps of
a sandboxed unit (teardown, report-result) find the directory gone (systemd 252) or the variable
unset (newer ones). So the units keep a copy for them (`zfsrep systemd keep-credentials`) in the
directory named by $ZFSREP_KEPT_CREDENTIALS, used when $CREDENTIALS_DIRECTORY is not there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

# Keys whose values are paths of files that may hold secrets.
FILE_KEYS = frozenset({"key_file", "url_file", "headers_file", "identity_file", "known_hosts", "ssh_config"})
SPECIFIER = "%d/"
KEPT_ENV = "ZFSREP_KEPT_CREDENTIALS"


def credentials_dir(env: Mapping[str, str]) -> str | None:
    """$CREDENTIALS_DIRECTORY, or in a unit's stop phase (where it is gone) the copy the unit kept."""
    given = env.get("CREDENTIALS_DIRECTORY")
    kept = env.get(KEPT_ENV)
    if kept and not (given and os.path.isdir(given)):
        return kept
    return given


def resolve_credential_paths(data: Any, credentials_dir: str | None) -> Any:
    """A copy of the parsed TOML with every "%d/NAME" file path made absolute."""
    if not credentials_dir:
        return data
    if isinstance(data, Mapping):
        return {
            key: os.path.join(credentials_dir, value[len(SPECIFIER):])
            if key in FILE_KEYS and isinstance(value, str) and value.startswith(SPECIFIER)
            else resolve_credential_paths(value, credentials_dir)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [resolve_credential_paths(v, credentials_dir) for v in data]
    return data
