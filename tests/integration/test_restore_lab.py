"""Getting data back against real OpenZFS: `zfsrep restore|rollback|verify|snapshots|scrub` run in
the `source` VM against the `target` VM.

The target copy is filled the real way, by `zfsrep replicate` (which also leaves its hold
``zfsrep:backup`` on the source's newest snapshot). Every assertion is on a real outcome: exit
codes, file checksums, snapshot GUIDs and lists on both pools, holds, `zpool status`.
"""

from __future__ import annotations

import json
import re

import pytest
import tomli_w

from tests.integration.interrupt import run_zfsrep_and_kill

from tests.lab.lab import pool_create_cmd

pytestmark = pytest.mark.lab

CONFIG = "/etc/zfsrep/config.toml"
STATE = "/var/lib/zfsrep"
PARENT = "backup/replica"
COPY = f"{PARENT}/tank/data"


def write_config(lab):
    """The config, and no state from earlier tests (a restore test must not see their runs)."""
    doc = {
        "state_dir": STATE,
        "lock_dir": "/run/zfsrep",
        "datasets": [{"name": "tank/data"}],
        "targets": {"backup": {"host": "target", "dataset": PARENT}},
    }
    lab.ssh("source", f"rm -rf {STATE} && mkdir -p /etc/zfsrep && cat > {CONFIG}", input=tomli_w.dumps(doc))


def zfsrep(lab, *args, timeout=600):
    proc = lab.run_zfsrep(list(args), check=False, timeout=timeout)
    data = None
    if "--json" in args and proc.stdout.strip():
        data = json.loads(proc.stdout)
    return proc.returncode, data, proc.stdout + proc.stderr


def write_files(lab, host, path, count, seed):
    lab.ssh(host, ["sh", "-c", """
set -e
mkdir -p "$1"; i=0
while [ $i -lt $2 ]; do
    head -c $(( ($3 * (i + 1) * 7919) % 200000 + 1 )) /dev/urandom > "$1/f$3-$i.bin"
    i=$((i + 1))
done
mkdir -p "$1/sub dir" && echo hello > "$1/sub dir/-odd name"
ln -sf "f$3-0.bin" "$1/link$3"
""", "w", path, str(count), str(seed)])


def sums(lab, host, path):
    out = lab.ssh(host, ["sh", "-c", 'cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum',
                         "s", path])
    return dict(reversed(line.split(None, 1)) for line in out.stdout.splitlines())


def guids(lab, host, dataset):
    out = lab.ssh(host, ["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", "name,guid", "-d", "1", dataset])
    return {line.split("\t")[0].split("@", 1)[1]: line.split("\t")[1] for line in out.stdout.splitlines()}


def holds(lab, snapshot):
    out = lab.ssh("source", ["zfs", "holds", "-H", snapshot])
    return {line.split("\t")[1] for line in out.stdout.splitlines()}


def replicate(lab):
    code, data, out = zfsrep(lab, "replicate", "--json", timeout=900)
    assert code == 0, out
    return data["items"][0]


def take(lab, *names, seed_from=1):
    """For each name: new files in /tank/data, then a snapshot of it."""
    for i, name in enumerate(names):
        write_files(lab, "source", "/tank/data", 6, seed_from + i)
        lab.ssh("source", f"zfs snapshot tank/data@{name}")


def seed(lab, snapshots=("s1", "s2")):
    """tank/data with files and snapshots, sent to the target by `zfsrep replicate`."""
    write_config(lab)
    lab.ssh("source", "zfs create tank/data")
    take(lab, *snapshots)
    item = replicate(lab)
    assert item["sent"] == list(snapshots) and item["to_snapshot"] == snapshots[-1]
    assert holds(lab, f"tank/data@{snapshots[-1]}") == {"zfsrep:backup"}


