# The end-to-end test under NixOS (pkgs.testers.runNixOSTest): a VM runs
# e2e/in-vm.sh, the script e2e/run.sh runs without Nix, in one of its modes:
#   builtin   the 6.12 kernel with vhost-console built in;
#   module    the system `programs.vhost-console.enable` makes (the module
#             loaded at boot, as `nix run .#vm` boots it): the test unloads it,
#             and in-vm.sh loads `moduleKo` and unloads it again, twice.
#
# The VMM runs guests on /dev/kvm inside the test VM. The NixOS test driver
# starts the VM as `qemu-kvm -cpu max` (nixos/lib/qemu-common.nix), which
# passes vmx/svm through only when the build host's kvm_intel/kvm_amd module
# has nested=1 (e.g. boot.extraModprobeConfig = "options kvm_intel nested=1").
# The test derivation requires the `kvm` and `nixos-test` system features.
{ kernel, vmm, guest, streamSha256, mode, moduleKo ? "", nixosModule ? null }:
{
  name = "vhost-console-e2e-${mode}";

  nodes.machine = { pkgs, lib, ... }: {
    imports = [ (import ./machine.nix { inherit guest; }) ] ++ lib.optional (nixosModule != null) nixosModule;
    boot.kernelPackages = pkgs.linuxKernel.packagesFor kernel;
  } // lib.optionalAttrs (nixosModule != null) {
    programs.vhost-console = { enable = true; package = vmm; };
  };

  testScript = ''
    import re

    machine.wait_for_unit("multi-user.target")

    with subtest("nested KVM"):
        status, _ = machine.execute("grep -qwE 'vmx|svm' /proc/cpuinfo")
        assert status == 0, (
            "no vmx/svm in the test VM: enable nested virtualization on the build host "
            "(options kvm_intel nested=1, or kvm_amd nested=1)"
        )
        machine.succeed("modprobe kvm_intel || modprobe kvm_amd")
        machine.succeed("test -c /dev/kvm")

    if "${mode}" == "module":
        with subtest("the NixOS module: loaded at boot, the device for the kvm group"):
            machine.succeed("test -c /dev/vhost-console -a -c /dev/vmm-console")
            owner = machine.succeed("stat -c %G:%a /dev/vhost-console").strip()
            assert owner == "kvm:660", f"/dev/vhost-console is {owner}, not kvm:660"
            machine.succeed("rmmod vhost_console")

    with subtest("e2e/in-vm.sh ${mode}"):
        # Only what the test makes the kernel say is judged: nixpkgs' full
        # configuration may warn at boot about things the test never touches.
        seen = int(machine.succeed("dmesg | wc -l").strip())
        status, output = machine.execute(
            "VMM=${vmm}/bin/vmm VHOST_ABI=${vmm}/bin/vhost-abi GUESTS=${guest} MODULE_KO=${moduleKo} "
            "STREAM_SHA256=$(cat ${streamSha256}) sh ${../e2e/in-vm.sh} ${mode} < /dev/null 2>&1"
        )
        print(output)
        assert status == 0, f"in-vm.sh exited {status}"
        assert re.search(r"^e2e: [0-9]+ passed, 0 failed$", output, re.M), "no clean e2e result line"

    with subtest("kernel log"):
        # The kernel's own report formats (BUG: ..., Oops: ..., WARNING: CPU: N PID: ...,
        # lockdep's "possible ... locking", list debugging's "list_add corruption",
        # hung tasks, RCU stalls), in the lines logged since in-vm.sh started.
        status, splats = machine.execute(
            f"dmesg | tail -n +{seen + 1} | grep -E 'BUG:|Oops|WARNING: CPU|Call Trace|general protection|KASAN|"
            "KFENCE|corruption|possible (recursive|circular) locking|INFO: task .* blocked|rcu.*stall|soft lockup'"
        )
        assert status != 0, f"the kernel log has a splat since in-vm.sh started:\n{splats}"
  '';
}
