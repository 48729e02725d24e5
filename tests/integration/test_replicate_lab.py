"""`zfsrep replicate` against real OpenZFS: zfsrep runs in the `source` VM and sends to `target`.

Every assertion is on real outcomes: file checksums and snapshot GUIDs on both pools, exit
codes, the JSON result, resume tokens, holds, and sshd's own log of connections.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest
import tomli_w

from tests.integration.interrupt import received, run_zfsrep_and_kill

pytestmark = pytest.mark.lab

CONFIG = "/etc/zfsrep/config.toml"
PARENT = "backup/replica"  # targets.backup.dataset
SOURCE_LINK_ADDR = "10.77.0.1"  # source's address on the private link (tests/lab/paths.py)
# the real sends (not the `-n` probes/estimates zfsrep runs first)
SEND_PATTERN = "^zfs send -[Lv]"
SSH_PATTERN = "^ssh .* zfs receive"


# --- helpers -----------------------------------------------------------------------------------

def write_config(lab, datasets, *, target=None, retention=None):
    doc = {
        "state_dir": "/var/lib/zfsrep",
        "lock_dir": "/run/zfsrep",
        "retention": retention or {"frequent": 0, "hourly": 48, "daily": 14, "weekly": 4,
                                   "monthly": 0, "yearly": 0},
        "datasets": [d if isinstance(d, dict) else {"name": d} for d in datasets],
        "targets": {"backup": {"host": "target", "dataset": PARENT, **(target or {})}},
    }
    lab.ssh("source", f"mkdir -p /etc/zfsrep && cat > {CONFIG}", input=tomli_w.dumps(doc))


def replicate(lab, *args, timeout=900):
    """Run `zfsrep replicate --json` in source; (exit code, parsed JSON, stderr)."""
    proc = lab.run_zfsrep(["replicate", "--json", *args], check=False, timeout=timeout)
    data = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, data, proc.stderr


def replicate_ok(lab, *args):
    code, data, err = replicate(lab, *args)
    assert code == 0, f"replicate exited {code}: {err}\n{json.dumps(data, indent=1)[:4000]}"
    return data


def item(data, dataset):
    (found,) = [i for i in data["items"] if i["dataset"] == dataset]
    return found


def write_files(lab, path, count, size, seed):
    lab.ssh("source", ["sh", "-c", """
set -e
mkdir -p "$1"; i=0
while [ $i -lt $2 ]; do
    head -c $(( $3 / 2 + (i * 7919 + $4 * 104729) % ($3 / 2) + 1 )) /dev/urandom > "$1/f$4-$i.bin"
    i=$((i + 1))
done""", "w", path, str(count), str(size), str(seed)])


def snap(lab, *names):
    lab.ssh("source", ["zfs", "snapshot", *names])


def mountpoint(lab, host, dataset):
    return lab.ssh(host, ["zfs", "get", "-H", "-o", "value", "mountpoint", dataset]).stdout.strip()


def sums(lab, host, path):
    out = lab.ssh(host, ["sh", "-c", 'cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum',
                         "s", path])
    return dict(reversed(line.split(None, 1)) for line in out.stdout.splitlines())


def snapshots(lab, host, dataset):
    """{short name: guid} of the dataset's own snapshots (missing dataset: {})."""
    out = lab.ssh(host, ["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", "name,guid",
                         "-s", "createtxg", "-d", "1", dataset], check=False)
    if out.returncode != 0:
        return {}
    return {line.split("\t")[0].split("@", 1)[1]: line.split("\t")[1]
            for line in out.stdout.splitlines()}