def test_restore_onto_a_brand_new_host_then_replication_continues(clean_lab):
    lab = clean_lab
    seed(lab)
    original = sums(lab, "source", "/tank/data/.zfs/snapshot/s2")
    original_s1 = sums(lab, "source", "/tank/data/.zfs/snapshot/s1")
    assert len(original) >= 7 and original != original_s1

    # the source host is lost: a new one has only the empty pool (and the config put back)
    lab.ssh("source", f"zpool destroy tank && {pool_create_cmd('source')} && rm -rf {STATE} /run/zfsrep")
    assert lab.ssh("source", "zfs list -H -t all -o name -r tank").stdout.split() == ["tank"]

    code, data, out = zfsrep(lab, "restore", "tank/data", "--target", "backup", "--json")
    assert code == 0, out
    (item,) = data["items"]
    assert item["dataset"] == "tank/data" and item["to_snapshot"] == "s2" and item["details"]["mounted"]
    assert sums(lab, "source", "/tank/data") == original
    # the restored snapshot is the target's (same GUID) ...
    assert guids(lab, "source", "tank/data")["s2"] == guids(lab, "target", COPY)["s2"]
    # ... so replication continues incrementally from it
    take(lab, "s3", seed_from=3)
    item = replicate(lab)
    assert item["sent"] == ["s3"] and item["details"]["plan"][0].startswith("incremental"), item
    assert sorted(guids(lab, "target", COPY)) == ["s1", "s2", "s3"]

    # now it is live: refused without --force, and nothing changed
    before = sums(lab, "source", "/tank/data")
    code, _, out = zfsrep(lab, "restore", "tank/data@s1", "--target", "backup")
    assert code == 1 and "exists and is live" in out and "--force" in out
    assert sums(lab, "source", "/tank/data") == before
    assert sorted(guids(lab, "source", "tank/data")) == ["s2", "s3"]

    # an older snapshot next to it
    code, _, out = zfsrep(lab, "restore", "tank/data@s1", "--target", "backup", "--to", "tank/data-s1")
    assert code == 0, out
    assert sums(lab, "source", "/tank/data-s1") == original_s1


def token_bytes(lab, dataset):
    """Bytes already received into ``dataset`` by an interrupted receive (None: no token)."""
    token = lab.ssh("source", ["zfs", "get", "-H", "-o", "value", "receive_resume_token", dataset],
                    check=False).stdout.strip()
    if token in ("", "-"):
        return None
    out = lab.ssh("target", ["zfs", "send", "-n", "-v", "-t", token], check=False)
    m = re.search(r"\bbytes = (0x[0-9a-f]+|\d+)", out.stdout + out.stderr)
    assert m, out.stdout + out.stderr
    return int(m.group(1), 0)


def restore_and_kill(lab, pattern, more, *args):
    """`zfsrep restore --json ARGS` in source, SIGKILLing ``pattern`` once the restored copy
    ``tank/back`` got ``more`` bytes from it; (exit code, JSON, whether it killed)."""
    proc, killed = run_zfsrep_and_kill(lab, ["restore", "--json", *args], pattern=pattern,
                                       watch=("source", "tank/back"), more=more)
    return proc.returncode, json.loads(proc.stdout), killed


TXG_TIMEOUT = "/sys/module/zfs/parameters/zfs_txg_timeout"


def test_interrupted_restore_resumes(clean_lab):
    lab = clean_lab
    write_config(lab)
    lab.ssh("source", "zfs create -o compression=off tank/data && "
                      "for i in 1 2 3 4; do head -c 40000000 /dev/urandom > /tank/data/blob$i; done && "
                      "zfs snapshot tank/data@big")
    replicate(lab)
    want = sums(lab, "source", "/tank/data/.zfs/snapshot/big")

    # A killed receive keeps what the last transaction group wrote (every 5 s by default): sync
    # every second so a short stream leaves progress behind.
    lab.ssh("source", f"echo 1 > {TXG_TIMEOUT}")
    try:
        args = ("tank/data", "--target", "backup", "--to", "tank/back")
        offsets = []
        for pattern in ("^zfs receive -u -s tank/back", "^ssh .*zfs send"):
            rc, data, killed = restore_and_kill(lab, pattern, 10_000_000, *args)
            assert killed, f"nothing matched {pattern!r} once 10 MB more had arrived: {data}"
            (item,) = data["items"]
            assert rc == 1 and item["status"] == "failed" and "rerun the same command" in item["error"], data
            offsets.append(token_bytes(lab, "tank/back"))
        assert None not in offsets and 0 < offsets[0] <= offsets[1] < 160_000_000, offsets
    finally:
        lab.ssh("source", f"echo 5 > {TXG_TIMEOUT}")

    code, data, out = zfsrep(lab, "restore", *args, "--json")
    assert code == 0, out
    (item,) = data["items"]
    assert item["resumed"] and item["bytes"] < 160_000_000 - offsets[1] + 8_000_000, (item, offsets)
    assert token_bytes(lab, "tank/back") is None
    assert sums(lab, "source", "/tank/back") == want
    assert guids(lab, "source", "tank/back")["big"] == guids(lab, "target", COPY)["big"]


