"""What `zfsrep serve` (the forced command of an append-only target) lets the source run.

`decide(SSH_ORIGINAL_COMMAND, roots=…, allow_restore=…)` is pure: it returns a `Plan` (the
argv of each stage: one command, or a receive/send pipeline joined by OS pipes) or a `Refusal`
with one reason. No shell ever runs the command: it is split with `shlex` and accepted only
if `shlex.join` of its stages, joined by `" | "`, gives back exactly the string that arrived —
the form zfsrep's own `Runner` and `pipeline.replication_stages` send. Quoting zfsrep never
produces, `;`, `&&`, `$(…)`, backticks, redirections and newlines are refused on that ground.

Served (each dataset at or under one of ``roots``; a snapshot's dataset likewise):
- reads: `zfs list`, `zfs get`, `zfs holds` with the options zfsrep uses; `zpool status` and
  `zpool list` of a root's pool; the clock read around `zfs list` (`zfs.argv.list_changed`);
  `sh -c 'command -v "$1"'` of a stream tool (replicate's check for the decompressor);
- `zfs receive -u -s [-o prop=value]… [-x prop]… DS` (never `-F`), alone or after
  `mbuffer …` and/or the decompressor (`zstd -d`/`lz4 -d`) exactly as zfsrep builds them;
- `zfs receive -A DS`, `zfs create [-p] -o canmount=off DS` (replicate's parents);
- `zfs hold`/`zfs release` of a tag starting `zfsrep:` on snapshots;
- with ``allow_restore`` only: `zfs send` (full, `-I`/`-i` incremental, `-t` resume, `-n`
  dry runs), alone or followed by the compressor and/or mbuffer.
Everything else is refused: destroy, rollback, rename, set, inherit, promote, `-F`, options
not listed, names outside the roots, empty names, `.`/`..` components, bookmarks (`#`).

A `-t` resume token names its dataset inside the token (compressed), which this module does
not decode: the ZFS delegation of the serving user (`zfs allow send` on the root only) is what
confines a resumed send. Stdlib only, no I/O.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from zfsrep.core import deep_compare, receive_properties
from zfsrep.core.stream_tools import COMPRESSORS

HOLD_TAG_PREFIX = "zfsrep:"
# `zfs.argv.list_changed`: the host's clock first, then the listing (a test pins the two together)
CLOCK_SCRIPT = 'date +%s && exec "$@"'
# replicate's check that the target has the decompressor
TOOL_CHECK_SCRIPT = 'command -v "$1"'
TOOLS = frozenset({"zstd", "lz4", "mbuffer", "pv"})
LIST_TYPES = frozenset({"filesystem", "volume", "snapshot", "bookmark"})
GET_FIELDS = frozenset({"name", "property", "value", "source", "received"})
MAX_NAME = 255  # ZFS_MAX_DATASET_NAME_LEN - 1

_COMPONENT = re.compile(r"[A-Za-z0-9_.: -]+")
_PROPERTY_LIST = re.compile(r"[a-z0-9_.:@#-]+(,[a-z0-9_.:@#-]+)*")
_SIZE = re.compile(r"\d+[kKmMgG]?")
_DEPTH = re.compile(r"\d{1,4}")
_TOKEN = re.compile(r"\d+-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+")
_SHELL_SYNTAX = ("\n", "\r", "\0", "&&", "||", ";", "$(", "${", "`", ">", "<", "&", "$", "\\", '"', "*", "?")


@dataclass(frozen=True)
class Plan:
    """What serve runs: ``stages`` joined stdin→stdout by OS pipes (one stage: exec'd)."""

    what: str  # "read", "receive", "abort receive", "create", "hold", "release", "send", "check"
    stages: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Refusal:
    reason: str


class _Refused(Exception):
    pass


def decide(command: str | None, *, roots: Sequence[str], allow_restore: bool = False) -> Plan | Refusal:
    """The plan for ``command`` (SSH_ORIGINAL_COMMAND), or why it is refused."""
    try:
        bad = [r for r in roots if not is_dataset(r)]
        if not roots or bad:
            raise _Refused(f"--root must name datasets, got {bad[0]!r}" if bad else "no --root given")
        return _decide(command, _Names(tuple(roots)), allow_restore)
    except _Refused as e:  # one line, whatever the command held
        return Refusal("".join(c if c.isprintable() else repr(c)[1:-1] for c in str(e)))


# -- names ------------------------------------------------------------------------------------

def is_dataset(name: str) -> bool:
    parts = name.split("/")
    return (0 < len(name) <= MAX_NAME and all(_COMPONENT.fullmatch(p) and p not in (".", "..") for p in parts)
            and not parts[0].startswith("-"))


def is_component(name: str) -> bool:
    return bool(_COMPONENT.fullmatch(name)) and name not in (".", "..") and len(name) <= MAX_NAME


@dataclass(frozen=True)
class _Names:
    roots: tuple[str, ...]

    @property
    def pools(self) -> frozenset[str]:
        return frozenset(r.split("/")[0] for r in self.roots)

    def dataset(self, name: str) -> str:
        if not is_dataset(name):
            raise _Refused(f"not a dataset name: {name!r}")
        if not any(name == r or name.startswith(r + "/") for r in self.roots):
            raise _Refused(f"{name} is outside {' and '.join(self.roots)}")
        return name

    def snapshot(self, name: str) -> str:
        dataset, at, snap = name.partition("@")
        if "#" in name:
            raise _Refused(f"bookmarks are not served: {name!r}")
        if not at or not is_component(snap) or "@" in snap:
            raise _Refused(f"not a snapshot name: {name!r}")
        self.dataset(dataset)
        return name

    def dataset_or_snapshot(self, name: str) -> str:
        return self.snapshot(name) if "@" in name else self.dataset(name)


# -- splitting --------------------------------------------------------------------------------

def split_stages(command: str | None) -> list[list[str]]:
    """The stages of ``command``, exactly as zfsrep joins them, or _Refused."""
    if command is None or not command.strip():
        raise _Refused("no command (serve runs only what ssh passes in SSH_ORIGINAL_COMMAND)")
    try:
        words = shlex.split(command)
    except ValueError as e:
        raise _Refused(f"cannot be split into words ({e})") from None
    stages: list[list[str]] = [[]]
    for word in words:
        if word == "|":
            stages.append([])
        else:
            stages[-1].append(word)
    if any(not s for s in stages) or " | ".join(shlex.join(s) for s in stages) != command:
        for syntax in _SHELL_SYNTAX:
            if syntax in _unquoted(command):
                raise _Refused(f"shell syntax {syntax!r} is not accepted (serve runs no shell)")
        raise _Refused("not in the form zfsrep sends (its stages are shlex-quoted, joined by ' | ')")
    return stages


def _unquoted(command: str) -> str:
    """``command`` without its single-quoted parts (what a shell would interpret)."""
    return re.sub(r"'[^']*'", "''", command)


# -- the decision -----------------------------------------------------------------------------

def _decide(command: str | None, names: _Names, allow_restore: bool) -> Plan:
    stages = split_stages(command)
    if len(stages) == 1:
        return _single(stages[0], names, allow_restore)
    head = stages[0]
    if head[:2] == ["zfs", "send"]:
        _send(head[2:], names, allow_restore)
        _tail(stages[1:], [("compressor", _compressor(0)), ("mbuffer", _mbuffer)])
        return Plan("send", _frozen(stages))
    last = stages[-1]
    if last[:2] != ["zfs", "receive"] or last[2:3] == ["-A"]:
        raise _Refused("a pipeline is served only as [mbuffer |] [decompressor |] zfs receive, "
                       "or (with --allow-restore) zfs send [| compressor] [| mbuffer]")
    _receive(last[2:], names)
    _tail(stages[:-1], [("mbuffer", _mbuffer), ("decompressor", _compressor(1))])
    return Plan("receive", _frozen(stages))


def _frozen(stages: list[list[str]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(s) for s in stages)


def _tail(stages: list[list[str]], allowed: list[tuple[str, Callable[[list[str]], bool]]]) -> None:
    """``stages`` are some of ``allowed``, each at most once, in that order."""
    rest = list(allowed)
    for stage in stages:
        while rest and not rest[0][1](stage):
            rest.pop(0)
        if not rest:
            raise _Refused(f"stage {shlex.join(stage)!r} is not one zfsrep puts in a pipeline here")
        rest.pop(0)


def _compressor(which: int) -> Callable[[list[str]], bool]:
    return lambda stage: any(stage == pair[which] for pair in COMPRESSORS.values())


def _mbuffer(stage: list[str]) -> bool:
    head, rest = stage[:6], stage[6:]
    if head[:5] != ["mbuffer", "-q", "-s", "128k", "-m"] or len(head) < 6 or not _SIZE.fullmatch(head[5]):
        return False
    return rest == [] or (len(rest) == 2 and rest[0] == "-r" and bool(_SIZE.fullmatch(rest[1])))


def _single(argv: list[str], names: _Names, allow_restore: bool) -> Plan:
    program, args = argv[0], argv[1:]
    if program == "zfs" and args:
        verb, rest = args[0], args[1:]
        if verb == "send":
            _send(rest, names, allow_restore)
            return Plan("send", (tuple(argv),))
        handler = _ZFS.get(verb)
        if handler is None:
            raise _Refused(f"zfs {verb} is not served (an append-only target: it prunes itself)"
                           if verb in _DESTRUCTIVE else f"zfs {verb} is not served")
        return Plan(handler(rest, names), (tuple(argv),))
    if program == "zpool" and args:
        _zpool(args, names)
        return Plan("read", (tuple(argv),))
    if program == "sh" and args[:1] == ["-c"]:
        return Plan(_sh(args[1:], names), (tuple(argv),))
    raise _Refused(f"{program!r} is not served")


_DESTRUCTIVE = frozenset({"destroy", "rollback", "rename", "set", "inherit", "promote", "allow",
                          "unallow", "change-key", "upgrade", "program"})


def _options(args: list[str], flags: frozenset[str],
             valued: dict[str, Callable[[str], object]]) -> tuple[dict[str, list[str]], list[str]]:
    """getopt-like, strictly: separate options before the operands; an operand never starts
    with "-"; each value checked by its ``valued`` function (which raises _Refused)."""
    seen: dict[str, list[str]] = {}
    i = 0
    while i < len(args) and args[i].startswith("-"):
        opt = args[i]
        if opt in flags:
            seen.setdefault(opt, []).append("")
        elif opt in valued:
            if i + 1 >= len(args):
                raise _Refused(f"option {opt} needs a value")
            i += 1
            valued[opt](args[i])
            seen.setdefault(opt, []).append(args[i])
        else:
            raise _Refused(f"option {opt} is not served")
        i += 1
    operands = args[i:]
    for operand in operands:
        if operand.startswith("-"):
            raise _Refused(f"option {operand} after the names is not served")
    return seen, operands


def _check(pattern: re.Pattern[str] | Callable[[str], bool], what: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        ok = pattern.fullmatch(value) if isinstance(pattern, re.Pattern) else pattern(value)
        if not ok:
            raise _Refused(f"{what} {value!r} is not served")
    return check


_types = _check(lambda v: set(v.split(",")) <= LIST_TYPES, "type list")
_columns = _check(_PROPERTY_LIST, "property list")
_depth = _check(_DEPTH, "depth")
_fields = _check(lambda v: set(v.split(",")) <= GET_FIELDS, "field list")


def _operands(operands: list[str], check: Callable[[str], str], what: str) -> None:
    if not operands:
        raise _Refused(f"{what} needs at least one name under the root (none would mean every dataset)")
    for name in operands:
        check(name)


def _zfs_list(args: list[str], names: _Names) -> str:
    _, operands = _options(args, frozenset({"-H", "-p", "-r"}),
                           {"-t": _types, "-o": _columns, "-s": _columns, "-S": _columns, "-d": _depth})
    _operands(operands, names.dataset_or_snapshot, "zfs list")
    return "read"


def _zfs_get(args: list[str], names: _Names) -> str:
    _, operands = _options(args, frozenset({"-H", "-p", "-r"}),
                           {"-o": _fields, "-t": _types, "-d": _depth})
    if not operands:
        raise _Refused("zfs get needs properties and names")
    _columns(operands[0])
    _operands(operands[1:], names.dataset_or_snapshot, "zfs get")
    return "read"


def _zfs_holds(args: list[str], names: _Names) -> str:
    _, operands = _options(args, frozenset({"-H", "-p", "-r"}), {})
    _operands(operands, names.snapshot, "zfs holds")
    return "read"


def _received_property(value: str) -> None:
    name, eq, setting = value.partition("=")
    if not eq:
        raise _Refused(f"-o {value!r} is not name=value")
    problem = receive_properties.problem(name, setting)
    if problem:
        raise _Refused(f"-o {value}: {problem}")


def _excluded_property(value: str) -> None:
    if receive_properties.problem(value, "") == receive_properties.NOT_A_PROPERTY:
        raise _Refused(f"-x {value!r}: {receive_properties.NOT_A_PROPERTY}")


def _receive(args: list[str], names: _Names) -> str:
    if args[:1] == ["-A"]:
        if len(args) != 2:
            raise _Refused("zfs receive -A takes exactly one dataset")
        names.dataset(args[1])
        return "abort receive"
    if "-F" in args:
        raise _Refused("zfs receive -F is not served (it would roll back and destroy snapshots)")
    seen, operands = _options(args, frozenset({"-u", "-s"}),
                              {"-o": _received_property, "-x": _excluded_property})
    if "-u" not in seen or "-s" not in seen:
        raise _Refused("zfs receive is served only with -u and -s (never mounted, resumable)")
    if len(operands) != 1:
        raise _Refused("zfs receive takes exactly one dataset")
    names.dataset(operands[0])
    return "receive"


def _zfs_create(args: list[str], names: _Names) -> str:
    seen, operands = _options(args, frozenset({"-p"}), {"-o": _check(lambda v: v == "canmount=off", "property")})
    if seen.get("-o") != ["canmount=off"] or len(operands) != 1:
        raise _Refused("zfs create is served only as `zfs create [-p] -o canmount=off DATASET`")
    names.dataset(operands[0])
    return "create"


def _tag_verb(verb: str) -> Callable[[list[str], _Names], str]:
    def handler(args: list[str], names: _Names) -> str:
        _, operands = _options(args, frozenset(), {})
        if not operands or not operands[0].startswith(HOLD_TAG_PREFIX) or not is_component(operands[0]):
            raise _Refused(f"zfs {verb} is served only for tags starting {HOLD_TAG_PREFIX!r}")
        _operands(operands[1:], names.snapshot, f"zfs {verb}")
        return verb
    return handler


def _send(args: list[str], names: _Names, allow_restore: bool) -> None:
    if not allow_restore:
        raise _Refused("zfs send is served only with --allow-restore (restores from this target)")

    def base(value: str) -> None:
        if value.startswith("@"):
            if not is_component(value[1:]):
                raise _Refused(f"not a snapshot: {value!r}")
        else:
            names.snapshot(value)

    seen, operands = _options(args, frozenset({"-L", "-c", "-w", "-v", "-P", "-n"}),
                              {"-I": base, "-i": base, "-t": _check(_TOKEN, "resume token")})
    if "-t" in seen:
        if operands or "-I" in seen or "-i" in seen:
            raise _Refused("zfs send -t takes the token alone")
        return
    if len(operands) != 1 or len(seen.get("-I", []) + seen.get("-i", [])) > 1:
        raise _Refused("zfs send takes exactly one snapshot (and at most one base)")
    names.snapshot(operands[0])


_ZFS: dict[str, Callable[[list[str], _Names], str]] = {
    "list": _zfs_list, "get": _zfs_get, "holds": _zfs_holds, "receive": _receive,
    "create": _zfs_create, "hold": _tag_verb("hold"), "release": _tag_verb("release"),
}


def _zpool(args: list[str], names: _Names) -> None:
    verb, rest = args[0], args[1:]
    if verb == "status":
        _, pools = _options(rest, frozenset({"-p", "-v", "-x", "-P"}), {})
    elif verb == "list":
        _, pools = _options(rest, frozenset({"-H", "-p"}), {"-o": _columns})
    else:
        raise _Refused(f"zpool {verb} is not served (the target's own units import, scrub and export its pool)")
    if not pools or not set(pools) <= names.pools:
        raise _Refused(f"zpool {verb} is served only for {' and '.join(sorted(names.pools))}")


def _sh(args: list[str], names: _Names) -> str:
    script, rest = (args[0], args[1:]) if args else ("", [])
    if script == CLOCK_SCRIPT and rest[:3] == ["sh", "zfs", "list"]:
        return _zfs_list(rest[3:], names)
    if script == TOOL_CHECK_SCRIPT and len(rest) == 2 and rest[0] == "sh" and rest[1] in TOOLS:
        return "check"
    if script in (deep_compare.MANIFEST_SCRIPT, deep_compare.CHECKSUM_SCRIPT, deep_compare.CHECKSUM_ALL_SCRIPT):
        raise _Refused("verify --deep reads files on the target: not served (verify without --deep compares GUIDs)")
    raise _Refused("this sh -c script is not one serve runs")