def assert_same(lab, source_ds, snaps=None, *, parent=PARENT):
    """Files of every (or the given) snapshot, and the GUIDs, are equal on the target (under
    ``parent``, a target's `dataset`)."""
    target_ds = f"{parent}/{source_ds}"
    src, dst = snapshots(lab, "source", source_ds), snapshots(lab, "target", target_ds)
    names = snaps or list(src)
    for name in names:
        assert dst.get(name) == src[name], f"{target_ds}@{name}: GUID differs or missing ({dst})"
    lab.ssh("target", ["zfs", "mount", target_ds])
    try:
        s_mp, t_mp = mountpoint(lab, "source", source_ds), mountpoint(lab, "target", target_ds)
        for name in names:
            want = sums(lab, "source", f"{s_mp}/.zfs/snapshot/{name}")
            got = sums(lab, "target", f"{t_mp}/.zfs/snapshot/{name}")
            assert got == want, f"{target_ds}@{name}: file checksums differ"
    finally:
        lab.ssh("target", ["zfs", "unmount", target_ds])
    return names


def held_by(lab, dataset, tag):
    out = lab.ssh("source", ["sh", "-c", 'zfs list -H -t snapshot -o name -d 1 "$1" | '
                             'xargs -r -d "\\n" zfs holds -H', "h", dataset]).stdout
    return [ln.split("\t")[0] for ln in out.splitlines() if ln.split("\t")[1] == tag]


def target_receives(lab):
    """The `zfs receive` command lines in the target pool's history, oldest first (the pool
    outlives a test: compare what a test added)."""
    history = lab.ssh("target", ["zpool", "history", "backup"]).stdout
    return [ln.split(" ", 1)[1] for ln in history.splitlines() if " zfs receive " in ln]


def accepted_from_source(lab):
    """How many ssh logins from `source` the target's sshd has logged."""
    out = lab.ssh("target", f"journalctl -q --no-pager -o cat _COMM=sshd | "
                            f"grep -c 'Accepted publickey for root from {SOURCE_LINK_ADDR}' || true")
    return int(out.stdout.strip() or 0)


def token_of(lab, target_ds):
    out = lab.ssh("target", ["zfs", "get", "-H", "-o", "value", "receive_resume_token", target_ds],
                  check=False)
    value = out.stdout.strip()
    return None if out.returncode or value in ("", "-") else value


def token_offset(lab, token):
    """Bytes already received, from the token's own contents (asked on the source)."""
    out = lab.ssh("source", ["zfs", "send", "-n", "-v", "-t", token], check=False)
    m = re.search(r"\bbytes = (0x[0-9a-f]+|\d+)", out.stdout + out.stderr)
    return int(m.group(1), 0) if m else None


def replicate_and_kill(lab, pattern, receiving, more):
    """`zfsrep replicate --json` in source, SIGKILLing ``pattern`` there once target's
    ``receiving`` dataset got ``more`` bytes from it; (exit code, JSON, whether it killed)."""
    proc, killed = run_zfsrep_and_kill(lab, ["replicate", "--json"], pattern=pattern,
                                       watch=("target", receiving), more=more)
    data = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, data, killed


# --- tests -----------------------------------------------------------------------------------------

