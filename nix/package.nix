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
      zstd # a real compressor stage in tests/unit/test_pipeline.py
    ];

  # tests/unit needs only this fileset and these inputs (no nix, git or network):
  # tests/tooling/test_package_build_tests.py runs it that way in CI
  pytestFlagsArray = [ "tests/unit" ];

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
