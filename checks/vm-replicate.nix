# Two machines with ZFS: `source` runs services.zfsrep, `target` receives over ssh as root.
# A full then an incremental replication through `systemctl start`, the same snapshots (guids)
# on both sides, the file contents on the target, and no `zfs allow` left after a run.
{ zfsrepTest, ... }:
{
  name = "zfsrep-replicate";

  nodes.source.imports = [
    (zfsrepTest.zfsNode { hostId = "5a11ce01"; })
    zfsrepTest.source
  ];
  nodes.target.imports = [
    (zfsrepTest.zfsNode { hostId = "7a26e701"; })
    zfsrepTest.target
  ];

  testScript =
    zfsrepTest.setupPools
    + ''
      def snapshots(machine, dataset):
          out = machine.succeed(f"zfs list -H -p -t snapshot -o name,guid -s createtxg {dataset}")
          return [tuple(line.split("\t")) for line in out.splitlines()]

      def same_snapshots():
          here = [(n.split("@")[1], g) for n, g in snapshots(source, "tank/data")]
          there = [(n.split("@")[1], g) for n, g in snapshots(target, "backup/source/tank/data")]
          assert there, "no snapshot arrived on the target"
          assert there[-1] == here[-1], f"newest snapshot differs: {there[-1]} vs {here[-1]}"
          return there

      with subtest("the first run is a full send"):
          source.succeed("systemctl start zfs-snapshot.service")
          source.succeed("systemctl start zfs-replicate.service")
          first = same_snapshots()
          target.succeed(
              "mkdir -p /mnt/check",
              "mount -t zfs -o ro,zfsutil backup/source/tank/data /mnt/check",
          )
          assert source.succeed("sha256sum < /tank/data/one") == target.succeed("sha256sum < /mnt/check/one")
          target.succeed("umount /mnt/check")

      with subtest("the second run is incremental"):
          source.succeed("dd if=/dev/urandom of=/tank/data/two bs=1M count=2")
          source.succeed("zfs snapshot tank/data@manual-between")
          source.succeed("systemctl start zfs-snapshot.service")
          source.succeed("systemctl start zfs-replicate.service")
          second = same_snapshots()
          assert len(second) > len(first), f"no new snapshot replicated: {second}"
          assert second[: len(first)] == first, "the earlier snapshots changed on the target"

      with subtest("zfs allow is granted only during a run"):
          allowed = source.succeed("zfs allow tank/data")
          assert "zfsrep" not in allowed, f"permissions left behind:\n{allowed}"

      with subtest("the services are sandboxed"):
          source.succeed("systemd-analyze security --threshold=20 zfs-replicate.service zfs-snapshot.service")
          source.succeed("systemctl show -p User --value zfs-replicate.service | grep -x zfsrep")
    '';
}
