"""A tiny typed reader for TOML tables that collects every problem with its dotted path,
instead of stopping at the first one."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from zfsrep.core.durations import parse_duration
from zfsrep.core.sizes import parse_size

_MISSING = object()


def describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(value).replace("'", '"') if '"' not in value else repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)


class Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def table(self, data: Any, path: str, known: set[str]) -> dict[str, Any]:
        """``data`` as a table; unknown keys are errors."""
        if not isinstance(data, dict):
            self.error(path, f"expected a table, got {describe(data)}")
            return {}
        for key in data:
            if key not in known:
                hint = close_match(key, known)
                self.error(
                    join(path, key),
                    "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""),
                )
        return data

    def get(
        self,
        data: dict[str, Any],
        path: str,
        key: str,
        convert: Callable[[Any], Any],
        default: Any = _MISSING,
        expected: str = "",
    ) -> Any:
        if key not in data:
            if default is _MISSING:
                self.error(join(path, key), f"required: {expected}" if expected else "required")
                return None
            return default
        try:
            return convert(data[key])
        except (TypeError, ValueError) as e:
            self.error(join(path, key), str(e) or f"expected {expected}")
            return default if default is not _MISSING else None


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def close_match(word: str, candidates: set[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.7)
    return found[0] if found else None


# --- converters: raise ValueError("expected …, got …") -------------------------------------


def string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {describe(value)}")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {describe(value)}")
    return value


def non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {describe(value)}")
    return value


def port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"expected a port number 1-65535, got {describe(value)}")
    return value


def duration(value: Any) -> float:
    try:
        if not isinstance(value, (str, int, float)):
            raise ValueError
        return parse_duration(value)
    except ValueError:
        raise ValueError(f"expected a duration like 90s, 15m, 26h, 7d, got {describe(value)}") from None


def string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"expected an array of non-empty strings, got {describe(value)}")
    return tuple(value)


def argv(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ValueError(
            f'expected a command as an array of arguments, e.g. ["ssh", "backup", "true"], got {describe(value)}'
        )
    result = string_list(value)
    if not result:
        raise ValueError("expected a non-empty array of arguments")
    return result


def string_table(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"expected a table of strings, got {describe(value)}")
    return dict(value)


def one_of(*choices: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in choices:
            raise ValueError(
                f"expected one of {', '.join(repr(c) for c in choices)}, got {describe(value)}"
            )
        return value

    return convert


_DATASET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\- ]*(/[A-Za-z0-9_.:\- ]+)*$")


def dataset_name(value: Any) -> str:
    if not isinstance(value, str) or not _DATASET.match(value) or value.endswith("/") or "@" in value:
        raise ValueError(f"expected a ZFS dataset name like \"tank/home\", got {describe(value)}")
    return value


_SIZE = re.compile(r"^\d+[kKmMgG]?$")


def size(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if not isinstance(value, str) or not _SIZE.match(value):
        raise ValueError(f'expected a size like "256M" or "1G", got {describe(value)}')
    return value


def byte_count(value: Any) -> int:
    """A size in bytes: a non-negative integer, or a string like "1M" (binary K, M, G, T)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    try:
        if not isinstance(value, str):
            raise ValueError
        return parse_size(value)
    except ValueError:
        raise ValueError(f'expected a size like "512K" or "1M", got {describe(value)}') from None


def base_url(value: Any) -> str:
    """A URL that paths are appended to: without a trailing slash."""
    return string(value).rstrip("/")
