"""Which ZFS properties a receive may set (`zfs receive -o name=value`), and what is wrong
with one that it may not. Pure data and checks, no I/O.

The tables follow the property list `zfs set` prints (OpenZFS 2.1 to 2.3, its EDIT column)
and zfs-receive(8): any editable property may be set at receive time; set-once properties
bound to the received data (casesensitivity, normalization, utf8only, volblocksize) and
`version` and `volsize` may not; the encryption properties only on the first, full receive
of a stream that is not raw.
"""

from __future__ import annotations

import re

# editable native properties (`zfs set`, EDIT = YES), OpenZFS 2.1 to 2.3
EDITABLE = frozenset({
    "aclinherit", "aclmode", "acltype", "atime", "canmount", "checksum", "compression",
    "context", "copies", "dedup", "defcontext", "devices", "direct", "dnodesize", "exec",
    "filesystem_limit", "fscontext", "keylocation", "logbias", "longname", "mlslabel",
    "mountpoint", "nbmand", "overlay", "prefetch", "primarycache", "quota", "readonly",
    "recordsize", "redundant_metadata", "refquota", "refreservation", "relatime",
    "reservation", "rootcontext", "secondarycache", "setuid", "sharenfs", "sharesmb",
    "snapdev", "snapdir", "snapshot_limit", "special_small_blocks", "sync", "volmode",
    "volthreading", "vscan", "xattr", "zoned", "jailed",
    # the short names zfs accepts for some of them
    "compress", "recsize", "refreserv", "reserv",
})
# set once, when the received dataset is created: zfs takes them from the stream
FROM_STREAM = frozenset({"casesensitivity", "normalization", "utf8only", "volblocksize"})
# editable, but not by a receive
NOT_ON_RECEIVE = frozenset({"version", "volsize"})
# settable on a full receive of a stream that is not raw (an encrypted copy of plain data)
ENCRYPTION = frozenset({"encryption", "keyformat", "keylocation", "pbkdf2iters"})
READ_ONLY = frozenset({
    "available", "avail", "clones", "compressratio", "ratio", "createtxg", "creation",
    "defer_destroy", "encryptionroot", "filesystem_count", "guid", "keystatus",
    "logicalreferenced", "lrefer", "logicalused", "lused", "mounted", "name", "objsetid",
    "receive_resume_token", "redact_snaps", "refcompressratio", "refratio", "referenced",
    "refer", "snapshot_count", "snapshots_changed", "type", "used", "usedbychildren",
    "usedchild", "usedbydataset", "usedds", "usedbyrefreservation", "usedrefreserv",
    "usedbysnapshots", "usedsnap", "userrefs", "written",
})
_QUOTA = re.compile(r"(user|group|project)(obj)?quota@.+")
_USED = re.compile(r"(user|group|project)(obj)?used@.+|written[@#].+")
_USER_PROPERTY = re.compile(r"[a-z0-9_.:-]+")
_ON_OFF = frozenset({"atime", "devices", "exec", "nbmand", "overlay", "readonly", "relatime",
                     "setuid", "vscan", "zoned", "jailed", "longname", "volthreading"})
_VALUES = {"canmount": ("on", "off", "noauto"), "snapdir": ("hidden", "visible"),
           "snapdev": ("hidden", "visible"), "sync": ("standard", "always", "disabled"),
           **{name: ("on", "off") for name in _ON_OFF}}


NOT_A_PROPERTY = "not a ZFS property"  # `problem`'s answer for a name no table knows


def known() -> frozenset[str]:
    """Every native property name the tables know (for "did you mean")."""
    return EDITABLE | FROM_STREAM | NOT_ON_RECEIVE | ENCRYPTION | READ_ONLY | {"origin"}


def problem(name: str, value: str) -> str | None:
    """What is wrong with setting ``name=value`` on receive, or None."""
    if ":" in name:
        if len(name) > 256 or not _USER_PROPERTY.fullmatch(name):
            return ("a user property's name has only lowercase letters, digits and : - . _ "
                    "(at most 256 characters)")
        return _value_problem(name, value)
    if name in READ_ONLY or _USED.fullmatch(name):
        return "read-only: zfs computes it, a receive cannot set it"
    if name == "origin":
        return "not settable here: `zfs receive -o origin=` would apply to every copy"
    if name in FROM_STREAM:
        return "set once when a dataset is created: a receive takes it from the stream"
    if name in NOT_ON_RECEIVE:
        return "a receive cannot set it (zfs-receive(8)); set it on the copy with zfs set"
    if name in EDITABLE or name in ENCRYPTION or _QUOTA.fullmatch(name):
        return _value_problem(name, value)
    return NOT_A_PROPERTY


def _value_problem(name: str, value: str) -> str | None:
    if value == "" or any(c in value for c in "\t\n\r"):
        return "the value must be non-empty, without tabs or line breaks"
    choices = _VALUES.get(name)
    if choices and value not in choices:
        return f"expected one of {', '.join(choices)}, got {value!r}"
    if name == "mountpoint" and value not in ("none", "legacy") and not value.startswith("/"):
        return f"expected an absolute path, none or legacy, got {value!r}"
    return None


def on_receive(properties: dict[str, str], *, full: bool, raw: bool) -> dict[str, str]:
    """The configured properties a receive passes as `-o`: the encryption ones only on a
    full receive of a stream that is not raw (zfs refuses them otherwise)."""
    if full and not raw:
        return dict(properties)
    return {k: v for k, v in properties.items() if k not in ENCRYPTION}
