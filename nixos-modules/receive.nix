# services.zfsrep.receive: this host as an append-only backup target (docs/append-only.md). Per
# source: a root dataset its copies land under, the source's ssh keys, each forced to
# `zfsrep serve --root ROOT` for a dedicated non-root user that ZFS allows to create, receive
# and hold there but never to destroy; the copies are thinned by the target itself
# (zfs-prune-received, installed by ./default.nix from ./units.nix, run as root). Needs neither
# datasets nor targets: a pure backup host enables only this.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkIf mkOption types;
  cfg = config.services.zfsrep.receive;
  exe = lib.getExe config.services.zfsrep.package;

  # What the ssh user may do under each root; `send` only for restores. Never destroy, rollback,
  # rename: a compromised source cannot remove what it sent.
  permissions =
    source:
    lib.concatStringsSep "," (
      [
        "create"
        "receive"
        "mount"
        "hold"
        "release"
        # replicate receives with -o canmount=noauto (targets.<name>.properties' default)
        "canmount"
      ]
      ++ lib.optional source.allowRestore "send"
    );

  forcedCommand =
    source: "${exe} serve --root ${source.root}" + lib.optionalString source.allowRestore " --allow-restore";

  authorizedKeys = lib.concatLists (
    lib.mapAttrsToList (
      _: source: map (key: ''restrict,command="${forcedCommand source}" ${key}'') source.sshKeys
    ) cfg.sources
  );

  # Idempotent, at every boot and switch: a missing root is created (not mounted), then the user's
  # permissions on it are set anew (so turning allowRestore off takes `send` away).
  allowScript = lib.concatStrings (
    lib.mapAttrsToList (
      _: source:
      let
        root = lib.escapeShellArg source.root;
        user = lib.escapeShellArg cfg.user;
      in
      ''
        zfs list -H -o name ${root} >/dev/null 2>&1 || zfs create -p -o canmount=off ${root}
        zfs unallow -u ${user} ${root} || true
        zfs allow -u ${user} ${permissions source} ${root}
      ''
    ) cfg.sources
  );

  badRoots = lib.filter (r: builtins.match "[A-Za-z0-9][A-Za-z0-9_.:/-]*" r == null) (
    lib.mapAttrsToList (_: s: s.root) cfg.sources
  );
in
{
  _file = ./receive.nix;

  options.services.zfsrep.receive = {
    enable = lib.mkEnableOption ''
      this host as an append-only backup target: a non-root ssh user per
      {option}`services.zfsrep.receive.user` whose keys may run only `zfsrep serve`, and the
      zfs-prune-received timer that thins the copies by the target's own retention
    '';

    user = mkOption {
      type = types.str;
      default = "zfsrep-recv";
      description = ''
        The system user the sources log in as (created by this module; the sources' config says
        `user = "zfsrep-recv"` and `append_only = true` for this target). It holds
        `zfs allow create,receive,mount,hold,release,canmount` (and `send` with `allowRestore`)
        on each source's root, never destroy.
      '';
    };

    sources = mkOption {
      default = { };
      example = lib.literalExpression ''
        {
          web1 = {
            root = "backup/hosts/web1";
            sshKeys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... root@web1" ];
            retention = { daily = 30; monthly = 24; };
          };
        }
      '';
      description = "One entry per source host, each confined to its own root (`[receive.sources.<name>]`).";
      type = types.attrsOf (
        types.submodule {
          options = {
            root = mkOption {
              type = types.str;
              example = "backup/hosts/web1";
              description = ''
                The dataset this source's copies land under (the source's `targets.<name>.dataset`).
                Created (canmount=off) if missing, once its pool is imported.
              '';
            };
            sshKeys = mkOption {
              type = types.listOf types.str;
              default = [ ];
              description = "The source's public ssh keys; each may run only `zfsrep serve --root <root>`.";
            };
            allowRestore = mkOption {
              type = types.bool;
              default = false;
              description = "Let these keys restore from this target (`zfsrep serve --allow-restore`, `zfs allow send`).";
            };
            retention = mkOption {
              type = types.attrsOf types.int;
              default = { };
              example = {
                daily = 30;
                monthly = 24;
              };
              description = "Counts for thinning this source's copies (`[receive.sources.<name>.retention]`); missing ones come from `settings.retention`.";
            };
          };
        }
      );
    };

    pruneOnCalendar = mkOption {
      type = types.str;
      default = "daily";
      description = "When zfs-prune-received runs (systemd.time(7) OnCalendar=).";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.sources != { };
        message = "services.zfsrep.receive: no sources; add services.zfsrep.receive.sources.<name> = { root = \"backup/hosts/<name>\"; sshKeys = [ ... ]; }.";
      }
      {
        assertion = cfg.user != "root";
        message = "services.zfsrep.receive: user must not be root (a root login can destroy every copy); keep the default, zfsrep-recv.";
      }
      {
        assertion = badRoots == [ ];
        message = "services.zfsrep.receive: root(s) ${toString badRoots} are not dataset names; use e.g. backup/hosts/web1.";
      }
    ];

    services.zfsrep.settings.receive.sources = lib.mapAttrs (
      _: source: { inherit (source) root; } // lib.optionalAttrs (source.retention != { }) { inherit (source) retention; }
    ) cfg.sources;

    # mkIf: a user = "root" (refused above) must not redefine root before the assertion speaks
    users.users.${cfg.user} = mkIf (cfg.user != "root") {
      isSystemUser = true;
      group = cfg.user;
      # sshd runs the forced command with the user's shell
      shell = pkgs.bashInteractive;
      home = "/var/empty";
      description = "zfsrep receives backups here (zfsrep serve only)";
      openssh.authorizedKeys.keys = authorizedKeys;
    };
    users.groups.${cfg.user} = mkIf (cfg.user != "root") { };

    # the receiving end of targets' `compress`/`mbuffer`
    environment.systemPackages = [
      pkgs.zstd
      pkgs.lz4
      pkgs.mbuffer
    ];

    systemd.services.zfs-receive-allow = {
      description = "zfsrep: let ${cfg.user} receive under each source's root (zfs allow, no destroy)";
      wantedBy = [ "multi-user.target" ];
      after = [ "zfs-import.target" ];
      before = [ "sshd.service" ];
      path = [ config.boot.zfs.package ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
      };
      script = ''
        set -eu
      ''
      + allowScript;
    };
  };
}