def test_restore_force_replaces_only_after_the_copy_arrived(clean_lab):
    lab = clean_lab
    seed(lab)
    want = sums(lab, "source", "/tank/data/.zfs/snapshot/s1")
    lab.ssh("source", "echo scribble > /tank/data/new-file && zfs snapshot tank/data@local")

    code, _, out = zfsrep(lab, "restore", "tank/data@s1", "--target", "backup", "--force", "--dry-run")
    assert code == 0 and "DESTROY tank/data" in out and "release hold zfsrep:backup on tank/data@s2" in out, out
    assert sorted(guids(lab, "source", "tank/data")) == ["local", "s1", "s2"]

    code, _, out = zfsrep(lab, "restore", "tank/data@s1", "--target", "backup", "--force")
    assert code == 0, out
    assert "DESTROY tank/data" in out  # said what it destroys before doing it
    assert sums(lab, "source", "/tank/data") == want
    assert sorted(guids(lab, "source", "tank/data")) == ["s1"]
    assert guids(lab, "source", "tank/data")["s1"] == guids(lab, "target", COPY)["s1"]
    assert lab.ssh("source", "zfs list -H -o name tank/data.zfsrep-restore", check=False).returncode != 0


def test_rollback_lists_asks_and_protects_the_replication_base(clean_lab):
    lab = clean_lab
    seed(lab, ("s1", "s2", "s3"))  # replicate holds @s3 for target backup
    lab.ssh("source", "zfs snapshot tank/data@s4")

    # nothing of a target's is at stake: it lists what goes and asks
    code, _, out = zfsrep(lab, "rollback", "tank/data@s3")
    assert code == 2 and "destroy @s4" in out and "--yes" in out, out
    assert sorted(guids(lab, "source", "tank/data")) == ["s1", "s2", "s3", "s4"]
    code, _, out = zfsrep(lab, "rollback", "tank/data@s3", "--yes")
    assert code == 0, out
    assert sorted(guids(lab, "source", "tank/data")) == ["s1", "s2", "s3"]

    # @s3 is the replication base of backup: refused, asked or not
    for args in ((), ("--yes",)):
        code, _, out = zfsrep(lab, "rollback", "tank/data@s1", *args)
        assert code == 1 and "replication base of backup" in out and "--force" in out, out
    assert sorted(guids(lab, "source", "tank/data")) == ["s1", "s2", "s3"]

    code, _, out = zfsrep(lab, "rollback", "tank/data@s1", "--force")
    assert code == 2 and "destroy @s3  [replication base of backup]" in out, out
    code, _, out = zfsrep(lab, "rollback", "tank/data@s1", "--yes", "--force")
    assert code == 0, out
    assert "zfsrep rollback --target backup tank/data@s1" in out  # how to repair the target
    assert sorted(guids(lab, "source", "tank/data")) == ["s1"]
    assert sums(lab, "source", "/tank/data") == sums(lab, "source", "/tank/data/.zfs/snapshot/s1")

    # the advice works: roll the copy back too, and replication continues from @s1
    code, _, out = zfsrep(lab, "rollback", "--target", "backup", "tank/data@s1", "--yes")
    assert code == 0, out
    assert sorted(guids(lab, "target", COPY)) == ["s1"]
    take(lab, "s5", seed_from=5)
    item = replicate(lab)
    assert item["sent"] == ["s5"], item
    assert guids(lab, "target", COPY)["s5"] == guids(lab, "source", "tank/data")["s5"]


