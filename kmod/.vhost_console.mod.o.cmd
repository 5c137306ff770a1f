savedcmd_/work/main/kmod/vhost_console.mod.o := gcc -Wp,-MMD,/work/main/kmod/.vhost_console.mod.o.d -nostdinc -I/work/main/build/linux-6.12/arch/x86/include -I./arch/x86/include/generated -I/work/main/build/linux-6.12/include -I./include -I/work/main/build/linux-6.12/arch/x86/include/uapi -I./arch/x86/include/generated/uapi -I/work/main/build/linux-6.12/include/uapi -I./include/generated/uapi -include /work/main/build/linux-6.12/include/linux/compiler-version.h -include /work/main/build/linux-6.12/include/linux/kconfig.h -include /work/main/build/linux-6.12/include/linux/compiler_types.h -D__KERNEL__ -fmacro-prefix-map=/work/main/build/linux-6.12/= -std=gnu11 -fshort-wchar -funsigned-char -fno-common -fno-PIE -fno-strict-aliasing -mno-sse -mno-mmx -mno-sse2 -mno-3dnow -mno-avx -fcf-protection=branch -fno-jump-tables -m64 -falign-jumps=1 -falign-loops=1 -mno-80387 -mno-fp-ret-in-387 -mpreferred-stack-boundary=3 -mskip-rax-setup -mtune=generic -mno-red-zone -mcmodel=kernel -Wno-sign-compare -fno-asynchronous-unwind-tables -fno-delete-null-pointer-checks -Os -fno-allow-store-data-races -fno-stack-protector -fomit-frame-pointer -ftrivial-auto-var-init=zero -fno-stack-clash-protection -falign-functions=16 -fno-strict-overflow -fno-stack-check -fconserve-stack -fno-builtin-wcslen -fno-builtin-wcslen -Wall -Wextra -Wundef -Werror=implicit-function-declaration -Werror=implicit-int -Werror=return-type -Werror=strict-prototypes -Wno-format-security -Wno-trigraphs -Wno-frame-address -Wno-address-of-packed-member -Wmissing-declarations -Wmissing-prototypes -Wframe-larger-than=1024 -Wno-main -Wno-dangling-pointer -Wvla -Wno-pointer-sign -Wcast-function-type -Wno-array-bounds -Wno-stringop-overflow -Wno-alloc-size-larger-than -Wimplicit-fallthrough=5 -Werror=date-time -Werror=incompatible-pointer-types -Werror=designated-init -Wenum-conversion -Wunused -Wno-unused-but-set-variable -Wno-unused-const-variable -Wno-packed-not-aligned -Wno-format-overflow -Wno-format-truncation -Wno-stringop-truncation -Wno-override-init -Wno-missing-field-initializers -Wno-type-limits -Wno-shift-negative-value -Wno-maybe-uninitialized -Wno-sign-compare -Wno-unused-parameter -DMODULE -DKBUILD_BASENAME='"vhost_console.mod"' -DKBUILD_MODNAME='"vhost_console"' -D__KBUILD_MODNAME=kmod_vhost_console -c -o /work/main/kmod/vhost_console.mod.o /work/main/kmod/vhost_console.mod.c

source_/work/main/kmod/vhost_console.mod.o := /work/main/kmod/vhost_console.mod.c

