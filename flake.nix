# A table of contents: each output lives in its own file.
{
  description = "zfsrep: ZFS snapshots, retention and safe incremental replication over SSH";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      eachSystem =
        f:
        lib.genAttrs systems (
          system:
          f {
            inherit system;
            pkgs = nixpkgs.legacyPackages.${system};
          }
        );
    in
    {
      packages = eachSystem (
        { pkgs, ... }:
        rec {
          zfsrep = pkgs.callPackage ./nix/package.nix { };
          default = zfsrep;
        }
      );

      apps = eachSystem (
        { system, ... }:
        {
          default = {
            type = "app";
            program = lib.getExe self.packages.${system}.default;
            meta.description = "The zfsrep command line";
          };
        }
      );

      overlays.default = final: _prev: { zfsrep = final.callPackage ./nix/package.nix { }; };

      nixosModules.default = ./nixos-modules;
      nixosModules.zfsrep = self.nixosModules.default;

      devShells = eachSystem ({ pkgs, ... }: { default = import ./nix/devshell.nix { inherit pkgs; }; });

      formatter = eachSystem ({ pkgs, ... }: pkgs.nixfmt);

      checks = eachSystem ({ pkgs, system }: import ./checks { inherit pkgs self system; });
    };
}
