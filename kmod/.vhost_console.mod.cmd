savedcmd_/work/main/kmod/vhost_console.mod := printf '%s\n'   vhost_console_main.o helpers.o | awk '!x[$$0]++ { print("/work/main/kmod/"$$0) }' > /work/main/kmod/vhost_console.mod
