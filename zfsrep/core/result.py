"""The result of one run of a verb: what the CLI prints with --json, what the state dir keeps,
and what report-result posts. Plain dataclasses with a stable dict form."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from zfsrep.core.details import RENAMED, Details
from zfsrep.errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL

# Status of one item (a dataset, or a dataset on one target).
OK = "ok"
NOTHING_TO_DO = "nothing-to-do"
FAILED = "failed"
SKIPPED = "skipped"
PLANNED = "planned"  # --dry-run


@dataclass
class ItemResult:
    dataset: str
    status: str
    target: str | None = None
    error: str | None = None
    bytes: int = 0
    seconds: float = 0.0
    created: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    from_snapshot: str | None = None
    to_snapshot: str | None = None
    resumed: bool = False
    details: Details = field(default_factory=Details)  # each key is declared in core/details.py

    def add_note(self, text: str) -> None:
        """A line for the user about this item, kept in ``details["notes"]`` (the CLI prints each)."""
        self.details.setdefault("notes", []).append(text)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemResult:
        """An item of a stored result. Fields a newer zfsrep added are left out; a details key renamed
        since (`core.details.RENAMED`) is read under its new name."""
        item = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "details"})
        details = dict(data.get("details") or {})
        for old, new in RENAMED.items():  # one string then, a list of them now
            if isinstance(details.get(old), str):
                details[new] = [*details.get(new, []), details.pop(old)]
        item.details = details  # type: ignore[assignment]  # as stored: keys of a newer zfsrep too
        return item


@dataclass
class RunResult:
    verb: str
    started_at: float
    finished_at: float = 0.0
    host: str = ""
    dry_run: bool = False
    items: list[ItemResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # failures not tied to one item
    invocation_id: str | None = None  # systemd's INVOCATION_ID of the run (see state.write_run_result)
    # where the wall time went: phase -> seconds (see zfsrep.phases; replicate fills it)
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        failed = [i for i in self.items if i.status == FAILED]
        if self.errors and not [i for i in self.items if i.status != FAILED]:
            return EXIT_FAILED
        if not failed and not self.errors:
            return EXIT_OK
        if len(failed) == len(self.items):
            return EXIT_FAILED
        return EXIT_PARTIAL

    @property
    def status(self) -> str:
        return {EXIT_OK: OK, EXIT_FAILED: FAILED, EXIT_PARTIAL: "partial"}[self.exit_code]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["exit_code"] = self.exit_code
        data["status"] = self.status
        data["seconds"] = round(max(0.0, self.finished_at - self.started_at), 3)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        items = [ItemResult.from_dict(i) for i in data.get("items", [])]
        return cls(
            verb=data["verb"],
            started_at=float(data.get("started_at", 0.0)),
            finished_at=float(data.get("finished_at", 0.0)),
            host=data.get("host", ""),
            dry_run=bool(data.get("dry_run", False)),
            items=items,
            errors=list(data.get("errors", [])),
            invocation_id=data.get("invocation_id"),
            phases={str(k): float(v) for k, v in (data.get("phases") or {}).items()},
        )
