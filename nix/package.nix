# zfsrep as a Python application, its dependencies from nixpkgs; the unit test tier runs in the
# build (checkPhase). The zfs CLI is deliberately not wrapped in: it must match the running
# kernel module, so the NixOS module puts the booted system's zfs on the services' PATH.
{
  lib,
  python3Packages,
  openssh,
  zstd,
  lz4,
  mbuffer,
  pv,
  systemd,
}:
let
  project = (lib.importTOML ../pyproject.toml).project;
in
python3Packages.buildPythonApplication {
  pname = project.name;
  inherit (project) version;
  pyproject = true;

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../pyproject.toml
      ../README.md
      ../zfsrep
      ../tests/__init__.py
      ../tests/unit
      ../nixos-modules/units.nix
    ];
  };

  build-system = [ python3Packages.setuptools ];

  # pyproject caps typer below 0.29 for start-up time only (0.29 imports pydantic on every
  # start); whatever typer nixpkgs has works
  pythonRelaxDeps = [ "typer" ];

  dependencies = with python3Packages; [
    typer
    tomli-w
    sh
    boto3
    requests
  ];

  nativeCheckInputs =
    (with python3Packages; [
      pytestCheckHook
      hypothesis
      pytest-httpserver
      moto
    ])
    ++ (python3Packages.moto.optional-dependencies.server or [ ])
    ++ [
      openssh
      systemd # systemd-analyze verify of the rendered units
    ];

  pytestFlagsArray = [ "tests/unit" ];
  # these need a Nix store and daemon, which the build sandbox does not have
  disabledTestPaths = [
    "tests/unit/test_nix_parse.py"
    "tests/unit/test_systemd_units_parity.py"
  ];

  pythonImportsCheck = [
    "zfsrep"
    "zfsrep.cli"
  ];

  makeWrapperArgs = [
    "--prefix"
    "PATH"
    ":"
    (lib.makeBinPath [
      openssh
      zstd
      lz4
      mbuffer
      pv
    ])
  ];

  meta = {
    description = project.description;
    license = lib.licenses.mit;
    mainProgram = "zfsrep";
    platforms = lib.platforms.linux;
  };
}
