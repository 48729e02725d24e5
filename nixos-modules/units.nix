# The systemd units of zfsrep as plain data: `zfs-snapshot` and `zfs-replicate`, and when asked
# `zfs-verify` and `zfs-scrub-targets` (and on a backup target `zfs-prune-received`), each with a [Unit] part, a [Service] part and a [Timer] part. The NixOS module (./default.nix) turns this
# into systemd.services/systemd.timers; `zfsrep systemd render` (zfsrep/systemd.py) builds the
# same structure for pip installs, and tests/unit/test_systemd_units_parity.py evaluates this
# file with nix-instantiate and compares the two. Builtins only (no nixpkgs), so it evaluates
# anywhere. Keep it in step with zfsrep/systemd.py.
{
  exe,
  configFile,
  user ? "root",
  group ? user,
  snapshotOnCalendar ? "*:0/15",
  replicateOnCalendar ? "hourly",
  verify ? false,
  verifyOnCalendar ? "weekly",
  verifyDeep ? false,
  scrubTargets ? [ ],
  scrubOnCalendar ? "monthly",
  # replicate, verify and scrub timers: a fleet of sources does not reach a target in one second
  randomizedDelaySec ? "5min",
  warmupTargets ? [ ],
  report ? false,
  datasets ? true,
  # this host is a source: zfs-snapshot and zfs-replicate (false: a pure backup host)
  sends ? true,
  # [receive] configured: zfs-prune-received, run as root whatever `user` is (it holds the
  # `destroy` that the sources' ssh user never has)
  pruneReceived ? false,
  pruneReceivedOnCalendar ? "daily",
  snapshotPermissions ? [
    "snapshot"
    "destroy"
    "mount"
  ],
  replicatePermissions ? [
    "send"
    "hold"
    "release"
    "bookmark"
  ],
  stateDir ? "/var/lib/zfsrep",
  lockDir ? "/run/zfsrep",
  credentials ? { },
  environment ? { },
}:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    elem
    filter
    length
    map
    match
    replaceStrings
    stringLength
    substring
    toString
    ;

  needsQuotes = s: match ".*[[:space:]\"'\\;].*" s != null;

  # One argument of an Exec= line: specifiers (%) and variables ($) literal, quoted if needed.
  execArg =
    arg:
    let
      text = replaceStrings [ "%" "$" ] [ "%%" "$$" ] arg;
    in
    if text != "" && !needsQuotes text then
      text
    else
      "\"" + replaceStrings [ "\\" "\"" "\n" ] [ "\\\\" "\\\"" "\\n" ] text + "\"";

  zfsrep =
    prefix: command: options:
    prefix + concatStringsSep " " (map execArg ([ exe ] ++ command ++ [ "--config" configFile ] ++ options));

  envAssignment =
    name: value:
    let
      text = "${name}=${value}";
    in
    if needsQuotes text then "\"${text}\"" else text;

  hasPrefix = p: s: substring 0 (stringLength p) s == p;
  removePrefix = p: s: substring (stringLength p) (stringLength s) s;
  optional = cond: value: if cond then [ value ] else [ ];
  optionalAttrs = cond: attrs: if cond then attrs else { };

  stateManaged = hasPrefix "/var/lib/" stateDir && stateDir != "/var/lib/";
  lockManaged = hasPrefix "/run/" lockDir && lockDir != "/run/";
  writable = (optional (!stateManaged) stateDir) ++ (optional (!lockManaged) lockDir);

  directories =
    optionalAttrs stateManaged {
      StateDirectory = removePrefix "/var/lib/" stateDir;
      StateDirectoryMode = "0750";
    }
    // optionalAttrs lockManaged {
      RuntimeDirectory = removePrefix "/run/" lockDir;
      RuntimeDirectoryMode = "0750";
      # both services share it: the one that stops first must not remove it under the other
      RuntimeDirectoryPreserve = "yes";
    }
    // optionalAttrs (writable != [ ]) { ReadWritePaths = writable; };

  # Sandboxing shared by all services. Root keeps only CAP_SYS_ADMIN (the zfs ioctls).
  hardeningFor = root: {
    NoNewPrivileges = "yes";
    PrivateTmp = "yes";
    PrivateMounts = "yes";
    ProtectSystem = "strict";
    # root's ssh keys and known_hosts usually live in /root/.ssh: readable, never writable.
    ProtectHome = if root then "read-only" else "yes";
    ProtectKernelTunables = "yes";
    ProtectKernelModules = "yes";
    ProtectKernelLogs = "yes";
    ProtectControlGroups = "yes";
    ProtectClock = "yes";
    ProtectHostname = "yes";
    ProtectProc = "invisible";
    RestrictNamespaces = "yes";
    RestrictRealtime = "yes";
    RestrictSUIDSGID = "yes";
    LockPersonality = "yes";
    MemoryDenyWriteExecute = "yes";
    RemoveIPC = "yes";
    SystemCallArchitectures = "native";
    SystemCallFilter =
      if root then
        [ "@system-service" ]
      else
        [
          "@system-service"
          "~@privileged @resources"
        ];
    RestrictAddressFamilies = "AF_UNIX AF_INET AF_INET6";
    DevicePolicy = "closed";
    DeviceAllow = "/dev/zfs rw";
    CapabilityBoundingSet = if root then "CAP_SYS_ADMIN" else "";
    UMask = "0077";
  };

  # A command without --config (the credential keeping steps).
  plain = prefix: args: prefix + concatStringsSep " " (map execArg ([ exe ] ++ args));

  # A networked unit (it reaches targets) ends with `teardown --this-run`, whatever its warmups
  # are now: a switch during a run may have removed the one this run warmed up (zfsrep/unit_run.py).
  serviceAs =
    runUser: unit: verb: permissions: warmups: start:
    let
      root = runUser == "root";
      networked = unit != "zfs-snapshot" && unit != "zfs-prune-received";
      delegate = !root && datasets && permissions != [ ];
      perms = concatStringsSep "," permissions;
      # "+": runs with full privileges, outside the sandbox and the User= below.
      allow = optional delegate (zfsrep "+" [ "systemd" "allow" ] [ "--user" user "--permissions" perms ]);
      # "-": one target's failed warmup must not stop the others; replicate reports that target.
      warmupSteps = map (t: zfsrep "-" [ "warmup" ] [ "--target" t ]) warmups;
      stopSteps =
        optional networked (zfsrep "-" [ "teardown" ] [ "--this-run" ])
        ++ optional report (zfsrep "-" [ "report-result" ] [ "--verb" verb ])
        ++ optional delegate (zfsrep "-+" [ "systemd" "unallow" ] [ "--user" user "--permissions" perms ]);
      # systemd hides the credentials from ExecStopPost: keep a copy for teardown and report-result
      keep = credentials != { } && stopSteps != [ ];
      pre = allow ++ optional keep (plain "-" [ "systemd" "keep-credentials" ]) ++ warmupSteps;
      post = stopSteps ++ optional keep (plain "-" [ "systemd" "drop-credentials" ]);
      env =
        {
          TZ = "UTC";
          # every step of one run reads the config its first step read (zfsrep/unit_run.py)
          ZFSREP_RUN_DIR = "${lockDir}/runs/${unit}";
        }
        // environment
        // optionalAttrs keep { ZFSREP_KEPT_CREDENTIALS = "${lockDir}/credentials/${unit}"; };
    in
    {
      Type = "oneshot";
      Environment = map (n: envAssignment n env.${n}) (attrNames env);
      ExecStart = if start != null then start else zfsrep "" [ verb ] [ ];
    }
    // optionalAttrs (!root) {
      User = runUser;
      Group = group;
    }
    // optionalAttrs (pre != [ ]) { ExecStartPre = pre; }
    // optionalAttrs (post != [ ]) { ExecStopPost = post; }
    # systemd kills an ExecStopPost= still running after TimeoutStopSec= (90 s by default), which
    # would leave an on-demand target up: 15 min per teardown (a lock wait of up to 60 s, the pool
    # export, an EC2 stop and volume detach). TEARDOWN_STOP_MINUTES in zfsrep/systemd.py.
    // optionalAttrs networked {
      TimeoutStopSec = "${toString (15 * (if warmups == [ ] then 1 else length warmups))}min";
    }
    // optionalAttrs (credentials != { }) {
      LoadCredential = map (n: "${n}:${credentials.${n}}") (attrNames credentials);
    }
    // directories
    // hardeningFor root;
  service = serviceAs user;

  networkedTimer =
    onCalendar:
    {
      OnCalendar = onCalendar;
      Persistent = "true";
    }
    // optionalAttrs (randomizedDelaySec != "" && randomizedDelaySec != "0") {
      RandomizedDelaySec = randomizedDelaySec;
    };

  networked = description: {
    Description = description;
    After = [
      "zfs.target"
      "network-online.target"
    ];
    Wants = [ "network-online.target" ];
  };
