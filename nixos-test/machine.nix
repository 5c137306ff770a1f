# The machine both the NixOS test and the interactive VM (`nix run .#vm`)
# boot: two vCPUs with nested KVM, room for the stream tests, the guests
# under /etc/vmm/guests, and what e2e/in-vm.sh uses besides coreutils.
{ guest }:
{ pkgs, ... }:
{
  virtualisation.cores = 2;
  # The stream cases keep three 16 MiB outputs in /tmp.
  virtualisation.memorySize = 2048;
  environment.etc."vmm/guests".source = guest;
  environment.systemPackages = with pkgs; [ diffutils gawk gnused gnugrep util-linux ];
}