def test_full_then_incremental_with_intermediate_snapshots_one_ssh_login_per_run(clean_lab):
    lab = clean_lab
    lab.ssh("source", "zfs create tank/data")
    write_config(lab, ["tank/data"])
    write_files(lab, "/tank/data/a", 12, 400_000, 1)
    snap(lab, "tank/data@zfsrep_hourly_2026-01-01T00:00:00Z")
    write_files(lab, "/tank/data/b", 6, 200_000, 2)
    snap(lab, "tank/data@manual-1")

    logins, received_before = accepted_from_source(lab), len(target_receives(lab))
    first = replicate_ok(lab)
    assert accepted_from_source(lab) == logins + 1, "one ssh connection per target per run"
    it = item(first, "tank/data")
    assert it["status"] == "ok" and it["sent"] == ["zfsrep_hourly_2026-01-01T00:00:00Z", "manual-1"]
    assert it["to_snapshot"] == "manual-1" and it["bytes"] > 4_000_000
    assert_same(lab, "tank/data")
    # where the time went: the pipeline's seconds are the sends phase; start-up is measured
    phases = first["phases"]
    assert phases["sends"] == pytest.approx(sum(s["seconds"] for s in it["details"]["steps"]), abs=0.01)
    assert phases["startup"] > 0 and phases["ssh_connect"] >= 0 and "target_prune" in phases
    assert sum(v for k, v in phases.items() if not k.startswith("source_")) <= first["seconds"] + phases["startup"]
    # safe receive: not mounted, canmount=noauto; the parent is a never-mounted placeholder
    props = lab.ssh("target", ["zfs", "get", "-H", "-o", "name,value", "mounted,canmount",
                               f"{PARENT}/tank/data", PARENT]).stdout.split("\n")
    assert f"{PARENT}/tank/data\tno" in props and f"{PARENT}/tank/data\tnoauto" in props
    assert f"{PARENT}\toff" in props
    # the newest replicated snapshot is held on the source for this target
    holds = lab.ssh("source", ["zfs", "holds", "-H", "tank/data@manual-1"]).stdout
    assert "zfsrep:backup" in holds

    # several intermediate snapshots (zfsrep's and manual), changed and deleted files
    for n in range(3):
        write_files(lab, f"/tank/data/c{n}", 4, 300_000, 10 + n)
        lab.ssh("source", f"rm -f /tank/data/a/f1-{n}.bin")
        snap(lab, f"tank/data@zfsrep_hourly_2026-01-01T0{n + 1}:00:00Z")
    snap(lab, "tank/data@manual-2")
    logins = accepted_from_source(lab)
    second = replicate_ok(lab)
    assert accepted_from_source(lab) == logins + 1
    it = item(second, "tank/data")
    assert it["from_snapshot"] == "manual-1" and it["to_snapshot"] == "manual-2"
    assert it["sent"] == [f"zfsrep_hourly_2026-01-01T0{n}:00:00Z" for n in (1, 2, 3)] + ["manual-2"]
    assert [s["step"].split()[0] for s in it["details"]["steps"]] == ["incremental"]  # one -I stream
    assert_same(lab, "tank/data")
    assert held_by(lab, "tank/data", "zfsrep:backup") == ["tank/data@manual-2"], \
        "the previous base's hold is released"

    # nothing new: exit 0, nothing to do; the state file has the run
    third = replicate_ok(lab)
    assert item(third, "tank/data")["status"] == "nothing-to-do"
    state = json.loads(lab.ssh("source", "cat /var/lib/zfsrep/last-replicate.json").stdout)
    assert state["items"][0]["status"] == "nothing-to-do" and state["exit_code"] == 0
    repl = json.loads(lab.ssh("source", "cat /var/lib/zfsrep/replication.json").stdout)
    assert repl["backup"]["tank/data"]["newest_snapshot"] == "manual-2"

    # the receive properties: set by the full receive; an incremental sets (`-o`, a sync task
    # per snapshot) only what the copy lacks: none here (the first run's second step and the
    # second run), and canmount after someone changed it
    assert target_receives(lab)[received_before:] == [
        f"zfs receive -u -s -o canmount=noauto {PARENT}/tank/data",
        f"zfs receive -u -s {PARENT}/tank/data", f"zfs receive -u -s {PARENT}/tank/data"]
    lab.ssh("target", ["zfs", "set", "canmount=on", f"{PARENT}/tank/data"])
    snap(lab, "tank/data@manual-3")
    assert item(replicate_ok(lab), "tank/data")["sent"] == ["manual-3"]
    assert target_receives(lab)[received_before + 3:] == [
        f"zfs receive -u -s -o canmount=noauto {PARENT}/tank/data"]
    assert lab.ssh("target", ["zfs", "get", "-H", "-o", "value", "canmount",
                              f"{PARENT}/tank/data"]).stdout.strip() == "noauto"