def test_verify_clean_then_target_changed(clean_lab):
    lab = clean_lab
    seed(lab)
    code, data, out = zfsrep(lab, "verify", "--deep", "--sample", "0", "--json")
    assert code == 0, out
    (item,) = data["items"]
    assert item["status"] == "ok" and item["details"]["deep"]["checked"]
    assert item["details"]["deep"]["files_checked"] >= 7 and item["details"]["deep"]["differences"] == []
    stored = json.loads(lab.ssh("source", f"cat {STATE}/last-verify.json").stdout)
    assert stored["status"] == "ok"

    # the target copy is changed and a new snapshot taken there: not the source's data any more
    lab.ssh("target", f"zfs set mountpoint=/mnt/copy {COPY} && zfs mount {COPY} && "
                      f"echo corrupted > /mnt/copy/f1-0.bin && zfs snapshot {COPY}@tampered")
    code, data, out = zfsrep(lab, "verify", "--json")
    assert code == 1, out
    (item,) = data["items"]
    assert item["status"] == "failed" and "tampered" in item["error"] and "never had" in item["error"]
    assert json.loads(lab.ssh("source", f"cat {STATE}/last-verify.json").stdout)["status"] == "failed"

    # the same name with other data: roll the target back, rewrite, snapshot as s2
    lab.ssh("target", f"zfs rollback -r {COPY}@s1 && echo corrupted > /mnt/copy/f1-0.bin && zfs snapshot {COPY}@s2")
    code, data, out = zfsrep(lab, "verify", "--json")
    assert code == 1 and "GUID differs" in data["items"][0]["error"], out


def test_snapshots_shows_both_sides(clean_lab):
    lab = clean_lab
    seed(lab)
    lab.ssh("source", "zfs snapshot tank/data@only-here")
    code, data, out = zfsrep(lab, "snapshots", "--json")
    assert code == 0, out
    rows = {r["name"]: r for r in data["items"][0]["details"]["rows"]}
    assert rows["s1"]["common"] and rows["s2"]["common"] and not rows["only-here"]["common"]
    code, _, out = zfsrep(lab, "snapshots", "tank/data")
    assert code == 0 and "common" in out


ROT_IMAGE = "/var/tmp/zfsrep-rot.img"
ROT_MARKER = "zfsrep-rot-marker"


def rot_pool(lab, *, remove=False):
    """A small file-backed pool `rot` on the target (no compression: its data is findable on disk)."""
    lab.ssh("target", f"zpool destroy -f rot 2>/dev/null; rm -f {ROT_IMAGE}")
    if not remove:
        lab.ssh("target", f"truncate -s 128M {ROT_IMAGE} && zpool create -o ashift=12 -O compression=off "
                          f"-O atime=off rot {ROT_IMAGE}")


def rot_one_block(lab):
    """Zero the 4 KiB on the pool's disk that hold the start of marker.bin, behind ZFS's back."""
    lab.ssh("target", ["sh", "-c", """
set -e
zpool export rot
off=$(grep -obUaF -m1 "$2" "$1" | head -1 | cut -d: -f1)
[ -n "$off" ]
dd if=/dev/zero of="$1" bs=4096 seek=$((off / 4096)) count=1 conv=notrunc status=none
zpool import -d "$(dirname "$1")" rot
""", "rot", ROT_IMAGE, ROT_MARKER])


