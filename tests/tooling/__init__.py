"""Tests of the project's tooling (Nix files, lab, bench), not of the zfsrep package: they need
what only a checkout and CI have (nix-instantiate, bench/, tests/integration/), so they are not
part of the package's fileset and do not run in its Nix build."""
