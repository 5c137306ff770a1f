savedcmd_/work/main/kmod/Module.symvers :=  scripts/mod/modpost -M   -E     -o /work/main/kmod/Module.symvers -T /work/main/kmod/modules.order -i Module.symvers -e 
