"""Find, read and validate the config file; render the resolved config back to TOML."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from zfsrep.config.credentials import credentials_dir, resolve_credential_paths
from zfsrep.config.model import CONFIG_ENV, DEFAULT_CONFIG_PATH, Config
from zfsrep.config.validate import validate
from zfsrep.errors import ConfigError


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    path = config_path(explicit)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"no config file at {path}; write one with `zfsrep config init {path}`, "
            f"or point to yours with --config PATH or {CONFIG_ENV}"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}; use --config PATH or {CONFIG_ENV}") from None
    return parse_config(text, path=str(path))


def parse_config(text: str, *, path: str | None = None) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"not valid TOML: {e}", path=path) from None
    data = resolve_credential_paths(data, credentials_dir(os.environ))
    return validate(data, path=path)


def config_to_dict(config: Config) -> dict[str, Any]:
    """The resolved config in the file's own shape, every default filled in (no nulls: TOML has none)."""

    def clean(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {k: clean(v) for k, v in dataclasses.asdict(value).items() if v is not None}
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    data = clean(config)
    data.pop("path", None)
    for target in data.get("targets", {}).values():
        target.pop("name", None)
    return data


def render_config(config: Config) -> str:
    return tomli_w.dumps(config_to_dict(config))