deps_/work/main/kmod/vhost_console.mod.o := \
    $(wildcard include/config/MODULE_UNLOAD) \
  /work/main/build/linux-6.12/include/linux/compiler-version.h \
    $(wildcard include/config/CC_VERSION_TEXT) \
  /work/main/build/linux-6.12/include/linux/kconfig.h \
    $(wildcard include/config/CPU_BIG_ENDIAN) \
    $(wildcard include/config/BOOGER) \
    $(wildcard include/config/FOO) \
  /work/main/build/linux-6.12/include/linux/compiler_types.h \
    $(wildcard include/config/DEBUG_INFO_BTF) \
    $(wildcard include/config/PAHOLE_HAS_BTF_TAG) \
    $(wildcard include/config/FUNCTION_ALIGNMENT) \
    $(wildcard include/config/CC_HAS_SANE_FUNCTION_ALIGNMENT) \
    $(wildcard include/config/X86_64) \
    $(wildcard include/config/ARM64) \
    $(wildcard include/config/LD_DEAD_CODE_DATA_ELIMINATION) \
    $(wildcard include/config/LTO_CLANG) \
    $(wildcard include/config/HAVE_ARCH_COMPILER_H) \
    $(wildcard include/config/KCSAN) \
    $(wildcard include/config/CC_HAS_COUNTED_BY) \
    $(wildcard include/config/UBSAN_SIGNED_WRAP) \
    $(wildcard include/config/CC_HAS_ASM_INLINE) \
  /work/main/build/linux-6.12/include/linux/compiler-context-analysis.h \
  /work/main/build/linux-6.12/include/linux/compiler_attributes.h \
  /work/main/build/linux-6.12/include/linux/compiler-gcc.h \
    $(wildcard include/config/MITIGATION_RETPOLINE) \
    $(wildcard include/config/ARCH_USE_BUILTIN_BSWAP) \
    $(wildcard include/config/SHADOW_CALL_STACK) \
    $(wildcard include/config/KCOV) \
  /work/main/build/linux-6.12/include/linux/module.h \
    $(wildcard include/config/MODULES) \
    $(wildcard include/config/SYSFS) \
    $(wildcard include/config/MODULES_TREE_LOOKUP) \
    $(wildcard include/config/LIVEPATCH) \
    $(wildcard include/config/STACKTRACE_BUILD_ID) \
    $(wildcard include/config/ARCH_USES_CFI_TRAPS) \
    $(wildcard include/config/MODULE_SIG) \
    $(wildcard include/config/GENERIC_BUG) \
    $(wildcard include/config/KALLSYMS) \
    $(wildcard include/config/SMP) \
    $(wildcard include/config/TRACEPOINTS) \
    $(wildcard include/config/TREE_SRCU) \
    $(wildcard include/config/BPF_EVENTS) \
    $(wildcard include/config/DEBUG_INFO_BTF_MODULES) \
    $(wildcard include/config/JUMP_LABEL) \
    $(wildcard include/config/TRACING) \
    $(wildcard include/config/EVENT_TRACING) \
    $(wildcard include/config/FTRACE_MCOUNT_RECORD) \
    $(wildcard include/config/KPROBES) \
    $(wildcard include/config/HAVE_STATIC_CALL_INLINE) \
    $(wildcard include/config/KUNIT) \
    $(wildcard include/config/PRINTK_INDEX) \
    $(wildcard include/config/MITIGATION_ITS) \
    $(wildcard include/config/CONSTRUCTORS) \
    $(wildcard include/config/FUNCTION_ERROR_INJECTION) \
    $(wildcard include/config/DYNAMIC_DEBUG_CORE) \
  /work/main/build/linux-6.12/include/linux/list.h \
    $(wildcard include/config/LIST_HARDENED) \
    $(wildcard include/config/DEBUG_LIST) \
  /work/main/build/linux-6.12/include/linux/container_of.h \
  /work/main/build/linux-6.12/include/linux/build_bug.h \
  /work/main/build/linux-6.12/include/linux/compiler.h \
    $(wildcard include/config/TRACE_BRANCH_PROFILING) \
    $(wildcard include/config/PROFILE_ALL_BRANCHES) \
    $(wildcard include/config/OBJTOOL) \
    $(wildcard include/config/64BIT) \
  arch/x86/include/generated/asm/rwonce.h \
  /work/main/build/linux-6.12/include/asm-generic/rwonce.h \
  /work/main/build/linux-6.12/include/linux/kasan-checks.h \
    $(wildcard include/config/KASAN_GENERIC) \
    $(wildcard include/config/KASAN_SW_TAGS) \
  /work/main/build/linux-6.12/include/linux/types.h \
    $(wildcard include/config/HAVE_UID16) \
    $(wildcard include/config/UID16) \
    $(wildcard include/config/ARCH_DMA_ADDR_T_64BIT) \
    $(wildcard include/config/PHYS_ADDR_T_64BIT) \
    $(wildcard include/config/ARCH_32BIT_USTAT_F_TINODE) \
  /work/main/build/linux-6.12/include/uapi/linux/types.h \
  arch/x86/include/generated/uapi/asm/types.h \
  /work/main/build/linux-6.12/include/uapi/asm-generic/types.h \
  /work/main/build/linux-6.12/include/asm-generic/int-ll64.h \
  /work/main/build/linux-6.12/include/uapi/asm-generic/int-ll64.h \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/bitsperlong.h \
  /work/main/build/linux-6.12/include/asm-generic/bitsperlong.h \
  /work/main/build/linux-6.12/include/uapi/asm-generic/bitsperlong.h \
  /work/main/build/linux-6.12/include/uapi/linux/posix_types.h \
  /work/main/build/linux-6.12/include/linux/stddef.h \
  /work/main/build/linux-6.12/include/uapi/linux/stddef.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/posix_types.h \
    $(wildcard include/config/X86_32) \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/posix_types_64.h \
  /work/main/build/linux-6.12/include/uapi/asm-generic/posix_types.h \
  /work/main/build/linux-6.12/include/linux/kcsan-checks.h \
    $(wildcard include/config/KCSAN_WEAK_MEMORY) \
    $(wildcard include/config/KCSAN_IGNORE_ATOMICS) \
  /work/main/build/linux-6.12/include/linux/poison.h \
    $(wildcard include/config/ILLEGAL_POINTER_VALUE) \
  /work/main/build/linux-6.12/include/linux/const.h \
  /work/main/build/linux-6.12/include/vdso/const.h \
  /work/main/build/linux-6.12/include/uapi/linux/const.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/barrier.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/alternative.h \
    $(wildcard include/config/CALL_THUNKS) \
    $(wildcard include/config/MITIGATION_RETHUNK) \
  /work/main/build/linux-6.12/include/linux/stringify.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/asm.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/extable_fixup_types.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/bug.h \
    $(wildcard include/config/DEBUG_BUGVERBOSE) \
  /work/main/build/linux-6.12/include/linux/instrumentation.h \
    $(wildcard include/config/NOINSTR_VALIDATION) \
  /work/main/build/linux-6.12/include/linux/objtool.h \
    $(wildcard include/config/FRAME_POINTER) \
    $(wildcard include/config/MITIGATION_UNRET_ENTRY) \
    $(wildcard include/config/MITIGATION_SRSO) \
  /work/main/build/linux-6.12/include/linux/objtool_types.h \
  /work/main/build/linux-6.12/include/asm-generic/bug.h \
    $(wildcard include/config/BUG) \
    $(wildcard include/config/GENERIC_BUG_RELATIVE_POINTERS) \
  /work/main/build/linux-6.12/include/linux/once_lite.h \
  /work/main/build/linux-6.12/include/linux/panic.h \
    $(wildcard include/config/PANIC_TIMEOUT) \
  /work/main/build/linux-6.12/include/linux/printk.h \
    $(wildcard include/config/MESSAGE_LOGLEVEL_DEFAULT) \
    $(wildcard include/config/CONSOLE_LOGLEVEL_DEFAULT) \
    $(wildcard include/config/CONSOLE_LOGLEVEL_QUIET) \
    $(wildcard include/config/EARLY_PRINTK) \
    $(wildcard include/config/PRINTK) \
    $(wildcard include/config/DYNAMIC_DEBUG) \
  /work/main/build/linux-6.12/include/linux/stdarg.h \
  /work/main/build/linux-6.12/include/linux/init.h \
    $(wildcard include/config/MEMORY_HOTPLUG) \
    $(wildcard include/config/HAVE_ARCH_PREL32_RELOCATIONS) \
  /work/main/build/linux-6.12/include/linux/kern_levels.h \
  /work/main/build/linux-6.12/include/linux/linkage.h \
    $(wildcard include/config/ARCH_USE_SYM_ANNOTATIONS) \
  /work/main/build/linux-6.12/include/linux/export.h \
    $(wildcard include/config/MODVERSIONS) \
  /work/main/build/linux-6.12/arch/x86/include/asm/linkage.h \
    $(wildcard include/config/CALL_PADDING) \
    $(wildcard include/config/MITIGATION_SLS) \
    $(wildcard include/config/FUNCTION_PADDING_BYTES) \
    $(wildcard include/config/UML) \
  /work/main/build/linux-6.12/arch/x86/include/asm/ibt.h \
    $(wildcard include/config/X86_KERNEL_IBT) \
  /work/main/build/linux-6.12/include/linux/ratelimit_types.h \
  /work/main/build/linux-6.12/include/linux/bits.h \
  /work/main/build/linux-6.12/include/vdso/bits.h \
  /work/main/build/linux-6.12/include/uapi/linux/bits.h \
  /work/main/build/linux-6.12/include/linux/overflow.h \
  /work/main/build/linux-6.12/include/linux/limits.h \
  /work/main/build/linux-6.12/include/uapi/linux/limits.h \
  /work/main/build/linux-6.12/include/vdso/limits.h \
  /work/main/build/linux-6.12/include/uapi/linux/param.h \
  arch/x86/include/generated/uapi/asm/param.h \
  /work/main/build/linux-6.12/include/asm-generic/param.h \
    $(wildcard include/config/HZ) \
  /work/main/build/linux-6.12/include/uapi/asm-generic/param.h \
  /work/main/build/linux-6.12/include/linux/spinlock_types_raw.h \
    $(wildcard include/config/DEBUG_SPINLOCK) \
    $(wildcard include/config/DEBUG_LOCK_ALLOC) \
  /work/main/build/linux-6.12/arch/x86/include/asm/spinlock_types.h \
  /work/main/build/linux-6.12/include/asm-generic/qspinlock_types.h \
    $(wildcard include/config/NR_CPUS) \
  /work/main/build/linux-6.12/include/asm-generic/qrwlock_types.h \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/byteorder.h \
  /work/main/build/linux-6.12/include/linux/byteorder/little_endian.h \
  /work/main/build/linux-6.12/include/uapi/linux/byteorder/little_endian.h \
  /work/main/build/linux-6.12/include/linux/swab.h \
  /work/main/build/linux-6.12/include/uapi/linux/swab.h \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/swab.h \
  /work/main/build/linux-6.12/include/linux/byteorder/generic.h \
  /work/main/build/linux-6.12/include/linux/lockdep_types.h \
    $(wildcard include/config/PROVE_RAW_LOCK_NESTING) \
    $(wildcard include/config/LOCKDEP) \
    $(wildcard include/config/LOCK_STAT) \
  /work/main/build/linux-6.12/arch/x86/include/asm/nops.h \
  /work/main/build/linux-6.12/include/asm-generic/barrier.h \
  /work/main/build/linux-6.12/include/linux/stat.h \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/stat.h \
  /work/main/build/linux-6.12/include/uapi/linux/stat.h \
  /work/main/build/linux-6.12/include/linux/time.h \
    $(wildcard include/config/POSIX_TIMERS) \
  /work/main/build/linux-6.12/include/linux/cache.h \
    $(wildcard include/config/ARCH_HAS_CACHE_LINE_SIZE) \
  /work/main/build/linux-6.12/include/uapi/linux/kernel.h \
  /work/main/build/linux-6.12/include/uapi/linux/sysinfo.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/cache.h \
    $(wildcard include/config/X86_L1_CACHE_SHIFT) \
    $(wildcard include/config/X86_INTERNODE_CACHE_SHIFT) \
    $(wildcard include/config/X86_VSMP) \
  /work/main/build/linux-6.12/include/linux/math64.h \
    $(wildcard include/config/ARCH_SUPPORTS_INT128) \
  /work/main/build/linux-6.12/include/linux/math.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/div64.h \
  /work/main/build/linux-6.12/include/asm-generic/div64.h \
  /work/main/build/linux-6.12/include/vdso/math64.h \
  /work/main/build/linux-6.12/include/linux/time64.h \
  /work/main/build/linux-6.12/include/vdso/time64.h \
  /work/main/build/linux-6.12/include/uapi/linux/time.h \
  /work/main/build/linux-6.12/include/uapi/linux/time_types.h \
  /work/main/build/linux-6.12/include/linux/time32.h \
  /work/main/build/linux-6.12/include/linux/timex.h \
  /work/main/build/linux-6.12/include/uapi/linux/timex.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/timex.h \
    $(wildcard include/config/X86_TSC) \
  /work/main/build/linux-6.12/arch/x86/include/asm/processor.h \
    $(wildcard include/config/X86_VMX_FEATURE_NAMES) \
    $(wildcard include/config/X86_IOPL_IOPERM) \
    $(wildcard include/config/STACKPROTECTOR) \
    $(wildcard include/config/VM86) \
    $(wildcard include/config/X86_USER_SHADOW_STACK) \
    $(wildcard include/config/USE_X86_SEG_SUPPORT) \
    $(wildcard include/config/PARAVIRT_XXL) \
    $(wildcard include/config/CPU_SUP_AMD) \
    $(wildcard include/config/XEN) \
  /work/main/build/linux-6.12/arch/x86/include/asm/processor-flags.h \
    $(wildcard include/config/MITIGATION_PAGE_TABLE_ISOLATION) \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/processor-flags.h \
  /work/main/build/linux-6.12/include/linux/mem_encrypt.h \
    $(wildcard include/config/ARCH_HAS_MEM_ENCRYPT) \
    $(wildcard include/config/AMD_MEM_ENCRYPT) \
  /work/main/build/linux-6.12/arch/x86/include/asm/mem_encrypt.h \
    $(wildcard include/config/X86_MEM_ENCRYPT) \
  /work/main/build/linux-6.12/include/linux/cc_platform.h \
    $(wildcard include/config/ARCH_HAS_CC_PLATFORM) \
  /work/main/build/linux-6.12/arch/x86/include/asm/math_emu.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/ptrace.h \
    $(wildcard include/config/PARAVIRT) \
    $(wildcard include/config/IA32_EMULATION) \
    $(wildcard include/config/X86_DEBUGCTLMSR) \
  /work/main/build/linux-6.12/arch/x86/include/asm/segment.h \
    $(wildcard include/config/XEN_PV) \
  /work/main/build/linux-6.12/arch/x86/include/asm/page_types.h \
    $(wildcard include/config/PAGE_SHIFT) \
    $(wildcard include/config/PHYSICAL_START) \
    $(wildcard include/config/PHYSICAL_ALIGN) \
    $(wildcard include/config/DYNAMIC_PHYSICAL_MASK) \
  /work/main/build/linux-6.12/arch/x86/include/asm/page_64_types.h \
    $(wildcard include/config/KASAN) \
    $(wildcard include/config/DYNAMIC_MEMORY_LAYOUT) \
    $(wildcard include/config/X86_5LEVEL) \
    $(wildcard include/config/RANDOMIZE_BASE) \
  /work/main/build/linux-6.12/arch/x86/include/asm/kaslr.h \
    $(wildcard include/config/RANDOMIZE_MEMORY) \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/ptrace.h \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/ptrace-abi.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/proto.h \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/ldt.h \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/sigcontext.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/current.h \
    $(wildcard include/config/MITIGATION_CALL_DEPTH_TRACKING) \
  /work/main/build/linux-6.12/arch/x86/include/asm/percpu.h \
    $(wildcard include/config/X86_64_SMP) \
    $(wildcard include/config/CC_HAS_NAMED_AS) \
  /work/main/build/linux-6.12/include/asm-generic/percpu.h \
    $(wildcard include/config/DEBUG_PREEMPT) \
    $(wildcard include/config/HAVE_SETUP_PER_CPU_AREA) \
  /work/main/build/linux-6.12/include/linux/threads.h \
    $(wildcard include/config/BASE_SMALL) \
  /work/main/build/linux-6.12/include/linux/percpu-defs.h \
    $(wildcard include/config/DEBUG_FORCE_WEAK_PER_CPU) \
  /work/main/build/linux-6.12/arch/x86/include/asm/cpufeatures.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/required-features.h \
    $(wildcard include/config/X86_MINIMUM_CPU_FAMILY) \
    $(wildcard include/config/MATH_EMULATION) \
    $(wildcard include/config/X86_PAE) \
    $(wildcard include/config/X86_CMPXCHG64) \
    $(wildcard include/config/X86_CMOV) \
    $(wildcard include/config/X86_P6_NOP) \
    $(wildcard include/config/MATOM) \
  /work/main/build/linux-6.12/arch/x86/include/asm/disabled-features.h \
    $(wildcard include/config/X86_UMIP) \
    $(wildcard include/config/X86_INTEL_MEMORY_PROTECTION_KEYS) \
    $(wildcard include/config/ADDRESS_MASKING) \
    $(wildcard include/config/INTEL_IOMMU_SVM) \
    $(wildcard include/config/X86_SGX) \
    $(wildcard include/config/INTEL_TDX_GUEST) \
    $(wildcard include/config/X86_FRED) \
    $(wildcard include/config/KVM_AMD_SEV) \
  /work/main/build/linux-6.12/arch/x86/include/asm/cpuid.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/string.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/string_64.h \
    $(wildcard include/config/KMSAN) \
    $(wildcard include/config/ARCH_HAS_UACCESS_FLUSHCACHE) \
  /work/main/build/linux-6.12/include/linux/jump_label.h \
    $(wildcard include/config/HAVE_ARCH_JUMP_LABEL_RELATIVE) \
  /work/main/build/linux-6.12/include/linux/atomic.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/atomic.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/cmpxchg.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/cmpxchg_64.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/rmwcc.h \
  /work/main/build/linux-6.12/include/linux/args.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/atomic64_64.h \
  /work/main/build/linux-6.12/include/linux/atomic/atomic-arch-fallback.h \
    $(wildcard include/config/GENERIC_ATOMIC64) \
  /work/main/build/linux-6.12/include/linux/atomic/atomic-long.h \
  /work/main/build/linux-6.12/include/linux/atomic/atomic-instrumented.h \
  /work/main/build/linux-6.12/include/linux/instrumented.h \
  /work/main/build/linux-6.12/include/linux/kmsan-checks.h \
  /work/main/build/linux-6.12/include/linux/bug.h \
    $(wildcard include/config/BUG_ON_DATA_CORRUPTION) \
  /work/main/build/linux-6.12/arch/x86/include/asm/page.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/page_64.h \
    $(wildcard include/config/DEBUG_VIRTUAL) \
    $(wildcard include/config/X86_VSYSCALL_EMULATION) \
  /work/main/build/linux-6.12/include/linux/range.h \
  /work/main/build/linux-6.12/include/asm-generic/memory_model.h \
    $(wildcard include/config/FLATMEM) \
    $(wildcard include/config/SPARSEMEM_VMEMMAP) \
    $(wildcard include/config/SPARSEMEM) \
  /work/main/build/linux-6.12/include/linux/pfn.h \
  /work/main/build/linux-6.12/include/asm-generic/getorder.h \
  /work/main/build/linux-6.12/include/linux/log2.h \
    $(wildcard include/config/ARCH_HAS_ILOG2_U32) \
    $(wildcard include/config/ARCH_HAS_ILOG2_U64) \
  /work/main/build/linux-6.12/include/linux/bitops.h \
  /work/main/build/linux-6.12/include/linux/typecheck.h \
  /work/main/build/linux-6.12/include/asm-generic/bitops/generic-non-atomic.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/bitops.h \
  /work/main/build/linux-6.12/include/asm-generic/bitops/sched.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/arch_hweight.h \
  /work/main/build/linux-6.12/include/asm-generic/bitops/const_hweight.h \
  /work/main/build/linux-6.12/include/asm-generic/bitops/instrumented-atomic.h \
  /work/main/build/linux-6.12/include/asm-generic/bitops/instrumented-non-atomic.h \
    $(wildcard include/config/KCSAN_ASSUME_PLAIN_WRITES_ATOMIC) \
  /work/main/build/linux-6.12/include/asm-generic/bitops/instrumented-lock.h \
  /work/main/build/linux-6.12/include/asm-generic/bitops/le.h \
  /work/main/build/linux-6.12/include/asm-generic/bitops/ext2-atomic-setbit.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/pgtable_types.h \
    $(wildcard include/config/MEM_SOFT_DIRTY) \
    $(wildcard include/config/HAVE_ARCH_USERFAULTFD_WP) \
    $(wildcard include/config/PGTABLE_LEVELS) \
    $(wildcard include/config/PROC_FS) \
  /work/main/build/linux-6.12/arch/x86/include/asm/pgtable_64_types.h \
    $(wildcard include/config/DEBUG_KMAP_LOCAL_FORCE_MAP) \
  /work/main/build/linux-6.12/arch/x86/include/asm/sparsemem.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/desc_defs.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/special_insns.h \
  /work/main/build/linux-6.12/include/linux/errno.h \
  /work/main/build/linux-6.12/include/uapi/linux/errno.h \
  arch/x86/include/generated/uapi/asm/errno.h \
  /work/main/build/linux-6.12/include/uapi/asm-generic/errno.h \
  /work/main/build/linux-6.12/include/uapi/asm-generic/errno-base.h \
  /work/main/build/linux-6.12/include/linux/irqflags.h \
    $(wildcard include/config/PROVE_LOCKING) \
    $(wildcard include/config/TRACE_IRQFLAGS) \
    $(wildcard include/config/PREEMPT_RT) \
    $(wildcard include/config/IRQSOFF_TRACER) \
    $(wildcard include/config/PREEMPT_TRACER) \
    $(wildcard include/config/DEBUG_IRQFLAGS) \
    $(wildcard include/config/TRACE_IRQFLAGS_SUPPORT) \
  /work/main/build/linux-6.12/include/linux/irqflags_types.h \
  /work/main/build/linux-6.12/include/linux/cleanup.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/irqflags.h \
    $(wildcard include/config/DEBUG_ENTRY) \
  /work/main/build/linux-6.12/arch/x86/include/asm/nospec-branch.h \
    $(wildcard include/config/CALL_THUNKS_DEBUG) \
    $(wildcard include/config/MITIGATION_IBPB_ENTRY) \
    $(wildcard include/config/BPF_JIT) \
  /work/main/build/linux-6.12/include/linux/static_key.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/msr-index.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/unwind_hints.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/orc_types.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/fpu/types.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/vmxfeatures.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/vdso/processor.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/shstk.h \
  /work/main/build/linux-6.12/include/linux/personality.h \
  /work/main/build/linux-6.12/include/uapi/linux/personality.h \
  /work/main/build/linux-6.12/include/linux/err.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/tsc.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/cpufeature.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/msr.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/cpumask.h \
  /work/main/build/linux-6.12/include/linux/cpumask.h \
    $(wildcard include/config/FORCE_NR_CPUS) \
    $(wildcard include/config/HOTPLUG_CPU) \
    $(wildcard include/config/DEBUG_PER_CPU_MAPS) \
    $(wildcard include/config/CPUMASK_OFFSTACK) \
  /work/main/build/linux-6.12/include/linux/kernel.h \
    $(wildcard include/config/PREEMPT_VOLUNTARY_BUILD) \
    $(wildcard include/config/PREEMPT_DYNAMIC) \
    $(wildcard include/config/HAVE_PREEMPT_DYNAMIC_CALL) \
    $(wildcard include/config/HAVE_PREEMPT_DYNAMIC_KEY) \
    $(wildcard include/config/PREEMPT_) \
    $(wildcard include/config/DEBUG_ATOMIC_SLEEP) \
    $(wildcard include/config/MMU) \
  /work/main/build/linux-6.12/include/linux/align.h \
  /work/main/build/linux-6.12/include/linux/array_size.h \
  /work/main/build/linux-6.12/include/linux/hex.h \
  /work/main/build/linux-6.12/include/linux/kstrtox.h \
  /work/main/build/linux-6.12/include/linux/minmax.h \
  /work/main/build/linux-6.12/include/linux/sprintf.h \
  /work/main/build/linux-6.12/include/linux/static_call_types.h \
    $(wildcard include/config/HAVE_STATIC_CALL) \
  /work/main/build/linux-6.12/include/linux/instruction_pointer.h \
  /work/main/build/linux-6.12/include/linux/wordpart.h \
  /work/main/build/linux-6.12/include/linux/bitmap.h \
  /work/main/build/linux-6.12/include/linux/find.h \
  /work/main/build/linux-6.12/include/linux/string.h \
    $(wildcard include/config/BINARY_PRINTF) \
    $(wildcard include/config/FORTIFY_SOURCE) \
  /work/main/build/linux-6.12/include/uapi/linux/string.h \
  /work/main/build/linux-6.12/include/linux/bitmap-str.h \
  /work/main/build/linux-6.12/include/linux/cpumask_types.h \
  /work/main/build/linux-6.12/include/linux/gfp_types.h \
    $(wildcard include/config/KASAN_HW_TAGS) \
    $(wildcard include/config/SLAB_OBJ_EXT) \
  /work/main/build/linux-6.12/include/linux/numa.h \
    $(wildcard include/config/NODES_SHIFT) \
    $(wildcard include/config/NUMA_KEEP_MEMINFO) \
    $(wildcard include/config/NUMA) \
    $(wildcard include/config/HAVE_ARCH_NODE_DEV_GROUP) \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/msr.h \
  /work/main/build/linux-6.12/include/uapi/linux/ioctl.h \
  arch/x86/include/generated/uapi/asm/ioctl.h \
  /work/main/build/linux-6.12/include/asm-generic/ioctl.h \
  /work/main/build/linux-6.12/include/uapi/asm-generic/ioctl.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/shared/msr.h \
  /work/main/build/linux-6.12/include/linux/percpu.h \
    $(wildcard include/config/MEM_ALLOC_PROFILING) \
    $(wildcard include/config/RANDOM_KMALLOC_CACHES) \
    $(wildcard include/config/PAGE_SIZE_4KB) \
    $(wildcard include/config/NEED_PER_CPU_PAGE_FIRST_CHUNK) \
  /work/main/build/linux-6.12/include/linux/alloc_tag.h \
    $(wildcard include/config/MEM_ALLOC_PROFILING_DEBUG) \
    $(wildcard include/config/MEM_ALLOC_PROFILING_ENABLED_BY_DEFAULT) \
  /work/main/build/linux-6.12/include/linux/codetag.h \
    $(wildcard include/config/CODE_TAGGING) \
  /work/main/build/linux-6.12/include/linux/preempt.h \
    $(wildcard include/config/PREEMPT_COUNT) \
    $(wildcard include/config/TRACE_PREEMPT_TOGGLE) \
    $(wildcard include/config/PREEMPTION) \
    $(wildcard include/config/PREEMPT_NOTIFIERS) \
    $(wildcard include/config/PREEMPT_NONE) \
    $(wildcard include/config/PREEMPT_VOLUNTARY) \
    $(wildcard include/config/PREEMPT) \
  /work/main/build/linux-6.12/arch/x86/include/asm/preempt.h \
  /work/main/build/linux-6.12/include/linux/smp.h \
    $(wildcard include/config/UP_LATE_INIT) \
    $(wildcard include/config/CSD_LOCK_WAIT_DEBUG) \
  /work/main/build/linux-6.12/include/linux/smp_types.h \
  /work/main/build/linux-6.12/include/linux/llist.h \
    $(wildcard include/config/ARCH_HAVE_NMI_SAFE_CMPXCHG) \
  /work/main/build/linux-6.12/include/linux/thread_info.h \
    $(wildcard include/config/THREAD_INFO_IN_TASK) \
    $(wildcard include/config/GENERIC_ENTRY) \
    $(wildcard include/config/HAVE_ARCH_WITHIN_STACK_FRAMES) \
    $(wildcard include/config/HARDENED_USERCOPY) \
    $(wildcard include/config/SH) \
  /work/main/build/linux-6.12/include/linux/restart_block.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/thread_info.h \
    $(wildcard include/config/COMPAT) \
  /work/main/build/linux-6.12/arch/x86/include/asm/smp.h \
    $(wildcard include/config/DEBUG_NMI_SELFTEST) \
  /work/main/build/linux-6.12/include/linux/mmdebug.h \
    $(wildcard include/config/DEBUG_VM) \
    $(wildcard include/config/DEBUG_VM_IRQSOFF) \
    $(wildcard include/config/DEBUG_VM_PGFLAGS) \
  /work/main/build/linux-6.12/include/linux/sched.h \
    $(wildcard include/config/VIRT_CPU_ACCOUNTING_NATIVE) \
    $(wildcard include/config/SCHED_INFO) \
    $(wildcard include/config/SCHEDSTATS) \
    $(wildcard include/config/SCHED_CORE) \
    $(wildcard include/config/FAIR_GROUP_SCHED) \
    $(wildcard include/config/RT_GROUP_SCHED) \
    $(wildcard include/config/RT_MUTEXES) \
    $(wildcard include/config/UCLAMP_TASK) \
    $(wildcard include/config/UCLAMP_BUCKETS_COUNT) \
    $(wildcard include/config/KMAP_LOCAL) \
    $(wildcard include/config/SCHED_CLASS_EXT) \
    $(wildcard include/config/CGROUP_SCHED) \
    $(wildcard include/config/BLK_DEV_IO_TRACE) \
    $(wildcard include/config/PREEMPT_RCU) \
    $(wildcard include/config/TASKS_RCU) \
    $(wildcard include/config/TASKS_TRACE_RCU) \
    $(wildcard include/config/MEMCG_V1) \
    $(wildcard include/config/LRU_GEN) \
    $(wildcard include/config/COMPAT_BRK) \
    $(wildcard include/config/CGROUPS) \
    $(wildcard include/config/BLK_CGROUP) \
    $(wildcard include/config/PSI) \
    $(wildcard include/config/PAGE_OWNER) \
    $(wildcard include/config/EVENTFD) \
    $(wildcard include/config/ARCH_HAS_CPU_PASID) \
    $(wildcard include/config/CPU_SUP_INTEL) \
    $(wildcard include/config/TASK_DELAY_ACCT) \
    $(wildcard include/config/ARCH_HAS_SCALED_CPUTIME) \
    $(wildcard include/config/VIRT_CPU_ACCOUNTING_GEN) \
    $(wildcard include/config/NO_HZ_FULL) \
    $(wildcard include/config/POSIX_CPUTIMERS) \
    $(wildcard include/config/POSIX_CPU_TIMERS_TASK_WORK) \
    $(wildcard include/config/KEYS) \
    $(wildcard include/config/SYSVIPC) \
    $(wildcard include/config/DETECT_HUNG_TASK) \
    $(wildcard include/config/IO_URING) \
    $(wildcard include/config/AUDIT) \
    $(wildcard include/config/AUDITSYSCALL) \
    $(wildcard include/config/DEBUG_MUTEXES) \
    $(wildcard include/config/UBSAN) \
    $(wildcard include/config/UBSAN_TRAP) \
    $(wildcard include/config/COMPACTION) \
    $(wildcard include/config/TASK_XACCT) \
    $(wildcard include/config/CPUSETS) \
    $(wildcard include/config/X86_CPU_RESCTRL) \
    $(wildcard include/config/FUTEX) \
    $(wildcard include/config/PERF_EVENTS) \
    $(wildcard include/config/NUMA_BALANCING) \
    $(wildcard include/config/RSEQ) \
    $(wildcard include/config/SCHED_MM_CID) \
    $(wildcard include/config/FAULT_INJECTION) \
    $(wildcard include/config/LATENCYTOP) \
    $(wildcard include/config/FUNCTION_GRAPH_TRACER) \
    $(wildcard include/config/MEMCG) \
    $(wildcard include/config/UPROBES) \
    $(wildcard include/config/BCACHE) \
    $(wildcard include/config/VMAP_STACK) \
    $(wildcard include/config/SECURITY) \
    $(wildcard include/config/BPF_SYSCALL) \
    $(wildcard include/config/GCC_PLUGIN_STACKLEAK) \
    $(wildcard include/config/RANDOMIZE_KSTACK_OFFSET) \
    $(wildcard include/config/X86_MCE) \
    $(wildcard include/config/KRETPROBES) \
    $(wildcard include/config/RETHOOK) \
    $(wildcard include/config/ARCH_HAS_PARANOID_L1D_FLUSH) \
    $(wildcard include/config/RV) \
    $(wildcard include/config/USER_EVENTS) \
  /work/main/build/linux-6.12/include/uapi/linux/sched.h \
  /work/main/build/linux-6.12/include/linux/pid_types.h \
  /work/main/build/linux-6.12/include/linux/sem_types.h \
  /work/main/build/linux-6.12/include/linux/shm.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/shmparam.h \
  /work/main/build/linux-6.12/include/linux/kmsan_types.h \
  /work/main/build/linux-6.12/include/linux/mutex_types.h \
    $(wildcard include/config/MUTEX_SPIN_ON_OWNER) \
  /work/main/build/linux-6.12/include/linux/osq_lock.h \
  /work/main/build/linux-6.12/include/linux/spinlock_types.h \
  /work/main/build/linux-6.12/include/linux/rwlock_types.h \
  /work/main/build/linux-6.12/include/linux/plist_types.h \
  /work/main/build/linux-6.12/include/linux/hrtimer_types.h \
  /work/main/build/linux-6.12/include/linux/timerqueue_types.h \
  /work/main/build/linux-6.12/include/linux/rbtree_types.h \
  /work/main/build/linux-6.12/include/linux/timer_types.h \
  /work/main/build/linux-6.12/include/linux/seccomp_types.h \
    $(wildcard include/config/SECCOMP) \
  /work/main/build/linux-6.12/include/linux/nodemask_types.h \
  /work/main/build/linux-6.12/include/linux/refcount_types.h \
  /work/main/build/linux-6.12/include/linux/resource.h \
  /work/main/build/linux-6.12/include/uapi/linux/resource.h \
  arch/x86/include/generated/uapi/asm/resource.h \
  /work/main/build/linux-6.12/include/asm-generic/resource.h \
  /work/main/build/linux-6.12/include/uapi/asm-generic/resource.h \
  /work/main/build/linux-6.12/include/linux/latencytop.h \
  /work/main/build/linux-6.12/include/linux/sched/prio.h \
  /work/main/build/linux-6.12/include/linux/sched/types.h \
  /work/main/build/linux-6.12/include/linux/signal_types.h \
    $(wildcard include/config/OLD_SIGACTION) \
  /work/main/build/linux-6.12/include/uapi/linux/signal.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/signal.h \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/signal.h \
  /work/main/build/linux-6.12/include/uapi/asm-generic/signal-defs.h \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/siginfo.h \
  /work/main/build/linux-6.12/include/uapi/asm-generic/siginfo.h \
  /work/main/build/linux-6.12/include/linux/syscall_user_dispatch_types.h \
  /work/main/build/linux-6.12/include/linux/mm_types_task.h \
    $(wildcard include/config/ARCH_WANT_BATCHED_UNMAP_TLB_FLUSH) \
  /work/main/build/linux-6.12/arch/x86/include/asm/tlbbatch.h \
  /work/main/build/linux-6.12/include/linux/netdevice_xmit.h \
    $(wildcard include/config/NET_ACT_MIRRED) \
    $(wildcard include/config/NET_EGRESS) \
  /work/main/build/linux-6.12/include/linux/task_io_accounting.h \
    $(wildcard include/config/TASK_IO_ACCOUNTING) \
  /work/main/build/linux-6.12/include/linux/posix-timers_types.h \
  /work/main/build/linux-6.12/include/uapi/linux/rseq.h \
  /work/main/build/linux-6.12/include/linux/seqlock_types.h \
  /work/main/build/linux-6.12/include/linux/kcsan.h \
  /work/main/build/linux-6.12/include/linux/rv.h \
    $(wildcard include/config/RV_REACTORS) \
  /work/main/build/linux-6.12/include/linux/livepatch_sched.h \
  /work/main/build/linux-6.12/include/linux/uidgid_types.h \
  arch/x86/include/generated/asm/kmap_size.h \
  /work/main/build/linux-6.12/include/asm-generic/kmap_size.h \
    $(wildcard include/config/DEBUG_KMAP_LOCAL) \
  /work/main/build/linux-6.12/include/linux/sched/ext.h \
    $(wildcard include/config/EXT_GROUP_SCHED) \
  /work/main/build/linux-6.12/include/linux/spinlock.h \
  /work/main/build/linux-6.12/include/linux/bottom_half.h \
  /work/main/build/linux-6.12/include/linux/lockdep.h \
    $(wildcard include/config/DEBUG_LOCKING_API_SELFTESTS) \
  arch/x86/include/generated/asm/mmiowb.h \
  /work/main/build/linux-6.12/include/asm-generic/mmiowb.h \
    $(wildcard include/config/MMIOWB) \
  /work/main/build/linux-6.12/arch/x86/include/asm/spinlock.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/paravirt.h \
    $(wildcard include/config/PARAVIRT_SPINLOCKS) \
  /work/main/build/linux-6.12/arch/x86/include/asm/paravirt_types.h \
    $(wildcard include/config/ZERO_CALL_USED_REGS) \
    $(wildcard include/config/PARAVIRT_DEBUG) \
  /work/main/build/linux-6.12/arch/x86/include/asm/qspinlock.h \
  /work/main/build/linux-6.12/include/asm-generic/qspinlock.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/qrwlock.h \
  /work/main/build/linux-6.12/include/asm-generic/qrwlock.h \
  /work/main/build/linux-6.12/include/linux/rwlock.h \
  /work/main/build/linux-6.12/include/linux/spinlock_api_smp.h \
    $(wildcard include/config/INLINE_SPIN_LOCK) \
    $(wildcard include/config/INLINE_SPIN_LOCK_BH) \
    $(wildcard include/config/INLINE_SPIN_LOCK_IRQ) \
    $(wildcard include/config/INLINE_SPIN_LOCK_IRQSAVE) \
    $(wildcard include/config/INLINE_SPIN_TRYLOCK) \
    $(wildcard include/config/INLINE_SPIN_TRYLOCK_BH) \
    $(wildcard include/config/UNINLINE_SPIN_UNLOCK) \
    $(wildcard include/config/INLINE_SPIN_UNLOCK_BH) \
    $(wildcard include/config/INLINE_SPIN_UNLOCK_IRQ) \
    $(wildcard include/config/INLINE_SPIN_UNLOCK_IRQRESTORE) \
    $(wildcard include/config/GENERIC_LOCKBREAK) \
  /work/main/build/linux-6.12/include/linux/rwlock_api_smp.h \
    $(wildcard include/config/INLINE_READ_LOCK) \
    $(wildcard include/config/INLINE_WRITE_LOCK) \
    $(wildcard include/config/INLINE_READ_LOCK_BH) \
    $(wildcard include/config/INLINE_WRITE_LOCK_BH) \
    $(wildcard include/config/INLINE_READ_LOCK_IRQ) \
    $(wildcard include/config/INLINE_WRITE_LOCK_IRQ) \
    $(wildcard include/config/INLINE_READ_LOCK_IRQSAVE) \
    $(wildcard include/config/INLINE_WRITE_LOCK_IRQSAVE) \
    $(wildcard include/config/INLINE_READ_TRYLOCK) \
    $(wildcard include/config/INLINE_WRITE_TRYLOCK) \
    $(wildcard include/config/INLINE_READ_UNLOCK) \
    $(wildcard include/config/INLINE_WRITE_UNLOCK) \
    $(wildcard include/config/INLINE_READ_UNLOCK_BH) \
    $(wildcard include/config/INLINE_WRITE_UNLOCK_BH) \
    $(wildcard include/config/INLINE_READ_UNLOCK_IRQ) \
    $(wildcard include/config/INLINE_WRITE_UNLOCK_IRQ) \
    $(wildcard include/config/INLINE_READ_UNLOCK_IRQRESTORE) \
    $(wildcard include/config/INLINE_WRITE_UNLOCK_IRQRESTORE) \
  /work/main/build/linux-6.12/include/linux/tracepoint-defs.h \
  /work/main/build/linux-6.12/include/vdso/time32.h \
  /work/main/build/linux-6.12/include/vdso/time.h \
  /work/main/build/linux-6.12/include/linux/uidgid.h \
    $(wildcard include/config/MULTIUSER) \
    $(wildcard include/config/USER_NS) \
  /work/main/build/linux-6.12/include/linux/highuid.h \
  /work/main/build/linux-6.12/include/linux/buildid.h \
    $(wildcard include/config/VMCORE_INFO) \
  /work/main/build/linux-6.12/include/linux/kmod.h \
  /work/main/build/linux-6.12/include/linux/umh.h \
  /work/main/build/linux-6.12/include/linux/gfp.h \
    $(wildcard include/config/HIGHMEM) \
    $(wildcard include/config/ZONE_DMA) \
    $(wildcard include/config/ZONE_DMA32) \
    $(wildcard include/config/ZONE_DEVICE) \
    $(wildcard include/config/CONTIG_ALLOC) \
  /work/main/build/linux-6.12/include/linux/mmzone.h \
    $(wildcard include/config/ARCH_FORCE_MAX_ORDER) \
    $(wildcard include/config/CMA) \
    $(wildcard include/config/MEMORY_ISOLATION) \
    $(wildcard include/config/ZSMALLOC) \
    $(wildcard include/config/UNACCEPTED_MEMORY) \
    $(wildcard include/config/IOMMU_SUPPORT) \
    $(wildcard include/config/SWAP) \
    $(wildcard include/config/TRANSPARENT_HUGEPAGE) \
    $(wildcard include/config/LRU_GEN_STATS) \
    $(wildcard include/config/LRU_GEN_WALKS_MMU) \
    $(wildcard include/config/MEMORY_FAILURE) \
    $(wildcard include/config/PAGE_EXTENSION) \
    $(wildcard include/config/DEFERRED_STRUCT_PAGE_INIT) \
    $(wildcard include/config/HAVE_MEMORYLESS_NODES) \
    $(wildcard include/config/SPARSEMEM_EXTREME) \
    $(wildcard include/config/HAVE_ARCH_PFN_VALID) \
  /work/main/build/linux-6.12/include/linux/list_nulls.h \
  /work/main/build/linux-6.12/include/linux/wait.h \
  /work/main/build/linux-6.12/include/linux/seqlock.h \
    $(wildcard include/config/CC_IS_GCC) \
    $(wildcard include/config/GCC_VERSION) \
    $(wildcard include/config/UBSAN_ALIGNMENT) \
  /work/main/build/linux-6.12/include/linux/mutex.h \
  /work/main/build/linux-6.12/include/linux/debug_locks.h \
  /work/main/build/linux-6.12/include/linux/nodemask.h \
  /work/main/build/linux-6.12/include/linux/random.h \
    $(wildcard include/config/VMGENID) \
  /work/main/build/linux-6.12/include/uapi/linux/random.h \
  /work/main/build/linux-6.12/include/linux/irqnr.h \
  /work/main/build/linux-6.12/include/uapi/linux/irqnr.h \
  /work/main/build/linux-6.12/include/linux/prandom.h \
  /work/main/build/linux-6.12/include/linux/once.h \
  /work/main/build/linux-6.12/include/linux/pageblock-flags.h \
    $(wildcard include/config/HUGETLB_PAGE) \
    $(wildcard include/config/HUGETLB_PAGE_SIZE_VARIABLE) \
  /work/main/build/linux-6.12/include/linux/page-flags-layout.h \
  include/generated/bounds.h \
  /work/main/build/linux-6.12/include/linux/mm_types.h \
    $(wildcard include/config/HAVE_ALIGNED_STRUCT_PAGE) \
    $(wildcard include/config/HUGETLB_PMD_PAGE_TABLE_SHARING) \
    $(wildcard include/config/USERFAULTFD) \
    $(wildcard include/config/ANON_VMA_NAME) \
    $(wildcard include/config/PER_VMA_LOCK) \
    $(wildcard include/config/HAVE_ARCH_COMPAT_MMAP_BASES) \
    $(wildcard include/config/MEMBARRIER) \
    $(wildcard include/config/AIO) \
    $(wildcard include/config/MMU_NOTIFIER) \
    $(wildcard include/config/SPLIT_PMD_PTLOCKS) \
    $(wildcard include/config/IOMMU_MM_DATA) \
    $(wildcard include/config/KSM) \
  /work/main/build/linux-6.12/include/linux/auxvec.h \
  /work/main/build/linux-6.12/include/uapi/linux/auxvec.h \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/auxvec.h \
  /work/main/build/linux-6.12/include/linux/kref.h \
  /work/main/build/linux-6.12/include/linux/refcount.h \
  /work/main/build/linux-6.12/include/linux/rbtree.h \
  /work/main/build/linux-6.12/include/linux/rcupdate.h \
    $(wildcard include/config/TINY_RCU) \
    $(wildcard include/config/RCU_STRICT_GRACE_PERIOD) \
    $(wildcard include/config/RCU_LAZY) \
    $(wildcard include/config/TASKS_RCU_GENERIC) \
    $(wildcard include/config/RCU_STALL_COMMON) \
    $(wildcard include/config/KVM_XFER_TO_GUEST_WORK) \
    $(wildcard include/config/RCU_NOCB_CPU) \
    $(wildcard include/config/TASKS_RUDE_RCU) \
    $(wildcard include/config/TREE_RCU) \
    $(wildcard include/config/DEBUG_OBJECTS_RCU_HEAD) \
    $(wildcard include/config/PROVE_RCU) \
    $(wildcard include/config/ARCH_WEAK_RELEASE_ACQUIRE) \
  /work/main/build/linux-6.12/include/linux/context_tracking_irq.h \
    $(wildcard include/config/CONTEXT_TRACKING_IDLE) \
  /work/main/build/linux-6.12/include/linux/rcutree.h \
  /work/main/build/linux-6.12/include/linux/maple_tree.h \
    $(wildcard include/config/MAPLE_RCU_DISABLED) \
    $(wildcard include/config/DEBUG_MAPLE_TREE) \
  /work/main/build/linux-6.12/include/linux/rwsem.h \
    $(wildcard include/config/RWSEM_SPIN_ON_OWNER) \
    $(wildcard include/config/DEBUG_RWSEMS) \
  /work/main/build/linux-6.12/include/linux/completion.h \
  /work/main/build/linux-6.12/include/linux/swait.h \
  /work/main/build/linux-6.12/include/linux/uprobes.h \
  /work/main/build/linux-6.12/include/linux/workqueue.h \
    $(wildcard include/config/DEBUG_OBJECTS_WORK) \
    $(wildcard include/config/FREEZER) \
    $(wildcard include/config/WQ_WATCHDOG) \
  /work/main/build/linux-6.12/include/linux/timer.h \
    $(wildcard include/config/DEBUG_OBJECTS_TIMERS) \
  /work/main/build/linux-6.12/include/linux/ktime.h \
  /work/main/build/linux-6.12/include/linux/jiffies.h \
  /work/main/build/linux-6.12/include/vdso/jiffies.h \
  include/generated/timeconst.h \
  /work/main/build/linux-6.12/include/vdso/ktime.h \
  /work/main/build/linux-6.12/include/linux/timekeeping.h \
    $(wildcard include/config/GENERIC_CMOS_UPDATE) \
  /work/main/build/linux-6.12/include/linux/clocksource_ids.h \
  /work/main/build/linux-6.12/include/linux/debugobjects.h \
    $(wildcard include/config/DEBUG_OBJECTS) \
    $(wildcard include/config/DEBUG_OBJECTS_FREE) \
  /work/main/build/linux-6.12/include/linux/workqueue_types.h \
  /work/main/build/linux-6.12/include/linux/percpu_counter.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/mmu.h \
    $(wildcard include/config/MODIFY_LDT_SYSCALL) \
  /work/main/build/linux-6.12/include/linux/page-flags.h \
    $(wildcard include/config/PAGE_IDLE_FLAG) \
    $(wildcard include/config/ARCH_USES_PG_ARCH_2) \
    $(wildcard include/config/ARCH_USES_PG_ARCH_3) \
    $(wildcard include/config/HUGETLB_PAGE_OPTIMIZE_VMEMMAP) \
  /work/main/build/linux-6.12/include/linux/local_lock.h \
  /work/main/build/linux-6.12/include/linux/local_lock_internal.h \
  /work/main/build/linux-6.12/include/linux/zswap.h \
    $(wildcard include/config/ZSWAP) \
  /work/main/build/linux-6.12/include/linux/memory_hotplug.h \
    $(wildcard include/config/ARCH_HAS_ADD_PAGES) \
    $(wildcard include/config/MEMORY_HOTREMOVE) \
  /work/main/build/linux-6.12/include/linux/notifier.h \
  /work/main/build/linux-6.12/include/linux/srcu.h \
    $(wildcard include/config/TINY_SRCU) \
    $(wildcard include/config/NEED_SRCU_NMI_SAFE) \
  /work/main/build/linux-6.12/include/linux/rcu_segcblist.h \
  /work/main/build/linux-6.12/include/linux/srcutree.h \
  /work/main/build/linux-6.12/include/linux/rcu_node_tree.h \
    $(wildcard include/config/RCU_FANOUT) \
    $(wildcard include/config/RCU_FANOUT_LEAF) \
  /work/main/build/linux-6.12/include/linux/topology.h \
    $(wildcard include/config/USE_PERCPU_NUMA_NODE_ID) \
    $(wildcard include/config/SCHED_SMT) \
  /work/main/build/linux-6.12/include/linux/arch_topology.h \
    $(wildcard include/config/GENERIC_ARCH_TOPOLOGY) \
  /work/main/build/linux-6.12/arch/x86/include/asm/topology.h \
    $(wildcard include/config/X86_LOCAL_APIC) \
    $(wildcard include/config/SCHED_MC_PRIO) \
  /work/main/build/linux-6.12/include/asm-generic/topology.h \
  /work/main/build/linux-6.12/include/linux/cpu_smt.h \
    $(wildcard include/config/HOTPLUG_SMT) \
  /work/main/build/linux-6.12/include/linux/sysctl.h \
    $(wildcard include/config/SYSCTL) \
  /work/main/build/linux-6.12/include/uapi/linux/sysctl.h \
  /work/main/build/linux-6.12/include/linux/elf.h \
    $(wildcard include/config/ARCH_HAVE_EXTRA_ELF_NOTES) \
    $(wildcard include/config/ARCH_USE_GNU_PROPERTY) \
    $(wildcard include/config/ARCH_HAVE_ELF_PROT) \
  /work/main/build/linux-6.12/arch/x86/include/asm/elf.h \
    $(wildcard include/config/X86_X32_ABI) \
  /work/main/build/linux-6.12/arch/x86/include/asm/ia32.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/user.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/user_64.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/fsgsbase.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/syscall.h \
    $(wildcard include/config/X86_X32_DISABLED) \
  /work/main/build/linux-6.12/include/uapi/linux/audit.h \
  /work/main/build/linux-6.12/include/uapi/linux/elf-em.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/unistd.h \
  /work/main/build/linux-6.12/arch/x86/include/uapi/asm/unistd.h \
  arch/x86/include/generated/uapi/asm/unistd_64.h \
  arch/x86/include/generated/asm/unistd_64_x32.h \
  arch/x86/include/generated/asm/unistd_32_ia32.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/vdso.h \
  /work/main/build/linux-6.12/include/uapi/linux/elf.h \
  /work/main/build/linux-6.12/include/linux/kobject.h \
    $(wildcard include/config/UEVENT_HELPER) \
    $(wildcard include/config/DEBUG_KOBJECT_RELEASE) \
  /work/main/build/linux-6.12/include/linux/sysfs.h \
  /work/main/build/linux-6.12/include/linux/kernfs.h \
    $(wildcard include/config/KERNFS) \
  /work/main/build/linux-6.12/include/linux/idr.h \
  /work/main/build/linux-6.12/include/linux/radix-tree.h \
  /work/main/build/linux-6.12/include/linux/xarray.h \
    $(wildcard include/config/XARRAY_MULTI) \
  /work/main/build/linux-6.12/include/linux/sched/mm.h \
    $(wildcard include/config/MMU_LAZY_TLB_REFCOUNT) \
    $(wildcard include/config/ARCH_HAS_MEMBARRIER_CALLBACKS) \
  /work/main/build/linux-6.12/include/linux/sync_core.h \
    $(wildcard include/config/ARCH_HAS_SYNC_CORE_BEFORE_USERMODE) \
    $(wildcard include/config/ARCH_HAS_PREPARE_SYNC_CORE_CMD) \
  /work/main/build/linux-6.12/arch/x86/include/asm/sync_core.h \
  /work/main/build/linux-6.12/include/linux/sched/coredump.h \
    $(wildcard include/config/CORE_DUMP_DEFAULT_ELF_HEADERS) \
  /work/main/build/linux-6.12/include/linux/kobject_ns.h \
  /work/main/build/linux-6.12/include/linux/moduleparam.h \
    $(wildcard include/config/ALPHA) \
    $(wildcard include/config/PPC64) \
  /work/main/build/linux-6.12/include/linux/rbtree_latch.h \
  /work/main/build/linux-6.12/include/linux/error-injection.h \
  /work/main/build/linux-6.12/include/asm-generic/error-injection.h \
  /work/main/build/linux-6.12/include/linux/dynamic_debug.h \
  /work/main/build/linux-6.12/arch/x86/include/asm/module.h \
    $(wildcard include/config/UNWINDER_ORC) \
  /work/main/build/linux-6.12/include/asm-generic/module.h \
    $(wildcard include/config/HAVE_MOD_ARCH_SPECIFIC) \
    $(wildcard include/config/MODULES_USE_ELF_REL) \
    $(wildcard include/config/MODULES_USE_ELF_RELA) \
  /work/main/build/linux-6.12/include/linux/export-internal.h \
    $(wildcard include/config/PARISC) \

/work/main/kmod/vhost_console.mod.o: $(deps_/work/main/kmod/vhost_console.mod.o)

$(deps_/work/main/kmod/vhost_console.mod.o):
