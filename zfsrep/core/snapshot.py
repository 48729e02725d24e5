"""A snapshot as listed by `zfs list -H -p`: a frozen value, the same on source and target."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=False)
class Snapshot:
    dataset: str  # e.g. "tank/home"
    name: str  # the part after "@"
    guid: int  # identical on every copy made by send/receive
    createtxg: int  # per pool: orders snapshots of one dataset
    creation: int  # seconds since the epoch (UTC)
    used: int = 0  # bytes only this snapshot holds; a lower bound of what destroying it frees
    userrefs: int = 0  # number of holds; > 0 means it cannot be destroyed

    @property
    def full_name(self) -> str:
        return f"{self.dataset}@{self.name}"

    @property
    def held(self) -> bool:
        return self.userrefs > 0

    @property
    def pool(self) -> str:
        return pool_of(self.dataset)


def pool_of(dataset: str) -> str:
    """The pool a dataset (or ``ds@snap``) lives in: the first path component."""
    return dataset.split("@", 1)[0].split("/", 1)[0]


def parent_of(dataset: str) -> str | None:
    head, sep, _ = dataset.rpartition("/")
    return head if sep else None


def is_descendant(dataset: str, ancestor: str) -> bool:
    """True if ``dataset`` is ``ancestor`` itself or lies below it."""
    return dataset == ancestor or dataset.startswith(ancestor + "/")
