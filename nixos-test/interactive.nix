# The interactive VM (`nix run .#vm`): vhost-console through the NixOS
# module, root logged in on the console, and a message saying what to type.
{ ... }:
{
  networking.hostName = "vhost-console";
  programs.vhost-console.enable = true;
  services.getty.autologinUser = "root";
  users.motd = ''

    vhost-console demo: vmm with its VirtIO console, in userspace or in the kernel.

      vmm                                   the hello guest (virtio console in userspace)
      vmm --vhost                           the same, queues in the vhost_console module
      vmm --vhost --console-out /dev/vmm-console; cat /dev/vmm-console
      vmm --vhost --stats --guest /etc/vmm/guests/stream.elf --cmdline bytes=64M > /dev/null
      vmm --guest /etc/vmm/guests/hostile.elf --cmdline case=desc-loop

    Leave with `poweroff`.
  '';
  system.stateVersion = "25.11";
}
