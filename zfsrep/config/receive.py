"""``[receive]``: what a host that RECEIVES copies (a backup target) declares about them, for
`zfsrep prune-received`, which thins each source's copies on the target itself.

    [receive.sources.web1]                     # one table per source host
    root = "backup/hosts/web1"                 # everything that source sends lands under here
    retention = { daily = 30, monthly = 24 }   # missing counts come from the top-level [retention]

Roots may not lie inside one another (a copy would be thinned by two retentions).
A config may hold only ``[receive]``: no ``[[datasets]]`` or ``[targets]`` are needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zfsrep.config import checker as c
from zfsrep.core.snapshot import is_descendant

if TYPE_CHECKING:
    from zfsrep.config.model import Retention

RECEIVE_KEYS = {"sources"}
SOURCE_KEYS = {"root", "retention"}


@dataclass(frozen=True)
class ReceiveSource:
    root: str  # the dataset every copy from this source lands under (itself included)
    retention: Retention


@dataclass(frozen=True)
class ReceiveConfig:
    sources: dict[str, ReceiveSource] = field(default_factory=dict)  # source name -> its copies


def read_receive(ck: c.Checker, raw: Any, path: str,
                 retention: Callable[[Any, str], Retention]) -> ReceiveConfig:
    """``[receive]`` as a `ReceiveConfig`; every problem goes to ``ck`` with its dotted path.
    ``retention(raw, path)`` reads a retention table (missing counts from the defaults)."""
    table = ck.table(raw, path, RECEIVE_KEYS)
    raw_sources = table.get("sources", {})
    if not isinstance(raw_sources, dict):
        ck.error(f"{path}.sources", f"expected a table of sources ([{path}.sources.NAME]), "
                                    f"got {c.describe(raw_sources)}")
        raw_sources = {}
    elif isinstance(raw, dict) and not raw_sources:
        ck.error(f"{path}.sources", f"required: at least one [{path}.sources.NAME] with a root")
    sources: dict[str, ReceiveSource] = {}
    for name, raw_source in raw_sources.items():
        where = f"{path}.sources.{name}"
        source = ck.table(raw_source, where, SOURCE_KEYS)
        root = ck.get(source, where, "root", c.dataset_name,
                      expected='the dataset this source\'s copies land under, e.g. "backup/hosts/web1"')
        kept = retention(source.get("retention", {}), f"{where}.retention")
        if root is None:
            continue
        for other, known in sources.items():
            if is_descendant(root, known.root) or is_descendant(known.root, root):
                ck.error(f"{where}.root", f"{root!r} overlaps {path}.sources.{other}.root "
                                          f"{known.root!r}; each copy must belong to one source")
        sources[name] = ReceiveSource(root=root, retention=kept)
    return ReceiveConfig(sources=sources)