def test_an_encrypted_copy_of_plain_data_keeps_receiving_incrementals(clean_lab):
    """targets.<name>.properties may make the copy encrypted (`zfs receive -o encryption=on
    …` of a plain stream). zfs refuses those properties on an incremental receive ("cannot be
    set for incremental streams"), so only the full receive passes them."""
    lab = clean_lab
    key = "/root/zfsrep-copy.key"
    lab.ssh("target", f"head -c 32 /dev/urandom > {key} && chmod 600 {key}")
    lab.ssh("source", "zfs create tank/plain")
    write_config(lab, ["tank/plain"], target={"properties": {
        "canmount": "noauto", "encryption": "on", "keyformat": "raw", "keylocation": f"file://{key}"}})
    write_files(lab, "/tank/plain/a", 4, 200_000, 1)
    snap(lab, "tank/plain@one")
    write_files(lab, "/tank/plain/b", 4, 200_000, 2)
    snap(lab, "tank/plain@two")
    received_before = len(target_receives(lab))

    first = replicate_ok(lab)  # a full receive, then an incremental one in the same run
    assert item(first, "tank/plain")["sent"] == ["one", "two"]
    copy = f"{PARENT}/tank/plain"
    got = lab.ssh("target", ["zfs", "get", "-H", "-o", "property,value",
                             "encryption,encryptionroot,keyformat", copy]).stdout
    assert got.split("\n")[:3] == ["encryption\taes-256-gcm", f"encryptionroot\t{copy}", "keyformat\traw"]
    write_files(lab, "/tank/plain/c", 4, 200_000, 3)
    snap(lab, "tank/plain@three")
    assert item(replicate_ok(lab), "tank/plain")["sent"] == ["three"]
    assert_same(lab, "tank/plain")
    assert target_receives(lab)[received_before:] == [
        f"zfs receive -u -s -o canmount=noauto -o encryption=on -o keyformat=raw "
        f"-o keylocation=file://{key} {copy}",
        f"zfs receive -u -s {copy}", f"zfs receive -u -s {copy}"]


def test_plain_data_into_an_encrypted_backup_dataset(clean_lab):
    """A receiving parent that is encrypted: the copies inherit its encryption. zfs refuses
    a stream with embedded records there (openzfs#10732), so zfsrep sends without `-e`."""
    lab = clean_lab
    key = "/root/zfsrep-parent.key"
    lab.ssh("target", f"head -c 32 /dev/urandom > {key} && zfs create -o encryption=on "
                      f"-o keyformat=raw -o keylocation=file://{key} {PARENT}")
    lab.ssh("source", "zfs create -o compression=lz4 tank/plain")
    write_config(lab, ["tank/plain"])
    # small files: with compression, ones of a few bytes are stored as embedded blocks
    lab.ssh("source", "for i in $(seq 1 50); do echo $i > /tank/plain/tiny$i; done")
    write_files(lab, "/tank/plain/a", 4, 200_000, 1)
    snap(lab, "tank/plain@one")
    lab.ssh("source", "for i in $(seq 51 80); do echo $i > /tank/plain/tiny$i; done")
    snap(lab, "tank/plain@two")
    assert item(replicate_ok(lab), "tank/plain")["sent"] == ["one", "two"]
    copy = f"{PARENT}/tank/plain"
    got = lab.ssh("target", ["zfs", "get", "-H", "-o", "value", "encryptionroot", copy]).stdout
    assert got.strip() == PARENT
    assert_same(lab, "tank/plain")


def test_a_receive_property_the_targets_openzfs_lacks_is_named(clean_lab):
    """`direct` came with OpenZFS 2.3; this lab's target runs 2.1. The config is valid, the
    target's zfs refuses the name: one line naming it and where it is configured."""
    lab = clean_lab
    version = lab.ssh("target", ["zfs", "version"]).stdout
    assert "zfs-2.1" in version, f"this test needs a target older than OpenZFS 2.3: {version}"
    lab.ssh("source", "zfs create tank/data && zfs snapshot tank/data@one")
    write_config(lab, ["tank/data"], target={"properties": {"canmount": "noauto", "direct": "always"}})
    code, data, _ = replicate(lab)
    assert code == 1
    assert item(data, "tank/data")["error"] == (
        "target backup (target): zfs there does not know the property 'direct' "
        "(targets.backup.properties); remove it, or upgrade OpenZFS on target")
    assert snapshots(lab, "target", f"{PARENT}/tank/data") == {}


