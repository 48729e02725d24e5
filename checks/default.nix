# checks.<system>: the package (its build runs the unit tests) and every VM test in this folder
# (vm-*.nix), each a two-node NixOS test with real OpenZFS and real systemd units.
{
  pkgs,
  self,
  system,
}:
let
  inherit (pkgs) lib;
  runTest = import ./lib.nix { inherit pkgs self; };
  vmTests = lib.filterAttrs (file: kind: kind == "regular" && lib.hasPrefix "vm-" file && lib.hasSuffix ".nix" file) (
    builtins.readDir ./.
  );
in
{
  package = self.packages.${system}.default;
}
// lib.mapAttrs' (file: _: lib.nameValuePair (lib.removeSuffix ".nix" file) (runTest ./${file})) vmTests
