# The VM test helper: runNixOSTest with the pieces both tests share as the `zfsrepTest`
# argument: a ZFS node with one empty disk, snakeoil ssh keys, the source node running the
# module (tank/data replicated to the target's backup/source) and the script that makes the pools.
{ pkgs, self }:
let
  keys = import "${pkgs.path}/nixos/tests/ssh-keys.nix" pkgs;
  helpers = {
    inherit pkgs keys;

    zfsNode =
      { hostId }:
      {
        boot.supportedFilesystems = [ "zfs" ];
        networking.hostId = hostId;
        virtualisation.emptyDiskImages = [ 1024 ];
        # /dev/disk/by-id is not populated in test VMs
        boot.zfs.devNodes = "/dev/disk/by-uuid";
      };

    # The key reaches the services as a credential; the test script pins the target's host key.
    source = {
      imports = [ self.nixosModules.default ];
      # snakeOilPrivateKey is a file (pkgs.writeText) in current nixpkgs, not a string
      environment.etc."zfsrep-test/ssh-key" = {
        source = keys.snakeOilPrivateKey;
        mode = "0400";
      };
      services.zfsrep = {
        enable = true;
        # the test starts the services itself
        snapshot.onCalendar = "yearly";
        replicate.onCalendar = "yearly";
        credentials.sshKey = "/etc/zfsrep-test/ssh-key";
        settings = {
          datasets = [ { name = "tank/data"; } ];
          targets.target = {
            host = "target";
            dataset = "backup/source";
            known_hosts = "/var/lib/zfsrep-test/known_hosts";
            # so zstd and mbuffer run under the units' syscall filter
            compress = "zstd";
            mbuffer = "16M";
          };
        };
      };
    };

    target = {
      # the receiving end of `compress`/`mbuffer`
      environment.systemPackages = [
        pkgs.zstd
        pkgs.mbuffer
      ];
      services.openssh = {
        enable = true;
        settings.PermitRootLogin = "prohibit-password";
      };
      users.users.root.openssh.authorizedKeys.keys = [ keys.snakeOilPublicKey ];
    };

    # Python: boot, make both pools, write a file, pin the target's host key on the source.
    setupPools = ''
      start_all()
      source.wait_for_unit("multi-user.target")
      source.succeed(
          "zpool create -O mountpoint=none tank /dev/vdb",
          "zfs create -o mountpoint=/tank/data tank/data",
          "dd if=/dev/urandom of=/tank/data/one bs=1M count=4",
      )
      target.wait_for_unit("sshd.service")
      target.succeed(
          "zpool create -O mountpoint=none backup /dev/vdb",
          "zfs create backup/source",
      )
      source.succeed(
          "mkdir -p /var/lib/zfsrep-test",
          "ssh-keyscan -t ed25519 target > /var/lib/zfsrep-test/known_hosts",
      )
    '';
  };
in
test:
pkgs.testers.runNixOSTest {
  imports = [
    test
    { _module.args.zfsrepTest = helpers; }
  ];
  node.specialArgs = { inherit self; };
}
