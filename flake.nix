{
  description = "Shimmy: a local LLM inference server and CLI for GGUF models";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          # Node 20 runs the server and the tests; python3, make and a C++ compiler are only
          # needed if node-llama-cpp is ever built from source (never by default)
          packages = [ pkgs.nodejs_20 pkgs.python3 pkgs.gnumake pkgs.gcc pkgs.cmake pkgs.git ];
          shellHook = ''
            export SHIMMY_MODEL_PATHS=''${SHIMMY_MODEL_PATHS:-../shared/models}
          '';
        };
      });
    };
}
