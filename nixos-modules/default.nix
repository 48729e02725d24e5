# services.zfsrep: ZFS snapshots and replication with zfsrep, as hardened oneshot services with
# timers (zfs-snapshot, zfs-replicate; optionally zfs-verify and zfs-scrub-targets). `settings` is
# the TOML config the CLI reads (same schema, docs/config.md); typed options cover what is NixOS
# wiring: schedules, the user and its `zfs allow` permissions, credentials, known host keys.
# The units themselves come from ./units.nix, shared with `zfsrep systemd render`.
# `services.zfsrep.receive` (./receive.nix) is the other role, a backup target: either role may
# be on without the other (a pure backup host enables only `receive`).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    literalExpression
    mkEnableOption
    mkIf
    mkOption
    types
    ;
  cfg = config.services.zfsrep;
  format = pkgs.formats.toml { };
  configFile = "/etc/zfsrep/config.toml";

  # The report sinks (name -> credential option, credential name, the config key it fills in),
  # written from zfsrep/sinks (tests/tooling/test_sink_registry_files.py checks that they agree).
  sinks = builtins.fromJSON (builtins.readFile ./sinks.json);

  # Option holding the path on the machine -> credential name. The config refers to "%d/<name>".
  credentialNames = {
    sshKey = "ssh-key";
    awsCredentials = "aws-credentials";
  }
  // lib.mapAttrs' (_: sink: lib.nameValuePair sink.option sink.credential) sinks;
  credentials = lib.filterAttrs (_: path: path != null) (
    lib.mapAttrs' (opt: name: lib.nameValuePair name cfg.credentials.${opt}) credentialNames
    // cfg.credentials.extra
  );
  cred = name: "%d/${name}";

  # The two options each timer has: `enable` (the mkOption fields but the type) and `onCalendar`.
  mkTimerOptions =
    {
      unit,
      enable,
      onCalendar,
      calendarNote ? "",
    }:
    {
      enable = mkOption ({ type = types.bool; } // enable);
      onCalendar = mkOption {
        type = types.str;
        default = onCalendar;
        description = "When ${unit} runs (systemd.time(7) OnCalendar=)${calendarNote}.";
      };
    };

  # Keys are pinned under the target's name (ssh's HostKeyAlias, `host_key_alias` below), so an
  # address that changes at each launch (an EC2 warmup) still verifies, and so does any port.
  knownHostsFile = pkgs.writeText "zfsrep-known_hosts" (
    lib.concatStrings (
      lib.mapAttrsToList (name: keys: lib.concatMapStrings (key: "${name} ${key}\n") keys) cfg.knownHosts
    )
  );

  # What the module adds to the user's settings (theirs win): credential paths, known hosts.
  targets = lib.mapAttrs (
    name: target:
    lib.optionalAttrs (cfg.credentials.sshKey != null) { identity_file = cred "ssh-key"; }
    // lib.optionalAttrs (cfg.knownHosts ? ${name}) {
      known_hosts = "${knownHostsFile}";
      host_key_alias = name;
    }
    // target
  ) (cfg.settings.targets or { });
  report =
    let
      given = cfg.settings.report or { };
    in
    given
    // lib.mapAttrs (name: sink: { ${sink.key} = cred sink.credential; } // (given.${name} or { })) (
      lib.filterAttrs (_: sink: cfg.credentials.${sink.option} != null) sinks
    );
  settings =
    cfg.settings
    // lib.optionalAttrs (targets != { }) { inherit targets; }
    // lib.optionalAttrs (report != { }) { inherit report; };

  renderedConfig = format.generate "zfsrep.toml" settings;
  # `zfsrep config check` reads only this file (credential paths are not opened)
  checkedConfig =
    if cfg.checkConfig && pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform then
      pkgs.runCommand "zfsrep.toml" { nativeBuildInputs = [ cfg.package ]; } ''
        zfsrep config check --config ${renderedConfig}
        cp ${renderedConfig} $out
      ''
    else
      renderedConfig;

  datasets = settings.datasets or [ ];
  warmupTargets = lib.sort (a: b: a < b) (lib.attrNames (lib.filterAttrs (_: t: t ? warmup) targets));
  hasSink = lib.any (s: report ? ${s}) (lib.attrNames sinks);

  units = import ./units.nix {
    exe = lib.getExe cfg.package;
    inherit configFile credentials warmupTargets;
    inherit (cfg) user group;
    snapshotOnCalendar = cfg.snapshot.onCalendar;
    replicateOnCalendar = cfg.replicate.onCalendar;
    verify = cfg.verify.enable;
    verifyOnCalendar = cfg.verify.onCalendar;
    verifyDeep = cfg.verify.deep;
    scrubTargets = lib.optionals cfg.scrub.enable cfg.scrub.targets;
    scrubOnCalendar = cfg.scrub.onCalendar;
    inherit (cfg) randomizedDelaySec;
    report = hasSink;
    datasets = datasets != [ ];
    sends = cfg.enable;
    pruneReceived = cfg.receive.enable;
    pruneReceivedOnCalendar = cfg.receive.pruneOnCalendar;
    snapshotPermissions = cfg.permissions.snapshot;
    replicatePermissions = cfg.permissions.replicate;
    stateDir = settings.state_dir or "/var/lib/zfsrep";
    lockDir = settings.lock_dir or "/run/zfsrep";
    environment = { };
  };

  runtimePath = import ./runtime-path.nix {
    inherit pkgs;
    zfs = config.boot.zfs.package;
  };

  mkService = name: {
    description = units.${name}.unit.Description;
    after = units.${name}.unit.After;
    wants = units.${name}.unit.Wants or [ ];
    unitConfig = removeAttrs units.${name}.unit [
      "Description"
      "After"
      "Wants"
    ];
    serviceConfig = units.${name}.service;
    path = runtimePath;
    # a run in progress is never restarted by a switch; the next timer run uses the new config
    restartIfChanged = false;
    stopIfChanged = false;
  };
  mkTimer = name: {
    description = "${units.${name}.unit.Description} (timer)";
    wantedBy = [ "timers.target" ];
    timerConfig = units.${name}.timer;
  };

  storePaths = lib.filter (p: lib.hasPrefix builtins.storeDir (toString p)) (lib.attrValues credentials);
  targetsWithoutHostKey = lib.attrNames (
    lib.filterAttrs (_: t: t ? warmup && !(t ? known_hosts) && !(t ? ssh_config)) targets
  );
  unknownScrubTargets = lib.filter (t: !(targets ? ${t})) cfg.scrub.targets;
  plainUrls = lib.filter (s: (report.${s} or { }) ? url) (lib.attrNames sinks);
  # the units this machine gets, each a service with its timer
  installed = lib.filterAttrs (_: on: on) {
    zfs-snapshot = cfg.enable && cfg.snapshot.enable;
    zfs-replicate = cfg.enable && cfg.replicate.enable;
    zfs-verify = cfg.enable && cfg.verify.enable;
    zfs-scrub-targets = cfg.enable && cfg.scrub.enable && units ? zfs-scrub-targets;
    # the target's own pruning (./receive.nix), as root: the ssh user never holds destroy
    zfs-prune-received = cfg.receive.enable;
  };

  # the source side's assertions hold only when it is on (a pure backup host has no datasets)
  sourceAssertion = a: a // { assertion = !cfg.enable || a.assertion; };
