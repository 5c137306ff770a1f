savedcmd_/work/main/kmod/vhost_console.o := ld -m elf_x86_64 -z noexecstack --no-warn-rwx-segments   -r -o /work/main/kmod/vhost_console.o @/work/main/kmod/vhost_console.mod  ; ./tools/objtool/objtool --hacks=jump_label --hacks=noinstr --ibt --static-call --uaccess  --link  --module /work/main/kmod/vhost_console.o

/work/main/kmod/vhost_console.o: $(wildcard ./tools/objtool/objtool)
