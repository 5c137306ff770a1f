//! The benchmark baseline: the least a KVM program can do to run the hello
//! guest to HLT. It creates the VM, copies the ELF32 segments in, enters 32-bit
//! protected mode, and answers the driver's MMIO with hard-wired values: no
//! validation, no state machine, no queue library. `cargo xtask bench` runs it
//! side by side with `vmm` to show what the VMM's structure costs.
//!
//! Usage: bare <hello.elf>; prints the guest's bytes on stdout and its exit
//! count on stderr.

use std::io::Write;

use kvm_bindings::{kvm_regs, kvm_segment, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VcpuExit};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress};

const MEM: usize = 16 << 20;
const MMIO: u64 = 0x1000_0000;

fn main() {
    let path = std::env::args().nth(1).expect("usage: bare <hello.elf>");
    let elf = std::fs::read(path).expect("read guest");
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap());

    let kvm = Kvm::new().unwrap();
    let vm = kvm.create_vm().unwrap();
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM)]).unwrap();
    let host = mem.iter().next().unwrap().get_host_address(MemoryRegionAddress(0)).unwrap();
    let region = kvm_userspace_memory_region {
        slot: 0,
        guest_phys_addr: 0,
        memory_size: MEM as u64,
        userspace_addr: host as u64,
        flags: 0,
    };
    // SAFETY: `mem` maps MEM bytes and outlives the VM.
    unsafe { vm.set_user_memory_region(region).unwrap() };

    // ELF32 program headers: copy each PT_LOAD to its physical address.
    let (phoff, phnum) = (u32_at(28) as usize, u16_at(44) as usize);
    for i in 0..phnum {
        let ph = phoff + i * 32;
        if u32_at(ph) == 1 {
            let (off, paddr, filesz) = (u32_at(ph + 4) as usize, u32_at(ph + 12), u32_at(ph + 16) as usize);
            mem.write_slice(&elf[off..off + filesz], GuestAddress(paddr.into())).unwrap();
        }
    }

    let mut vcpu = vm.create_vcpu(0).unwrap();
    let mut sregs = vcpu.get_sregs().unwrap();
    let flat = |selector, type_| kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        db: 1,
        s: 1,
        g: 1,
        ..Default::default()
    };
    sregs.cs = flat(8, 0xb);
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) =
        (flat(16, 3), flat(16, 3), flat(16, 3), flat(16, 3), flat(16, 3));
    sregs.cr0 |= 1;
    vcpu.set_sregs(&sregs).unwrap();
    vcpu.set_regs(&kvm_regs { rip: u32_at(24).into(), rsp: 0x5000, rflags: 2, ..Default::default() }).unwrap();

    let (mut status, mut features_sel, mut queue_sel) = (0u32, 0u32, 0u32);
    let (mut desc, mut avail, mut used) = ([0u64; 2], [0u64; 2], [0u64; 2]);
    let mut exits = 0u64;
    let mut out = std::io::stdout().lock();
    loop {
        exits += 1;
        match vcpu.run().unwrap() {
            VcpuExit::MmioRead(addr, data) => {
                let v: u32 = match addr - MMIO {
                    0x000 => 0x7472_6976,
                    0x004 => 2,
                    0x008 => 3,
                    0x010 => (features_sel == 1) as u32, // VERSION_1 only
                    0x034 => 16,
                    0x070 => status,
                    _ => 0,
                };
                data.copy_from_slice(&v.to_le_bytes()[..data.len()]);
            }
            VcpuExit::MmioWrite(addr, data) => {
                let v = u32::from_le_bytes(data.try_into().unwrap());
                let q = (queue_sel & 1) as usize;
                match addr - MMIO {
                    0x014 => features_sel = v,
                    0x030 => queue_sel = v,
                    0x070 => status = v,
                    0x080 => desc[q] = v.into(),
                    0x090 => avail[q] = v.into(),
                    0x0a0 => used[q] = v.into(),
                    0x050 => {
                        // One buffer per notify: the hello guest's case.
                        let q = (v & 1) as usize;
                        let idx: u16 = mem.read_obj(GuestAddress(avail[q] + 2)).unwrap();
                        let head: u16 =
                            mem.read_obj(GuestAddress(avail[q] + 4 + 2 * u64::from((idx - 1) % 16))).unwrap();
                        let d = desc[q] + 16 * u64::from(head);
                        let (buf, len): (u64, u32) =
                            (mem.read_obj(GuestAddress(d)).unwrap(), mem.read_obj(GuestAddress(d + 8)).unwrap());
                        let mut bytes = vec![0; len as usize];
                        mem.read_slice(&mut bytes, GuestAddress(buf)).unwrap();
                        out.write_all(&bytes).unwrap();
                        let slot = used[q] + 4 + 8 * u64::from((idx - 1) % 16);
                        mem.write_obj(u32::from(head), GuestAddress(slot)).unwrap();
                        mem.write_obj(0u32, GuestAddress(slot + 4)).unwrap();
                        mem.write_obj(idx, GuestAddress(used[q] + 2)).unwrap();
                    }
                    _ => {}
                }
            }
            VcpuExit::Hlt => break,
            other => panic!("unexpected exit {other:?}"),
        }
    }
    out.flush().unwrap();
    eprintln!("exits: {exits}");
    if let Some(kib) = vmm::stats::peak_rss_kib() {
        eprintln!("peak RSS: {kib} KiB");
    }
}
