"""One copy (a source dataset on one target) as a replicate run carries it from plan to prune,
and the target's tree as the run listed it, kept up to date with what the run creates there."""

from __future__ import annotations

from dataclasses import dataclass, field

from zfsrep.actions.replicate.source import SourceDataset
from zfsrep.core import replication_plan as rp
from zfsrep.core.result import FAILED, ItemResult
from zfsrep.core.snapshot import Snapshot
from zfsrep.errors import ZfsrepError


@dataclass
class TargetTree:
    """The target's datasets ({name: properties}) and snapshots ({name: oldest first}) as the
    run listed them once; parents it creates and copies it receives are added as it goes."""

    datasets: dict[str, dict[str, str]]
    snapshots: dict[str, list[Snapshot]]

    def created(self, name: str) -> None:
        """An empty filesystem the run made (a missing parent)."""
        self.datasets[name] = {"type": "filesystem", "receive_resume_token": "-"}

    def received(self, copy: Copy, *, properties: dict[str, str] | None = None) -> None:
        """``copy`` is on the target now; a full or resumed receive set ``properties`` too."""
        props = self.datasets.setdefault(copy.dataset, {
            "type": "volume" if copy.source.volume else "filesystem", "receive_resume_token": "-"})
        if properties is not None:
            props.update(properties, receive_resume_token="-")


@dataclass
class Copy:
    """``source`` on ``target`` (as ``dataset`` there, reached at ``host``): its plan (or why it
    could not be planned), the item the run reports for it, and the snapshots whose hold of
    this target's tag it queued for release (`stale`)."""

    source: SourceDataset
    target: str
    host: str
    dataset: str
    item: ItemResult
    plan: rp.ReplicationPlan | None = None
    error: ZfsrepError | None = None  # planning failed: this copy fails with it
    stale: list[str] = field(default_factory=list)  # ds@snap: release this target's hold

    @property
    def where(self) -> str:
        """``source -> target (host)``: how each of the copy's failure lines begins."""
        return f"{self.source.name} -> {self.target} ({self.host})"

    def fail(self, text: str) -> None:
        self.item.status, self.item.error = FAILED, f"{self.where}: {text}"