def test_dry_run_prints_the_plan_and_changes_nothing(clean_lab):
    lab = clean_lab
    lab.ssh("source", "rm -rf /var/lib/zfsrep && zfs create tank/data")
    write_config(lab, ["tank/data"])
    write_files(lab, "/tank/data", 4, 500_000, 3)
    snap(lab, "tank/data@s1")
    data = replicate_ok(lab, "--dry-run")
    it = item(data, "tank/data")
    assert it["status"] == "planned" and it["details"]["plan"] == ["full tank/data@s1"]
    assert it["details"]["estimated_bytes"] > 1_000_000
    assert lab.ssh("target", ["zfs", "list", f"{PARENT}/tank/data"], check=False).returncode != 0
    assert lab.ssh("source", "test -e /var/lib/zfsrep/last-replicate.json", check=False).returncode != 0


def test_two_datasets_one_recursive_with_children_and_names_with_spaces(clean_lab):
    lab = clean_lab
    for ds in ("tank/data", "tank/tree", "tank/tree/a", "tank/tree/a/deep", "tank/tree/my child",
               "tank/tree/skip", "tank/with space"):
        lab.ssh("source", ["zfs", "create", ds])
    for i, ds in enumerate(("data", "tree", "tree/a", "tree/a/deep", "tree/my child", "tree/skip",
                            "with space")):
        write_files(lab, f"/tank/{ds}/files", 3, 200_000, 20 + i)
    write_config(lab, [
        "tank/data",
        {"name": "tank/tree", "recursive": True, "exclude": ["tank/tree/skip"]},
        "tank/with space",
    ])
    lab.ssh("source", "zfs snapshot -r tank@one")
    first = replicate_ok(lab)
    replicated = ["tank/data", "tank/tree", "tank/tree/a", "tank/tree/a/deep", "tank/tree/my child",
                  "tank/with space"]
    assert sorted(i["dataset"] for i in first["items"]) == sorted(replicated)
    write_files(lab, "/tank/tree/my child/more", 2, 300_000, 40)
    write_files(lab, "/tank/with space/more", 2, 300_000, 41)
    lab.ssh("source", "zfs snapshot -r tank@two")
    second = replicate_ok(lab)
    for ds in replicated:
        assert item(second, ds)["from_snapshot"] == "one", ds
        assert assert_same(lab, ds) == ["one", "two"]
    assert lab.ssh("target", ["zfs", "list", f"{PARENT}/tank/tree/skip"], check=False).returncode != 0


def test_killed_transfer_resumes_from_token_at_three_points(clean_lab):
    lab = clean_lab
    lab.ssh("source", "zfs create -o compression=off tank/big")
    write_config(lab, ["tank/big"], target={"rate_limit": "10M"})  # time to watch the progress
    # 300 MB: at 10 MB/s `used` on the target moves in txg steps of up to ~50 MB, and each
    # kill lets mbuffer's 16 MB drain; 200 MB left the third kill too little stream (CI, once)
    lab.ssh("source", "for i in 1 2 3 4 5 6; do head -c 50000000 /dev/urandom > /tank/big/blob$i; done")
    snap(lab, "tank/big@s1")
    full = item(replicate_ok(lab, "--dry-run"), "tank/big")["details"]["estimated_bytes"]
    assert full > 290_000_000

    target_ds = f"{PARENT}/tank/big"
    offsets = []
    for pattern in (SEND_PATTERN, SEND_PATTERN, SSH_PATTERN):
        rc, data, killed = replicate_and_kill(lab, pattern, target_ds, 30_000_000)
        assert killed, (f"nothing matched {pattern!r} once 30 MB more had arrived (earlier kills "
                        f"at {offsets}; zfsrep exited {rc}, arrived now {received(lab, 'target', target_ds)}): "
                        f"{json.dumps(data)[:3000]}")
        assert rc == 1 and item(data, "tank/big")["status"] == "failed", data
        error = item(data, "tank/big")["error"]
        assert "tank/big" in error and "target" in error and "rerun" in error
        token = token_of(lab, target_ds)
        assert token, "an interrupted receive leaves a resume token"
        offsets.append(token_offset(lab, token))
    assert offsets == sorted(offsets) and len(set(offsets)) == 3, f"three different points: {offsets}"
    assert offsets[-1] < full

    final = replicate_ok(lab)
    it = item(final, "tank/big")
    assert it["resumed"] is True and it["status"] == "ok"
    assert it["bytes"] < 0.8 * full and it["bytes"] < full - offsets[-1] + 20_000_000, (it["bytes"], full, offsets)
    assert token_of(lab, target_ds) is None
    assert_same(lab, "tank/big")