in
{
  _file = ./default.nix;
  imports = [ ./receive.nix ];

  options.services.zfsrep = {
    enable = mkEnableOption "zfsrep ZFS snapshots and replication, the source side (zfs-snapshot and zfs-replicate services with timers; a host that only receives backups enables services.zfsrep.receive instead)";

    # pkgs.zfsrep with the overlay, else the package of this flake
    package = lib.mkPackageOption (pkgs // { zfsrep = pkgs.zfsrep or (pkgs.callPackage ../nix/package.nix { }); }) "zfsrep" { };

    randomizedDelaySec = mkOption {
      type = types.str;
      default = "5min";
      example = "30min";
      description = ''
        RandomizedDelaySec= of the zfs-replicate, zfs-verify and zfs-scrub-targets timers: each run
        starts up to this much later, so that many sources do not reach one target in the same
        second. `"0"` turns it off.
      '';
    };

    settings = mkOption {
      type = types.submodule { freeformType = format.type; };
      default = { };
      example = literalExpression ''
        {
          datasets = [ { name = "tank/home"; recursive = true; } ];
          targets.offsite = { host = "backup.example.net"; dataset = "backup/hosts/web1"; };
          report.honeycomb.dataset = "zfsrep";
        }
      '';
      description = ''
        The zfsrep config (rendered to ${configFile}, the file the CLI reads): the same TOML
        schema as `zfsrep config init` writes (docs/config.md). Secrets never go here: use
        {option}`services.zfsrep.credentials`, which fills in the `%d/<name>` file paths.
      '';
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether building the system runs `zfsrep config check` on the rendered config, so a
        bad one fails `nixos-rebuild` with every problem and its dotted path instead of failing
        the first backup. Skipped when the build machine cannot run the target's binaries
        (cross builds).
      '';
    };

    user = mkOption {
      type = types.str;
      default = "zfsrep";
      description = ''
        The user the services run as. A dedicated user (the default, created by this module) is
        granted {option}`services.zfsrep.permissions` with `zfs allow` on every configured dataset
        for the length of each run only. `"root"` skips the delegation and keeps only
        CAP_SYS_ADMIN in the sandbox.
      '';
    };

    group = mkOption {
      type = types.str;
      default = cfg.user;
      defaultText = literalExpression "config.services.zfsrep.user";
      description = "The group the services run as.";
    };

    permissions = {
      snapshot = mkOption {
        type = types.listOf types.str;
        default = [
          "snapshot"
          "destroy"
          "mount"
        ];
        description = "`zfs allow` permissions zfs-snapshot holds while it runs (keep disjoint from `replicate`).";
      };
      replicate = mkOption {
        type = types.listOf types.str;
        default = [
          "send"
          "hold"
          "release"
          "bookmark"
        ];
        description = "`zfs allow` permissions zfs-replicate holds while it runs (keep disjoint from `snapshot`).";
      };
    };

    snapshot = mkTimerOptions {
      unit = "zfs-snapshot";
      enable = {
        default = true;
        description = "Whether to take and prune snapshots on a timer (zfs-snapshot.timer).";
      };
      onCalendar = "*:0/15";
      calendarNote = "; each run takes only the snapshots that are due";
    };

    replicate = mkTimerOptions {
      unit = "zfs-replicate";
      enable = {
        default = (cfg.settings.targets or { }) != { };
        defaultText = literalExpression "config.services.zfsrep.settings.targets != { }";
        description = "Whether to replicate to every target on a timer (zfs-replicate.timer).";
      };
      onCalendar = "hourly";
    };

    verify = mkTimerOptions {
      unit = "zfs-verify";
      enable = {
        default = false;
        description = ''
          Whether to check on a timer (zfs-verify.timer) that the backups are there: `zfsrep verify`
          compares the snapshots of every dataset on every target by GUID, with the same warmup,
          teardown and report-result steps as zfs-replicate. Its result is in `zfsrep status`.
        '';
      };
      onCalendar = "weekly";
    }
    // {
      deep = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Also compare the files of the newest common snapshot on both ends (`zfsrep verify --deep`:
          metadata of every file, sha256 of a sample). Reads data on both machines.
        '';
      };
    };

    scrub = mkTimerOptions {
      unit = "zfs-scrub-targets";
      enable = {
        default = false;
        description = ''
          Whether to scrub the targets' pools on a timer (zfs-scrub-targets.timer): `zfsrep scrub
          --target T --wait` per target, in order, warming an on-demand target up first; errors found
          fail the unit and reach report-result. (Scrubbing this machine's own pools is
          {option}`services.zfs.autoScrub`.)
        '';
      };
      onCalendar = "monthly";
    }
    // {
      targets = mkOption {
        type = types.listOf types.str;
        default = lib.attrNames (cfg.settings.targets or { });
        defaultText = literalExpression "builtins.attrNames config.services.zfsrep.settings.targets";
        description = "The targets whose pools to scrub, in this order.";
      };
    };

    credentials = lib.mapAttrs (
      opt: name:
      mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/agenix/zfsrep-${name}";
        description = ''
          Path (on the machine, outside the Nix store) of the ${name} file, handed to the
          services with `LoadCredential=${name}:<path>`; the config then reads "%d/${name}".
        '';
      }
    ) credentialNames
    // {
      extra = mkOption {
        type = types.attrsOf types.str;
        default = { };
        example = {
          webhook-headers = "/run/keys/zfsrep-webhook-headers";
        };
        description = "More credentials, name -> path; refer to them in `settings` as \"%d/<name>\".";
      };
    };

    knownHosts = mkOption {
      type = types.attrsOf (types.listOf types.str);
      default = { };
      example = {
        offsite = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleHostKeyOnly" ];
      };
      description = ''
        Pinned host keys per target name (public keys, fine in the store). They become that
        target's `known_hosts` file; zfsrep always connects with StrictHostKeyChecking=yes.
      '';
    };
  };

  config = mkIf (cfg.enable || cfg.receive.enable) {
    assertions = map sourceAssertion [
      {
        assertion = !cfg.replicate.enable || targets != { };
        message = "services.zfsrep: replicate.enable is true but settings.targets is empty; define settings.targets.<name> = { host = ...; dataset = ...; } or set replicate.enable = false.";
      }
      {
        assertion = !cfg.verify.enable || targets != { };
        message = "services.zfsrep: verify.enable is true but settings.targets is empty; define settings.targets.<name> or set verify.enable = false.";
      }
      {
        assertion = !cfg.scrub.enable || (cfg.scrub.targets != [ ] && unknownScrubTargets == [ ]);
        message = "services.zfsrep: scrub.targets must name targets in settings.targets (unknown: ${toString unknownScrubTargets}; known: ${toString (lib.attrNames targets)}); fix scrub.targets or set scrub.enable = false.";
      }
      {
        assertion = datasets != [ ];
        message = "services.zfsrep: settings.datasets is empty; add settings.datasets = [ { name = \"tank/data\"; } ] (a host that only receives backups: leave services.zfsrep.enable off and use services.zfsrep.receive).";
      }
      {
        assertion = targetsWithoutHostKey == [ ];
        message = "services.zfsrep: target(s) ${lib.concatStringsSep ", " targetsWithoutHostKey} have a warmup but no pinned host key; set services.zfsrep.knownHosts.<target> (or settings.targets.<target>.known_hosts).";
      }
      {
        assertion = cfg.user == "root" || config.users.users ? ${cfg.user};
        message = "services.zfsrep: user ${cfg.user} does not exist; define users.users.${cfg.user} (or use the default user, zfsrep, or root).";
      }
    ]
    ++ [
      {
        assertion = storePaths == [ ];
        message = "services.zfsrep: credential file(s) ${toString storePaths} are in the world-readable Nix store; point services.zfsrep.credentials at files outside it (agenix, sops-nix, /run/keys).";
      }
    ];
    warnings = map (
      s: "services.zfsrep: settings.report.${s}.url puts the URL (a secret) in the world-readable Nix store; use services.zfsrep.credentials.${sinks.${s}.option} instead."
    ) plainUrls;

    environment.etc."zfsrep/config.toml".source = checkedConfig;
    environment.systemPackages = [ cfg.package ];

    users.users = lib.optionalAttrs (cfg.enable && cfg.user == "zfsrep") {
      zfsrep = {
        isSystemUser = true;
        inherit (cfg) group;
        home = settings.state_dir or "/var/lib/zfsrep";
        description = "zfsrep ZFS snapshots and replication";
      };
    };
    users.groups = lib.optionalAttrs (cfg.enable && cfg.group == "zfsrep") { zfsrep = { }; };

    systemd.services = lib.mapAttrs (name: _: mkService name) installed;
    systemd.timers = lib.mapAttrs (name: _: mkTimer name) installed;
  };
}
