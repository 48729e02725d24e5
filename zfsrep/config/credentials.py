"""systemd credentials in the config: a file path written "%d/NAME" means the credential NAME.

`LoadCredential=NAME:PATH` (the NixOS module's `credentials`, `zfsrep systemd render
--credential`) gives each unit its own copy in `$CREDENTIALS_DIRECTORY`, which differs per unit
(`/run/credentials/zfs-replicate.service/...`). One config serves every unit, so it says "%d/NAME"
(systemd's own specifier for that directory) and it is resolved here, at load time. Outside a unit
(no $CREDENTIALS_DIRECTORY) the value stays as written, and reading it fails naming "%d/NAME".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

# Keys whose values are paths of files that may hold secrets.
FILE_KEYS = frozenset({"key_file", "url_file", "headers_file", "identity_file", "known_hosts", "ssh_config"})
SPECIFIER = "%d/"


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
