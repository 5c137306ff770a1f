savedcmd_/work/main/kmod/modules.order := {   echo /work/main/kmod/vhost_console.o; :; } > /work/main/kmod/modules.order
