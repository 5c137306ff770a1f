/work/main/kmod/vhost_console_main.o
/work/main/kmod/helpers.o
