"""How `config/model.py` states the config file's keys, and how `config/validate.py` reads them.

Each dataclass field that is a key of the file says so where it is declared: ``key(convert,
default)`` for a value (the converter from `config.checker`, its default or none when required,
and what to say when it is missing), ``table(cls)`` for a table under it. Fields without either
(a target's ``name``, the config's ``path``) are not keys. So the known keys and the defaults are
stated once, in the model, and validation reads them from there: `keys()`, `values()`,
`read_table()`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from zfsrep.config import checker as c

KEY = "zfsrep.config.key"  # field metadata: a Key
TABLE = "zfsrep.config.table"  # field metadata: the table's class, or None (read by its own reader)


@dataclasses.dataclass(frozen=True)
class Key:
    convert: Callable[[Any], Any]
    expected: str = ""  # said when a required key is missing


def key(convert: Callable[[Any], Any], default: Any = dataclasses.MISSING, *, expected: str = "",
        default_factory: Callable[[], Any] | None = None, kw_only: bool = False) -> Any:
    """A key holding a value; no default and no factory: required (``kw_only``: a required key
    declared after keys with defaults)."""
    metadata = {KEY: Key(convert, expected)}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata, kw_only=kw_only)


def table(cls: type | None = None, *, optional: bool = False,
          default_factory: Callable[[], Any] | None = None) -> Any:
    """A key holding a table (or tables). ``cls``: its keys are read by `read_table`; None: it has
    its own reader in validate. ``optional``: None when absent, else ``default_factory`` or ``cls()``."""
    metadata = {TABLE: cls}
    if optional:
        return dataclasses.field(default=None, metadata=metadata)
    factory = default_factory or cls
    assert factory is not None, "a table that is not optional needs a default"
    return dataclasses.field(default_factory=factory, metadata=metadata)


def keys(cls: type) -> set[str]:
    """The keys a table of ``cls`` may hold."""
    return {f.name for f in dataclasses.fields(cls) if KEY in f.metadata or TABLE in f.metadata}


def default_of(f: dataclasses.Field[Any]) -> Any:
    """The field's default, or `checker`'s marker for a required key."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return c._MISSING


def get(ck: c.Checker, cls: type, table: dict[str, Any], path: str, name: str, default: Any = c._MISSING) -> Any:
    """One value key of ``cls``; ``default`` overrides the model's (one that depends on another key)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    spec: Key = f.metadata[KEY]
    return ck.get(table, path, name, spec.convert, default_of(f) if default is c._MISSING else default,
                  spec.expected)


def read_fields(ck: c.Checker, cls: type, table: dict[str, Any], path: str, *, skip: Iterable[str] = (),
                defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every key of ``cls`` but ``skip`` and the tables with readers of their own, in declaration
    order: a value converted, or its default (``defaults`` override the model's); a table read by
    `read_table` (left out when absent and optional). A problem for each bad or missing value."""
    defaults = defaults or {}
    found: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if KEY in f.metadata:
            found[f.name] = get(ck, cls, table, path, f.name, defaults.get(f.name, c._MISSING))
        elif f.metadata.get(TABLE) is not None and (f.name in table or f.default is dataclasses.MISSING):
            found[f.name] = read_table(ck, f.metadata[TABLE], table.get(f.name, {}), c.join(path, f.name))
    return found


def read_table(ck: c.Checker, cls: type, raw: Any, path: str) -> Any:
    """A table of ``cls``: unknown keys, bad values and the class's own rules across its keys
    (``problems(path)``, yielding (key or "", message)) reported; None when a required value is
    missing or bad."""
    table = ck.table(raw, path, keys(cls))
    found = read_fields(ck, cls, table, path)
    if any(found.get(f.name) is None and default_of(f) is c._MISSING for f in dataclasses.fields(cls)):
        return None
    result = cls(**found)
    check_rules(ck, result, path)
    return result


def check_rules(ck: c.Checker, table: Any, path: str) -> None:
    """The table's own rules across its keys: ``problems(path)`` yields (key or "", message)."""
    for where, message in getattr(table, "problems", lambda _path: ())(path):
        ck.error(c.join(path, where) if where else path, message)
