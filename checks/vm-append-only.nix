# The recommended set-up (docs/append-only.md): `source` runs services.zfsrep pushing to
# `target` as the non-root user zfsrep-recv with `append_only = true`; `target` is a pure backup
# host with only services.zfsrep.receive (the source's snakeoil key forced to `zfsrep serve`,
# `zfs allow` without destroy, its own prune timer). Replication works; the same key used by
# hand to destroy the copies is refused and every snapshot stays; the target's own
# zfs-prune-received thins the copies by its retention and keeps the newest.
{ zfsrepTest, ... }:
let
  root = "backup/source";
in
{
  name = "zfsrep-append-only";

  nodes.source.imports = [
    (zfsrepTest.zfsNode { hostId = "5a11ce02"; })
    zfsrepTest.source
    {
      services.zfsrep.settings.targets.target = {
        user = "zfsrep-recv";
        append_only = true;
      };
    }
  ];
  # `self` reaches the nodes' modules (node.specialArgs in ./lib.nix)
  nodes.target =
    { self, ... }:
    {
      imports = [
        (zfsrepTest.zfsNode { hostId = "7a26e702"; })
        self.nixosModules.default
      ];
      services.openssh.enable = true;
      services.zfsrep.receive = {
        enable = true;
        pruneOnCalendar = "yearly"; # the test starts it itself
        sources.source = {
          inherit root;
          sshKeys = [ zfsrepTest.keys.snakeOilPublicKey ];
          # keep only the newest (the next incremental's base), whatever the counts
          retention = {
            frequent = 0;
            hourly = 0;
            daily = 0;
            weekly = 0;
            monthly = 0;
            yearly = 0;
          };
        };
      };
    };

  testScript =
    zfsrepTest.setupPools
    + ''
      import shlex

      copy = "${root}/tank/data"

      def names(machine, dataset):
          out = machine.succeed(f"zfs list -H -p -t snapshot -o name,guid -s createtxg {dataset}")
          return [tuple(line.split("\t")) for line in out.splitlines()]

      with subtest("the pool exists now: the role's zfs allow applies"):
          target.succeed("systemctl restart zfs-receive-allow.service")
          allowed = target.succeed("zfs allow ${root}")
          assert "zfsrep-recv" in allowed and "receive" in allowed, allowed
          assert "destroy" not in allowed, f"the ssh user must never hold destroy:\n{allowed}"

      with subtest("replicate through zfsrep serve"):
          for hour in range(3):
              source.succeed(f"dd if=/dev/urandom of=/tank/data/f{hour} bs=1M count=1")
              source.succeed(f"zfs snapshot tank/data@zfsrep_hourly_2026-01-01T0{hour}:00:00Z")
          source.succeed("systemctl start zfs-replicate.service")
          here = [(n.split("@")[1], g) for n, g in names(source, "tank/data")]
          there = [(n.split("@")[1], g) for n, g in names(target, copy)]
          assert there == here, f"{there} != {here}"
          target.succeed("mkdir -p /mnt/check", f"mount -t zfs -o ro,zfsutil {copy} /mnt/check")
          assert source.succeed("sha256sum < /tank/data/f2") == target.succeed("sha256sum < /mnt/check/f2")
          target.succeed("umount /mnt/check")

      with subtest("the source's key cannot destroy the copies"):
          before = names(target, copy)
          ssh = ("ssh -i /etc/zfsrep-test/ssh-key -o UserKnownHostsFile=/var/lib/zfsrep-test/known_hosts "
                 "-o BatchMode=yes zfsrep-recv@target ")
          for attack in ["zfs destroy -r ${root}", f"zfs rollback -r {copy}@{before[0][0].split('@')[1]}",
                         "zfs list; zfs destroy -r ${root}", "sh -c 'zfs destroy -r ${root}'"]:
              status, out = source.execute(ssh + shlex.quote(attack) + " 2>&1")
              assert status == 77, f"{attack!r}: exit {status}, expected 77 (refused): {out}"
              assert "refused" in out, out
          assert names(target, copy) == before, "a snapshot went missing"

      with subtest("the target prunes itself, keeping the newest"):
          target.succeed("systemctl start zfs-prune-received.service")
          after = names(target, copy)
          assert after == before[-1:], f"expected only the newest: {after}"
          source.succeed("dd if=/dev/urandom of=/tank/data/f3 bs=1M count=1")
          source.succeed("zfs snapshot tank/data@zfsrep_hourly_2026-01-01T03:00:00Z")
          source.succeed("systemctl start zfs-replicate.service")
          assert [n.split("@")[1] for n, _ in names(target, copy)] == [
              "zfsrep_hourly_2026-01-01T02:00:00Z", "zfsrep_hourly_2026-01-01T03:00:00Z"]
    '';
}
