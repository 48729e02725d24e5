"""Which snapshots retention keeps and which it destroys. Pure; the same rules serve the
source (`zfsrep snapshot`) and each target (replication prunes with the target's counts).

Rules, in order:
  * only names that parse as zfsrep's are considered; every other snapshot is kept
    (a user's manual snapshot, another tool's) and never appears in ``destroy``;
  * for each label with count N, the N newest snapshots carrying that label are kept
    (newest by the time in the name, then createtxg); a snapshot carrying several labels is
    kept if any of them keeps it;
  * a held snapshot (userrefs > 0) is never destroyed, nor one whose GUID is in
    ``protected`` (replication passes the newest common snapshot of every target), even
    when it is older than a label's N newest (so it is kept in addition to them).
The result is idempotent: applying it and planning again at the same ``now`` destroys nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from zfsrep.core.labels import LABELS
from zfsrep.core.names import parse_name

HELD = "held"  # the reason a held snapshot is kept


class SnapshotLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def guid(self) -> int: ...
    @property
    def createtxg(self) -> int: ...
    @property
    def userrefs(self) -> int: ...


@dataclass
class RetentionDecision:
    keep: list = field(default_factory=list)  # zfsrep snapshots kept, oldest first
    destroy: list = field(default_factory=list)  # zfsrep snapshots to destroy, oldest first
    foreign: list = field(default_factory=list)  # not zfsrep's: never touched
    kept_because: dict[str, list[str]] = field(default_factory=dict)  # name -> reasons

    def held_only(self) -> list[str]:
        """Names kept for no reason but a hold: what this decision would destroy were they
        not held (oldest first)."""
        return [name for name, why in self.kept_because.items() if why == [HELD]]


def decide(
    snapshots: Iterable[SnapshotLike],
    counts: Mapping[str, int],
    *,
    protected: Collection[int] = (),
) -> RetentionDecision:
    """Split one dataset's snapshots into keep / destroy / foreign."""
    ours: list[tuple[int, int, SnapshotLike, tuple[str, ...]]] = []
    decision = RetentionDecision()
    for snap in snapshots:
        parsed = parse_name(snap.name)
        if parsed is None:
            decision.foreign.append(snap)
        else:
            ours.append((parsed.time, snap.createtxg, snap, parsed.labels))
    ours.sort(key=lambda item: (item[0], item[1]))
    protected = set(protected)
    reasons: dict[str, list[str]] = {}
    for label in LABELS:
        wanted = counts.get(label, 0)
        if wanted <= 0:
            continue
        newest_first = [item for item in reversed(ours) if label in item[3]]
        for time, txg, snap, _ in newest_first[:wanted]:
            reasons.setdefault(snap.name, []).append(label)
    for time, txg, snap, _ in ours:
        why = list(reasons.get(snap.name, []))
        if snap.userrefs > 0:
            why.append(HELD)
        if snap.guid in protected:
            why.append("replication base")
        if why:
            decision.keep.append(snap)
            decision.kept_because[snap.name] = why
        else:
            decision.destroy.append(snap)
    return decision
