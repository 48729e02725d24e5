"""The lab's append-only target, shared by the serve lab tests: a NON-ROOT user on `target`
whose `authorized_keys` forces `zfsrep serve --root backup/replica`, holding
`zfs allow create,receive,mount,hold,release,canmount,send` there (never destroy), and the
source's config sending to it with `append_only = true`."""

from __future__ import annotations

from tests.integration.test_replicate_lab import PARENT, write_config

USER = "zfsrecv"
KEY = "/root/.ssh/serve_ed25519"
PERMISSIONS = "create,receive,mount,hold,release,canmount,send"
ZERO = {"frequent": 0, "hourly": 0, "daily": 0, "weekly": 0, "monthly": 0, "yearly": 0}


def hourly(hour):
    return f"zfsrep_hourly_2026-01-01T{hour:02d}:00:00Z"


def serve_target(lab, datasets, *, allow_restore=True, **target):
    """The receiving user, its forced command and its delegation on ``PARENT``; the source's
    config sends ``datasets`` to it (append_only, the target's retention would prune
    everything; ``target`` adds to targets.backup)."""
    lab.ssh("source", f"test -f {KEY} || ssh-keygen -q -t ed25519 -N '' -C zfsrep-serve -f {KEY}")
    pub = lab.ssh("source", f"cat {KEY}.pub").stdout.strip()
    forced = f"zfsrep serve --root {PARENT}" + (" --allow-restore" if allow_restore else "")
    lab.ssh("target", ["sh", "-c", """
set -e
id -u "$1" >/dev/null 2>&1 || useradd -m -s /bin/sh "$1"
home=$(getent passwd "$1" | cut -d: -f6)
mkdir -p "$home/.ssh"
printf 'restrict,command="%s" %s\\n' "$2" "$3" > "$home/.ssh/authorized_keys"
chown -R "$1:" "$home/.ssh"; chmod 700 "$home/.ssh"; chmod 600 "$home/.ssh/authorized_keys"
zfs list -H -o name "$4" >/dev/null 2>&1 || zfs create -p -o canmount=off "$4"
zfs allow -u "$1" "$5" "$4"
""", "setup", USER, forced, pub, PARENT, PERMISSIONS])
    write_config(lab, datasets, target=sending_config(**target))


def sending_config(**target):
    """targets.backup of the source's config for the serve target (plus ``target``)."""
    return {"user": USER, "identity_file": KEY, "append_only": True, "retention": ZERO, **target}