def test_stale_token_is_aborted_and_replication_recovers(clean_lab):
    lab = clean_lab
    lab.ssh("source", "zfs create -o compression=off tank/data")
    write_config(lab, ["tank/data"], target={"rate_limit": "2M"})
    write_files(lab, "/tank/data/a", 2, 100_000, 50)
    snap(lab, "tank/data@s1")
    replicate_ok(lab)
    lab.ssh("source", "head -c 40000000 /dev/urandom > /tank/data/big")
    snap(lab, "tank/data@s2")
    rc, data, killed = replicate_and_kill(lab, SEND_PATTERN, f"{PARENT}/tank/data/%recv", 4_000_000)
    assert killed and rc == 1
    assert token_of(lab, f"{PARENT}/tank/data")
    # the snapshot the token continues disappears from the source (its hold released first:
    # the hold is exactly what normally prevents this)
    lab.ssh("source", "zfs release zfsrep:backup tank/data@s2 && zfs destroy tank/data@s2")
    write_files(lab, "/tank/data/c", 2, 100_000, 51)
    snap(lab, "tank/data@s3")
    code, data, err = replicate(lab)
    assert code == 0, err
    it = item(data, "tank/data")
    assert any("stale resume token" in n for n in it["details"]["notes"])
    assert it["details"]["plan"][0].startswith("abort") and it["from_snapshot"] == "s1"
    assert token_of(lab, f"{PARENT}/tank/data") is None
    assert assert_same(lab, "tank/data") == ["s1", "s3"]


def test_diverged_target_is_refused_and_nothing_is_destroyed(clean_lab):
    lab = clean_lab
    lab.ssh("source", "zfs create tank/data")
    write_config(lab, ["tank/data"])
    write_files(lab, "/tank/data", 2, 100_000, 60)
    snap(lab, "tank/data@s1")
    replicate_ok(lab)
    lab.ssh("target", ["zfs", "snapshot", f"{PARENT}/tank/data@made-on-target"])
    write_files(lab, "/tank/data/b", 2, 100_000, 61)
    snap(lab, "tank/data@s2")
    before_t = snapshots(lab, "target", f"{PARENT}/tank/data")
    before_s = snapshots(lab, "source", "tank/data")
    code, data, err = replicate(lab)
    assert code == 1
    error = item(data, "tank/data")["error"]
    assert "diverged" in error and "@made-on-target" in error and "@s1" in error
    assert "zfs destroy" in error and "zfs rename" in error
    assert snapshots(lab, "target", f"{PARENT}/tank/data") == before_t
    assert snapshots(lab, "source", "tank/data") == before_s

    # a target with history but nothing in common is refused the same way
    lab.ssh("target", ["zfs", "create", f"{PARENT}/tank/other"])
    lab.ssh("target", ["zfs", "snapshot", f"{PARENT}/tank/other@foreign"])
    lab.ssh("source", "zfs create tank/other && zfs snapshot tank/other@s1")
    write_config(lab, ["tank/other"])
    code, data, err = replicate(lab)
    assert code == 1 and "none in common" in item(data, "tank/other")["error"]
    assert snapshots(lab, "target", f"{PARENT}/tank/other") and "foreign" in snapshots(
        lab, "target", f"{PARENT}/tank/other")


