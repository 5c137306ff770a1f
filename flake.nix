{
  description = "vmm: a small KVM hypervisor, its bare-metal guests and the vhost-console kernel module";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      inherit (pkgs) lib rustPlatform;

      # Cargo.toml's rust-version is the rustc of this pin (nixos-25.11 in
      # flake.lock: rust_1_91, pkgs/development/compilers/rust/1_91.nix), which
      # builds vmm and the guests. CI (.ci/rust-version.py) fails when a locked
      # crate declares a newer one; a pin whose rustc is older than rust-version
      # fails evaluation here.
      rustVersion = (lib.importTOML ./Cargo.toml).workspace.package.rust-version;
      withRustc = lib.throwIfNot (lib.versionAtLeast pkgs.rustc.version rustVersion)
        "nixpkgs' rustc ${pkgs.rustc.version} is older than the workspace's rust-version ${rustVersion} (Cargo.toml): pin a newer nixpkgs, or lower rust-version and re-lock Cargo.lock";

      # The Cargo workspace, without the kernel, docs and build leftovers.
      cargoSrc = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./Cargo.toml
          ./Cargo.lock
          ./rustfmt.toml
          ./.cargo
          ./guest
          ./vmm
          ./xtask
        ];
      };

      # kmod/ as kernel/build.sh copies it into drivers/vhost_console/: Kconfig,
      # Kbuild, *.rs, *.c, *.h (not the *.mod.c kbuild generates).
      kmodTreeFile = file:
        file.name == "Kconfig" || file.name == "Kbuild" || file.hasExt "rs" || file.hasExt "h"
        || (file.hasExt "c" && !file.hasExt "mod.c");
      kmodTreeSrc = lib.fileset.toSource {
        root = ./kmod;
        fileset = lib.fileset.fileFilter kmodTreeFile ./kmod;
      };
      # The same files plus kmod/Makefile, for the out-of-tree build.
      kmodSrc = lib.fileset.toSource {
        root = ./kmod;
        fileset = lib.fileset.fileFilter (file: kmodTreeFile file || file.name == "Makefile") ./kmod;
      };

      # -Zbuild-std needs the compiler's library source in its sysroot, as in
      # nixpkgs' pkgs/by-name/fa/famedly-vodozemac-web and fluffychat's vodozemac-wasm.
      rustSysroot = pkgs.symlinkJoin {
        name = "rustc-with-lib-src";
        paths = [ pkgs.rustc.unwrapped ];
        postBuild = ''
          mkdir -p $out/lib/rustlib/src/rust
          ln -s ${rustPlatform.rustLibSrc} $out/lib/rustlib/src/rust/library
        '';
      };
      rustcWithLibSrc = withRustc (pkgs.rustc.override { sysroot = rustSysroot; });

      # The workspace's crates plus those of the library's own Cargo.lock, which
      # rustPlatform.rustVendorSrc (the rustc source's vendor/) holds; a crate
      # in both is the workspace's. The name is the directory importCargoLock's
      # .cargo/config.toml points at (cargoSetupHook copies it there).
      workspaceVendor = rustPlatform.importCargoLock { lockFile = ./Cargo.lock; };
      guestCargoDeps = pkgs.runCommand "cargo-vendor-dir" { } ''
        mkdir $out
        for entry in ${workspaceVendor}/.cargo ${workspaceVendor}/* ${rustPlatform.rustVendorSrc}/*; do
          name=$(basename "$entry")
          if [ ! -e "$out/$name" ]; then ln -s "$entry" "$out/$name"; fi
        done
      '';

      # Rust 1.95 names the soft-float ABI "softfloat" (as guest/i686-unknown-none.json
      # does) and cargo 1.95 has -Zjson-target-spec; nixos-25.11 has rustc 1.91,
      # which knows the ABI as "x86-softfloat". For such a compiler the spec is
      # passed with that one value changed.
      newRust = lib.versionAtLeast pkgs.rustc.version "1.95";
      i686Spec =
        if newRust then
          "$PWD/guest/i686-unknown-none.json"
        else
          "${pkgs.writeTextDir "i686-unknown-none.json" (builtins.toJSON (
            lib.importJSON ./guest/i686-unknown-none.json // { "rustc-abi" = "x86-softfloat"; }
          ))}/i686-unknown-none.json";

      # xtask/src/main.rs build_guests(), with GNU ld named by its store path.
      guest = pkgs.stdenv.mkDerivation {
        pname = "vmm-guests";
        version = (lib.importTOML ./guest/Cargo.toml).package.version;
        src = cargoSrc;
        cargoDeps = guestCargoDeps;
        nativeBuildInputs = [
          rustPlatform.cargoSetupHook
          pkgs.cargo
          rustcWithLibSrc
          pkgs.writableTmpDirAsHomeHook
        ];
        env.RUSTC_BOOTSTRAP = "1";
        buildPhase = ''
          runHook preBuild
          # The --remap-path-prefix flags keep store paths of the library
          # source out of the ELFs (and so out of the vmm that embeds one).
          rustflags="-C linker=${pkgs.binutils-unwrapped}/bin/ld -C linker-flavor=ld \
            -C relocation-model=static -C link-arg=-T$PWD/guest/linker.ld \
            -C link-arg=--build-id=none -C link-arg=-znoexecstack \
            --remap-path-prefix=${rustSysroot}=/rustc \
            --remap-path-prefix=${rustPlatform.rustLibSrc}=/rustc/lib/rustlib/src/rust/library"
          build_std="-Zbuild-std=core,compiler_builtins -Zbuild-std-features=compiler-builtins-mem"
          RUSTFLAGS="$rustflags -C link-arg=-melf_i386" cargo build --offline --release -p guest \
            --target ${i686Spec} $build_std ${lib.optionalString newRust "-Zjson-target-spec"} \
            --target-dir target/guest --bin hello --bin stream --bin hostile --bin echo --bin disk --bin hostile-disk --bin ports --bin hostile-ports
          RUSTFLAGS="$rustflags" cargo build --offline --release -p guest \
            --target x86_64-unknown-none $build_std \
            --target-dir target/guest --bin hello
          runHook postBuild
        '';
        installPhase = ''
          runHook preInstall
          for bin in hello stream hostile echo disk hostile-disk ports hostile-ports; do
            install -Dm444 target/guest/i686-unknown-none/release/$bin $out/$bin.elf
          done
          install -Dm444 target/guest/x86_64-unknown-none/release/hello $out/hello64.elf
          runHook postInstall
        '';
        # Bare-metal ELFs: nothing to strip or patch.
        dontFixup = true;
      };

      vmm = withRustc (rustPlatform.buildRustPackage {
        pname = "vmm";
        version = (lib.importTOML ./vmm/Cargo.toml).package.version;
        src = cargoSrc;
        cargoLock.lockFile = ./Cargo.lock;
        cargoBuildFlags = [ "-p" "vmm" "--bin" "vmm" "--example" "vhost_abi" ];
        # vmm/build.rs embeds this guest; `vmm` runs it when given no --guest.
        env.VMM_GUEST_ELF = "${guest}/hello.elf";
        # The tests (vmm/tests/) boot guests on /dev/kvm, which the build
        # sandbox does not have; the NixOS test runs the binaries under KVM.
        doCheck = false;
        # $releaseDir is set by cargoInstallPostBuildHook.
        postInstall = ''
          install -Dm755 "$releaseDir/examples/vhost_abi" $out/bin/vhost-abi
        '';
        meta = {
          description = "A small KVM hypervisor with a virtio-mmio console (and vhost-abi, its vhost ABI checks)";
          mainProgram = "vmm";
        };
      });

      # A lint over the workspace with its vendored crates, as `cargo xtask test` runs it.
      cargoLint = name: tools: command:
        pkgs.stdenv.mkDerivation {
          name = "vmm-${name}";
          src = cargoSrc;
          cargoDeps = workspaceVendor;
          nativeBuildInputs = [
            rustPlatform.cargoSetupHook
            pkgs.cargo
            pkgs.rustc
            pkgs.writableTmpDirAsHomeHook
          ] ++ tools;
          env.VMM_GUEST_ELF = "${guest}/hello.elf";
          buildPhase = ''
            runHook preBuild
            ${command}
            runHook postBuild
          '';
          installPhase = "touch $out";
        };

      # kmod/ uses KBox, KVec and KVVec (rust/kernel/alloc/), kernel::ffi
      # (rust/ffi.rs, with `long` as isize and `char` as u8) and the rest of the
      # Rust API of Linux 6.13, which 6.12.y got in 6.12.19: its stable review
      # (6.12.19-rc1, 10 March 2025) took the 6.13 allocator series ("rust: alloc:
      # add `Allocator` trait" to "rust: alloc: implement kernel `Vec` type") and
      # "rust: use custom FFI integer types"; Debian's 6.12.118 has the same
      # files. This pin (2025-11-30) is months past 6.12.19, and nixpkgs follows
      # 6.12.y within days of each release; a nixpkgs whose linux_6_12 is older
      # (the NixOS module takes its user's) fails evaluation here.
      linux612For = p:
        let linux = p.linuxKernel.kernels.linux_6_12; in
        p.lib.throwIfNot (p.lib.versionAtLeast linux.version "6.12.19")
          "vhost-console needs Linux 6.12.19 or later (KBox, KVVec, kernel::ffi), nixpkgs' linux_6_12 is ${linux.version}"
          linux;

      # Linux 6.12 as nixpkgs configures it, plus kernel/patches/*.patch, kmod/
      # at drivers/vhost_console/ and what the module and the test need (the
      # rest of kernel/config.fragment is tinyconfig's minimum, which the
      # nixpkgs configuration already has). The NixOS test's kernel: the
      # module is built in.
      kernelPatchFiles = lib.filter (lib.hasSuffix ".patch") (lib.attrNames (builtins.readDir ./kernel/patches));
      kernelPatch = name: { name = lib.removeSuffix ".patch" name; patch = ./kernel/patches + "/${name}"; };
      vhostConsoleTreePatch = pkgs.runCommand "vhost-console-tree.patch" { } ''
        mkdir -p a b/drivers/vhost_console
        cp ${kmodTreeSrc}/* b/drivers/vhost_console/
        (diff -Nru a b || test $? = 1) > $out
      '';
      kernel =
        let linux = linux612For pkgs; in
        linux.override {
          kernelPatches = linux.kernelPatches
            ++ map kernelPatch kernelPatchFiles
            ++ [{ name = "vhost-console-tree"; patch = vhostConsoleTreePatch; }];
          structuredExtraConfig = with lib.kernel; {
            RUST = yes;
            # Default y; the module depends on it.
            EVENTFD = option yes;
            # Modules, as nixpkgs builds them; udev loads the one the CPU needs.
            KVM = module;
            KVM_INTEL = module;
            KVM_AMD = module;
            # Catches sleeping in atomic context (the worker once did).
            DEBUG_ATOMIC_SLEEP = yes;
            # Selects VHOST_TASK.
            VHOST_CONSOLE = yes;
          };
        };

      # A kernel that can load vhost_console.ko, from any nixpkgs (the NixOS
      # module's, or ours): nixpkgs' 6.12 with the bindings patch (0001: the
      # headers the module's Rust bindings need) and Rust. KVM selects
      # VHOST_TASK on x86, and nixpkgs builds KVM.
      hostKernelFor = p:
        let linux = linux612For p; in
        linux.override {
          kernelPatches = linux.kernelPatches
            ++ [ (kernelPatch "0001-rust-bindings-headers-for-vhost-console.patch") ];
          structuredExtraConfig = with p.lib.kernel; {
            RUST = yes;
            EVENTFD = option yes;
          };
        };
      hostKernel = hostKernelFor pkgs;

      # kmod/ built out of tree, as nixpkgs' rust-out-of-tree-module is, for
      # the kernel of `kernelPackages` (a host kernel: without the module).
      kmodFor = kernelPackages:
        let k = kernelPackages.kernel; in
        k.stdenv.mkDerivation {
          pname = "vhost-console";
          inherit (k) version;
          src = kmodSrc;
          nativeBuildInputs = k.moduleBuildDependencies;
          makeFlags = kernelPackages.kernelModuleMakeFlags ++ [
            "KDIR=${k.dev}/lib/modules/${k.modDirVersion}/build"
          ];
          installPhase = ''
            runHook preInstall
            install -Dm444 vhost_console.ko $out/lib/modules/${k.modDirVersion}/extra/vhost_console.ko
            runHook postInstall
          '';
          meta.broken = !k.withRust;
        };
      kmod = kmodFor (pkgs.linuxKernel.packagesFor hostKernel);

      # What in-vm.sh compares the stream guest's output with (e2e/run.sh computes it the same way).
      streamSha256 = pkgs.runCommand "stream-sha256" { nativeBuildInputs = [ pkgs.python3 ]; } ''
        python3 -c 'import hashlib; n = 64 << 20; p = bytes(range(251)) * (n // 251 + 1); print(hashlib.sha256(p[:n]).hexdigest())' > $out
      '';
    in
    {
      packages.${system} = {
        inherit guest vmm kernel hostKernel kmod;
        # The interactive VM: `nix run .#vm`.
        vm = self.nixosConfigurations.vm.config.system.build.vm;
        default = vmm;
      };

      # `programs.vhost-console.enable = true;`: a 6.12 kernel that can load
      # the module, the module loaded at boot, /dev/vhost-console for the kvm
      # group (as distributions give /dev/vhost-net), and vmm on the PATH.
      nixosModules.default = { config, lib, pkgs, ... }:
        let cfg = config.programs.vhost-console; in
        {
          options.programs.vhost-console = {
            enable = lib.mkEnableOption "vhost-console (/dev/vhost-console, /dev/vmm-console) and vmm";
            package = lib.mkOption {
              type = lib.types.package;
              default = self.packages.${pkgs.stdenv.hostPlatform.system}.vmm;
              defaultText = lib.literalExpression "vmm from the vhost-console flake";
              description = "The vmm to put on the PATH.";
            };
          };
          config = lib.mkIf cfg.enable {
            # Any kernel with kernel/patches/0001 and Rust will do; this one is
            # nixpkgs' 6.12 with both.
            boot.kernelPackages = lib.mkDefault (pkgs.linuxKernel.packagesFor (hostKernelFor pkgs));
            boot.extraModulePackages = [ (kmodFor config.boot.kernelPackages) ];
            boot.kernelModules = [ "vhost_console" ];
            users.groups.kvm = { };
            services.udev.extraRules = ''
              KERNEL=="vhost-console", GROUP="kvm", MODE="0660"
              KERNEL=="vhost-blk", GROUP="kvm", MODE="0660"
            '';
            environment.systemPackages = [ cfg.package ];
          };
        };

      # The VM `nix run .#vm` boots: the NixOS test's machine (nixos-test/machine.nix)
      # with the module, a root login and a message saying what to type.
      nixosConfigurations.vm = nixpkgs.lib.nixosSystem {
        inherit system;
        modules = [
          "${nixpkgs}/nixos/modules/virtualisation/qemu-vm.nix"
          self.nixosModules.default
          (import ./nixos-test/machine.nix { inherit guest; })
          ./nixos-test/interactive.nix
        ];
      };

      apps.${system} = rec {
        vmm = {
          type = "app";
          program = lib.getExe self.packages.${system}.vmm;
          meta.description = "Run the vmm (with no --guest: the embedded hello guest)";
        };
        vm = {
          type = "app";
          program = "${self.packages.${system}.vm}/bin/run-vhost-console-vm";
          meta.description = "Boot a NixOS VM with vhost-console and vmm (nested KVM)";
        };
        default = vmm;
      };

      checks.${system} = {
        inherit guest vmm kernel hostKernel kmod;
        clippy = cargoLint "clippy" [ pkgs.clippy ] "cargo clippy --offline --all-targets -- -D warnings";
        rustfmt = cargoLint "rustfmt" [ pkgs.rustfmt ] "cargo fmt --all -- --check";
        nixpkgs-fmt = pkgs.runCommand "nixpkgs-fmt-check" { nativeBuildInputs = [ pkgs.nixpkgs-fmt ]; } ''
          nixpkgs-fmt --check ${./flake.nix} ${./nixos-test}
          touch $out
        '';
        # Needs the `kvm` and `nixos-test` system features, and nested
        # virtualization on the builder (see nixos-test/default.nix).
        # e2e/in-vm.sh in both of its kernel modes, as CI runs it.
        nixos-test = pkgs.testers.runNixOSTest (import ./nixos-test {
          inherit vmm guest streamSha256 kernel;
          mode = "builtin";
        });
        nixos-test-module = pkgs.testers.runNixOSTest (import ./nixos-test {
          inherit vmm guest streamSha256;
          kernel = hostKernel;
          mode = "module";
          # What the NixOS module loads at boot: kmodFor gives the same derivation.
          moduleKo = "${kmod}/lib/modules/${hostKernel.modDirVersion}/extra/vhost_console.ko";
          nixosModule = self.nixosModules.default;
        });
      };

      devShells.${system}.default = pkgs.mkShell ({
        # The kernel's build inputs: make, bc, flex, bison, perl, elfutils, openssl, rustc, bindgen...
        inputsFrom = [ kernel ];
        packages = [
          rustcWithLibSrc
          pkgs.cargo
          pkgs.clippy
          pkgs.rustfmt
          pkgs.rust-bindgen
          pkgs.llvmPackages.libclang
          pkgs.qemu_kvm
          pkgs.python3
          pkgs.nixpkgs-fmt
        ];
        RUST_SRC_PATH = "${rustPlatform.rustLibSrc}";
        # What the kernel's Rust build reads (manual-config.nix sets the same).
        RUST_LIB_SRC = "${rustPlatform.rustLibSrc}";
        LIBCLANG_PATH = "${pkgs.llvmPackages.libclang.lib}/lib";
      } // lib.optionalAttrs newRust {
        # `cargo xtask guest` with this toolchain (older ones lack what
        # guest/i686-unknown-none.json and xtask ask for: use .#guest).
        GUEST_CARGO = "${pkgs.cargo}/bin/cargo";
        GUEST_RUSTC = "${rustcWithLibSrc}/bin/rustc";
      });

      formatter.${system} = pkgs.nixpkgs-fmt;
    };
}
