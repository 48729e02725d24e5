# The systemd units of zfsrep as plain data: `zfs-snapshot` and `zfs-replicate`, each with a
# [Unit] part, a [Service] part and a [Timer] part. The NixOS module (./default.nix) turns this
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
  warmupTargets ? [ ],
  report ? false,
  datasets ? true,
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
    map
    match
    replaceStrings
    stringLength
    substring
    ;

  root = user == "root";
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

  # Sandboxing shared by both services. Root keeps only CAP_SYS_ADMIN (the zfs ioctls).
  hardening = {
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

  env =
    {
      TZ = "UTC";
    }
    // optionalAttrs (credentials ? "aws-credentials") {
      AWS_SHARED_CREDENTIALS_FILE = "%d/aws-credentials";
    }
    // environment;

  service =
    verb: permissions: warmups:
    let
      delegate = !root && datasets && permissions != [ ];
      perms = concatStringsSep "," permissions;
      # "+": runs with full privileges, outside the sandbox and the User= below.
      pre =
        optional delegate (zfsrep "+" [ "systemd" "allow" ] [ "--user" user "--permissions" perms ])
        # "-": one target's failed warmup must not stop the others; replicate reports that target.
        ++ map (t: zfsrep "-" [ "warmup" ] [ "--target" t ]) warmups;
      post =
        map (t: zfsrep "-" [ "teardown" ] [ "--target" t ]) warmups
        ++ optional report (zfsrep "-" [ "report-result" ] [ "--verb" verb ])
        ++ optional delegate (zfsrep "-+" [ "systemd" "unallow" ] [ "--user" user "--permissions" perms ]);
    in
    {
      Type = "oneshot";
      Environment = map (n: envAssignment n env.${n}) (attrNames env);
      ExecStart = zfsrep "" [ verb ] [ ];
    }
    // optionalAttrs (!root) {
      User = user;
      Group = group;
    }
    // optionalAttrs (pre != [ ]) { ExecStartPre = pre; }
    // optionalAttrs (post != [ ]) { ExecStopPost = post; }
    // optionalAttrs (credentials != { }) {
      LoadCredential = map (n: "${n}:${credentials.${n}}") (attrNames credentials);
    }
    // directories
    // hardening;
in
{
  zfs-snapshot = {
    unit = {
      Description = "zfsrep: take and prune ZFS snapshots";
      After = [ "zfs.target" ];
    };
    service = service "snapshot" snapshotPermissions [ ];
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
    service = service "replicate" replicatePermissions warmupTargets;
    timer = {
      OnCalendar = replicateOnCalendar;
      Persistent = "true";
    };
  };
}