def test_prune_race_never_destroys_the_held_base(clean_lab):
    lab = clean_lab
    lab.ssh("source", "zfs create tank/data")
    tight = {"frequent": 0, "hourly": 1, "daily": 0, "weekly": 0, "monthly": 0, "yearly": 0}
    write_config(lab, ["tank/data"], retention=tight)
    base = "zfsrep_hourly_2026-01-01T00:00:00Z"
    write_files(lab, "/tank/data", 2, 100_000, 70)
    snap(lab, f"tank/data@{base}")
    replicate_ok(lab)
    # newer snapshots arrive; a snapshot run with tight retention prunes (hourly = 1)
    for h in (1, 2, 3):
        write_files(lab, f"/tank/data/h{h}", 1, 100_000, 70 + h)
        snap(lab, f"tank/data@zfsrep_hourly_2026-01-01T0{h}:00:00Z")
    proc = lab.run_zfsrep(["snapshot", "--json"], check=False)
    assert proc.returncode == 0, proc.stderr
    left = snapshots(lab, "source", "tank/data")
    assert base in left, "the held replication base survived pruning"
    assert "zfsrep_hourly_2026-01-01T01:00:00Z" not in left, "pruning did run"
    data = replicate_ok(lab)
    it = item(data, "tank/data")
    assert it["from_snapshot"] == base and it["details"]["plan"][0].startswith("incremental")
    assert_same(lab, "tank/data", [it["to_snapshot"]])


def two_runs_at_once(lab):
    """Start replicate (a), and once it is sending a second one (b); both exit codes as
    "a=N b=N". (Starting b after a fixed delay raced a's start-up on a loaded machine.)"""
    return lab.ssh("source", ["sh", "-c", f"""
zfsrep replicate --json > /tmp/a.json 2>/tmp/a.err & a=$!
n=0; until pgrep -f {shlex.quote(SEND_PATTERN)} >/dev/null || [ $n -ge 3000 ]; do n=$((n+1)); sleep 0.1; done
zfsrep replicate --json > /tmp/b.json 2>/tmp/b.err; echo "b=$?"
wait $a; echo "a=$?"
"""], timeout=900).stdout


def test_concurrent_runs_wait_or_exit_clearly(clean_lab):
    lab = clean_lab
    lab.ssh("source", "zfs create -o compression=off tank/data")
    # 30 s at 1M: the second run must reach the lock while the first still sends, however
    # slowly it starts (at 2M, 15 s, it ended with 0 twice on a host running three labs)
    write_config(lab, ["tank/data"], target={"rate_limit": "1M", "lock_timeout": "3s"})
    lab.ssh("source", "head -c 30000000 /dev/urandom > /tank/data/big")
    snap(lab, "tank/data@s1")
    # two runs at once: the second gives up after lock_timeout with a clear message
    out = two_runs_at_once(lab)
    assert "a=0" in out and "b=1" in out, out
    b = json.loads(lab.ssh("source", "cat /tmp/b.json").stdout)
    error = item(b, "tank/data")["error"]
    assert "another zfsrep replicate" in error and "lock_timeout" in error
    assert_same(lab, "tank/data")
    # with a long enough lock_timeout, the second waits for the first, then finds nothing to do
    write_config(lab, ["tank/data"], target={"rate_limit": "2M", "lock_timeout": "10m"})
    lab.ssh("source", "head -c 12000000 /dev/urandom > /tank/data/big2")
    snap(lab, "tank/data@s2")
    out = two_runs_at_once(lab)
    assert "a=0" in out and "b=0" in out, out
    statuses = sorted(item(json.loads(lab.ssh("source", f"cat /tmp/{x}.json").stdout),
                           "tank/data")["status"] for x in "ab")
    assert statuses == ["nothing-to-do", "ok"]
    assert assert_same(lab, "tank/data") == ["s1", "s2"]
