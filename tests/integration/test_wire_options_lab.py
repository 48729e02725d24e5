"""The wire options on real sends: `compress` (zstd, lz4), `mbuffer` (on both ends) and
`rate_limit`, each on a full and then an incremental replication, with the file checksums and
snapshot GUIDs compared on the target and the run's JSON showing the stages that ran here and
the command that ran there (`details.steps[].stages` / `.remote`)."""

from __future__ import annotations

import pytest

from tests.integration.test_replicate_lab import assert_same, item, replicate_ok, snap, write_config, write_files

pytestmark = pytest.mark.lab

DS = "tank/data"
MBUFFER = "mbuffer -q -s 128k -m 16M"
# name: (target keys, stages here before ssh, what runs on the target before zfs receive)
WIRE = {
    "zstd": ({"compress": "zstd"}, ["zfs send", "zstd"], ["zstd -q -d -c"]),
    "lz4": ({"compress": "lz4"}, ["zfs send", "lz4"], ["lz4 -q -d -c"]),
    "mbuffer": ({"mbuffer": "16M"}, ["zfs send", "mbuffer"], [MBUFFER]),
    "lz4+mbuffer": ({"compress": "lz4", "mbuffer": "16M"}, ["zfs send", "lz4", "mbuffer"], [MBUFFER, "lz4 -q -d -c"]),
    "zstd+mbuffer+rate_limit": ({"compress": "zstd", "mbuffer": "16M", "rate_limit": "2M"},
                                ["zfs send", "zstd", "mbuffer"], [MBUFFER, "zstd -q -d -c"]),
}


@pytest.mark.parametrize("name", list(WIRE))
def test_full_then_incremental_arrive_intact_through_the_configured_stages(clean_lab, name):
    lab = clean_lab
    keys, here, there = WIRE[name]
    lab.ssh("source", f"zfs create -o compression=off {DS}")
    write_config(lab, [DS], target=keys)
    mp = f"/{DS}"
    for n, kind in ((1, "full"), (2, "incremental")):
        # incompressible data (urandom), so a rate limit's time is the stream's own size
        write_files(lab, f"{mp}/run{n}", 12, 512 * 1024, seed=n)
        snap(lab, f"{DS}@s{n}")
        data = replicate_ok(lab)
        (step,) = item(data, DS)["details"]["steps"]
        assert step["step"].startswith(kind), step
        assert step["stages"][:-1] == here and step["stages"][-1].startswith("ssh to "), step
        assert step["remote"].split(" | ")[:-1] == there, step
        assert step["remote"].split(" | ")[-1].startswith("zfs receive -u -s "), step
        if "rate_limit" in keys:
            # about 3 MiB at 2 MiB/s (the first run also sends the empty dataset's metadata)
            assert step["bytes"] > 2_000_000 and step["seconds"] >= 1.0, step
        assert assert_same(lab, DS) == [f"s{i}" for i in range(1, n + 1)]
