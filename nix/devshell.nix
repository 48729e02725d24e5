# `nix develop`: Python with zfsrep's dependencies and test tools, plus the formatters CI uses.
{ pkgs }:
let
  zfsrep = pkgs.callPackage ./package.nix { };
  python = pkgs.python3.withPackages (
    ps:
    zfsrep.dependencies
    ++ (with ps; [
      pytest
      hypothesis
      pytest-httpserver
      moto
    ])
  );
in
pkgs.mkShell {
  packages = [
    python
    pkgs.ruff
    pkgs.nixfmt
    pkgs.openssh
    pkgs.zstd
    pkgs.lz4
    pkgs.mbuffer
  ];
  shellHook = ''
    export PYTHONPATH="$PWD''${PYTHONPATH:+:$PYTHONPATH}"
  '';
}