def test_bit_rot_on_the_target_is_found_by_verify_deep_and_scrub(clean_lab):
    lab = clean_lab
    doc = {"state_dir": STATE, "lock_dir": "/run/zfsrep", "datasets": [{"name": "tank/data"}],
           "targets": {"rot": {"host": "target", "dataset": "rot/replica"}}}
    lab.ssh("source", f"rm -rf {STATE} && mkdir -p /etc/zfsrep && cat > {CONFIG}", input=tomli_w.dumps(doc))
    rot_pool(lab)
    try:
        lab.ssh("source", f"zfs create tank/data && yes {ROT_MARKER} | head -c 262144 > /tank/data/marker.bin")
        take(lab, "s1")
        replicate(lab)

        # healthy: verified, and a scrub (started, then waited for) finds nothing
        code, data, out = zfsrep(lab, "verify", "--deep", "--sample", "0", "--json")
        assert code == 0 and data["items"][0]["details"]["deep"]["files_checked"] >= 8, out
        code, data, out = zfsrep(lab, "scrub", "--target", "rot", "--json")
        assert code == 0 and data["items"][0]["details"]["pool"] == "rot", out
        code, data, out = zfsrep(lab, "scrub", "--target", "rot", "--wait", "--json")
        assert code == 0, out
        status = data["items"][0]["details"]["status"]
        assert status["finished"] and status["healthy"] and status["state"] == "ONLINE", status

        # one block of the copy rots on disk: the snapshot lists still agree, the data does not
        rot_one_block(lab)
        code, data, out = zfsrep(lab, "verify", "--deep", "--sample", "0", "--json")
        (item,) = data["items"]
        assert code == 1 and item["status"] == "failed", out
        assert "unreadable on the target: marker.bin" in item["error"] and "zpool status -v" in item["error"]
        assert item["details"]["comparison"]["verified"]  # by GUID it looks fine: only --deep sees it

        code, data, out = zfsrep(lab, "scrub", "--target", "rot", "--wait", "--json")
        (item,) = data["items"]
        assert code == 1 and item["status"] == "failed", out
        status = item["details"]["status"]
        assert status["finished"] and not status["healthy"] and status["scan_errors"] >= 1
        assert status["cksum"] >= 1 and status["data_errors"] == 1
        assert any(f.endswith(":/marker.bin") for f in status["error_files"]), status
        assert "pool rot on target rot" in item["error"] and "permanent errors" in item["error"]
    finally:
        rot_pool(lab, remove=True)


def test_on_demand_target_is_warmed_up_and_put_back_to_rest(clean_lab):
    """verify, scrub and restore against a target whose pool rests exported: each warms it up
    (command warmup, pool import) first and tears it down (export) after."""
    lab = clean_lab
    seed(lab)
    want = sums(lab, "source", "/tank/data/.zfs/snapshot/s2")
    doc = {"state_dir": STATE, "lock_dir": "/run/zfsrep", "datasets": [{"name": "tank/data"}],
           "targets": {"backup": {"host": "target", "dataset": PARENT, "warmup": {
               "type": "command",
               "command": ["ssh", "target", "touch", "/run/zfsrep-woken"],
               "remote_command": ["test", "-e", "/run/zfsrep-woken"],
               "teardown_command": ["ssh", "target", "rm", "-f", "/run/zfsrep-woken"],
               "pool": "backup", "ssh_timeout": "2m"}}}}
    lab.ssh("source", f"cat > {CONFIG}", input=tomli_w.dumps(doc))
    lab.ssh("target", "zpool export backup")

    def resting():
        return lab.ssh("target", "zpool list -H -o name backup", check=False).returncode != 0

    try:
        code, data, out = zfsrep(lab, "verify", "--json")
        (item,) = data["items"]
        assert code == 0 and item["status"] == "ok", out
        assert item["details"]["access"] == ["warmed up backup", "tore backup down"] and resting()

        code, data, out = zfsrep(lab, "scrub", "--target", "backup", "--json")  # implies --wait
        (item,) = data["items"]
        assert code == 0 and item["details"]["waited"] and item["details"]["status"]["finished"], out
        assert item["details"]["access"] == ["warmed up backup", "tore backup down"] and resting()

        code, data, out = zfsrep(lab, "restore", "tank/data", "--target", "backup", "--to", "tank/again", "--json")
        (item,) = data["items"]
        assert code == 0, out
        assert item["details"]["access"] == ["warmed up backup", "tore backup down"] and resting()
        assert sums(lab, "source", "/tank/again") == want
    finally:
        lab.ssh("target", "zpool list -H -o name backup >/dev/null 2>&1 || zpool import -N backup")