in
optionalAttrs sends {
  zfs-snapshot = {
    unit = {
      Description = "zfsrep: take and prune ZFS snapshots";
      After = [ "zfs.target" ];
    };
    service = service "zfs-snapshot" "snapshot" snapshotPermissions [ ] null;
    timer = {
      OnCalendar = snapshotOnCalendar;
      Persistent = "true";
    };
  };
  zfs-replicate = {
    unit = {
      Description = "zfsrep: replicate ZFS snapshots to every target";
      After = [
        "zfs.target"
        "network-online.target"
      ];
      Wants = [ "network-online.target" ];
    };
    service = service "zfs-replicate" "replicate" replicatePermissions warmupTargets null;
    timer = networkedTimer replicateOnCalendar;
  };
}
// optionalAttrs (sends && verify) {
  zfs-verify = {
    unit = networked "zfsrep: verify the backups on every target";
    # verify needs no `zfs allow` permission: it only lists snapshots and reads files
    service = service "zfs-verify" "verify" [ ] warmupTargets (
      zfsrep "" [ "verify" ] (optional verifyDeep "--deep")
    );
    timer = networkedTimer verifyOnCalendar;
  };
}
// optionalAttrs (sends && scrubTargets != [ ]) {
  # Not "zfs-scrub": NixOS' services.zfs.autoScrub (local pools) already defines zfs-scrub.service.
  zfs-scrub-targets = {
    unit = networked "zfsrep: scrub the pools of the targets";
    # one ExecStart per target, in order; a failed scrub (errors found, unreachable) fails the unit
    service = service "zfs-scrub-targets" "scrub" [ ] (filter (t: elem t scrubTargets) warmupTargets) (
      map (t: zfsrep "" [ "scrub" ] [ "--target" t "--wait" ]) scrubTargets
    );
    timer = networkedTimer scrubOnCalendar;
  };
}
// optionalAttrs pruneReceived {
  zfs-prune-received = {
    unit = {
      Description = "zfsrep: prune the copies this target received, by its own retention";
      After = [ "zfs.target" ];
    };
    # local only (no teardown); the same sandbox as zfs-snapshot run as root
    service = serviceAs "root" "zfs-prune-received" "prune-received" [ ] [ ] null;
    timer = networkedTimer pruneReceivedOnCalendar;
  };
}
