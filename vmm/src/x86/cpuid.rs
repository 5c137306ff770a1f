//! The CPUID each vCPU sees: what KVM supports (KVM_GET_SUPPORTED_CPUID), with
//! the vCPU's own APIC id and the topology of `cpus` cores in one package, and
//! the hypervisor bit, as Firecracker's and vmm-reference's cpuid.rs do.

use kvm_bindings::CpuId;

const LEAF_FEATURES: u32 = 0x1;
const LEAF_CACHE: u32 = 0x4;
const LEAF_TOPOLOGY: u32 = 0xb;
const LEAF_TOPOLOGY_V2: u32 = 0x1f;
const LEAF_AMD_SIZES: u32 = 0x8000_0008;
const LEAF_AMD_EXT_APIC_ID: u32 = 0x8000_001e;

const ECX_HYPERVISOR: u32 = 1 << 31;
const EDX_HTT: u32 = 1 << 28;
/// Topology level types in leaf 0xb ECX[15:8].
const LEVEL_SMT: u32 = 1;
const LEVEL_CORE: u32 = 2;

/// Bits of an APIC id that number the cores of a package.
fn core_bits(cpus: u8) -> u32 {
    u32::from(cpus).next_power_of_two().trailing_zeros()
}

/// Adjusts `cpuid` (KVM's supported set) for vCPU `id` of `cpus`.
pub fn for_vcpu(cpuid: &mut CpuId, id: u8, cpus: u8) {
    let shift = core_bits(cpus);
    for e in cpuid.as_mut_slice() {
        match e.function {
            LEAF_FEATURES => {
                // EBX: APIC id [31:24], logical processors per package [23:16],
                // CLFLUSH line size in 8-byte units [15:8].
                e.ebx = u32::from(id) << 24 | u32::from(cpus) << 16 | 8 << 8 | (e.ebx & 0xff);
                e.ecx |= ECX_HYPERVISOR;
                if cpus > 1 {
                    e.edx |= EDX_HTT;
                } else {
                    e.edx &= !EDX_HTT;
                }
            }
            LEAF_CACHE => {
                // Cores per package - 1 [31:26], a 6-bit field (254 vCPUs
                // would carry into nothing); each cache private to a core
                // [25:14].
                e.eax = (e.eax & 0x3fff) | (u32::from(cpus) - 1).min(0x3f) << 26;
            }
            LEAF_TOPOLOGY | LEAF_TOPOLOGY_V2 => {
                // One thread per core, `cpus` cores; EDX is the x2APIC id.
                (e.eax, e.ebx, e.ecx) = match e.index {
                    0 => (0, 1, LEVEL_SMT << 8),
                    1 => (shift, u32::from(cpus), LEVEL_CORE << 8 | 1),
                    n => (0, 0, n),
                };
                e.edx = u32::from(id);
            }
            LEAF_AMD_SIZES => {
                // Cores per package - 1 [7:0], APIC id bits for them [15:12].
                e.ecx = (e.ecx & !0xf0ff) | shift << 12 | (u32::from(cpus) - 1);
            }
            LEAF_AMD_EXT_APIC_ID => {
                // AMD's topology extensions (Firecracker's
                // update_extended_apic_id_entry): EAX the vCPU's own APIC id,
                // which Linux 6.9+ takes as the CPU's initial APIC id and
                // checks against the MADT's ("[Firmware Bug] APIC ID
                // mismatch" when KVM's value for the host CPU is left);
                // EBX its compute unit (one thread per core: the core's id)
                // with threads per unit - 1 = 0 [15:8]; ECX node 0, one node
                // per package [10:8].
                e.eax = u32::from(id);
                e.ebx = u32::from(id);
                e.ecx = 0;
                e.edx = 0;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_bindings::kvm_cpuid_entry2;

    fn entry(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 { function, index, ebx: 0xff, ..Default::default() }
    }

    #[test]
    fn each_vcpu_gets_its_apic_id_and_the_package_topology() {
        let mut cpuid =
            CpuId::from_entries(&[entry(1, 0), entry(4, 0), entry(0xb, 0), entry(0xb, 1), entry(0xb, 2)]).unwrap();
        for_vcpu(&mut cpuid, 2, 3);
        let e = cpuid.as_slice();
        assert_eq!(e[0].ebx >> 24, 2, "APIC id");
        assert_eq!(e[0].ebx >> 16 & 0xff, 3, "logical processors");
        assert_eq!(e[0].ecx & ECX_HYPERVISOR, ECX_HYPERVISOR);
        assert_eq!(e[0].edx & EDX_HTT, EDX_HTT);
        assert_eq!(e[1].eax >> 26, 2, "cores - 1");
        assert_eq!((e[2].eax, e[2].ebx, e[2].ecx >> 8, e[2].edx), (0, 1, LEVEL_SMT, 2));
        assert_eq!((e[3].eax, e[3].ebx, e[3].ecx >> 8, e[3].edx), (2, 3, LEVEL_CORE, 2), "3 cores need 2 id bits");
        assert_eq!(e[4].ecx >> 8 & 0xff, 0, "no level past the cores");
    }

    #[test]
    fn amd_extended_apic_ids_are_each_vcpus_own() {
        let host =
            kvm_cpuid_entry2 { function: 0x8000_001e, eax: 0x13, ebx: 0x0107, ecx: 0x0301, ..Default::default() };
        for (id, cpus) in [(0, 1), (1, 2), (200, 254)] {
            let mut cpuid = CpuId::from_entries(&[host]).unwrap();
            for_vcpu(&mut cpuid, id, cpus);
            let e = cpuid.as_slice()[0];
            assert_eq!((e.eax, e.ebx, e.ecx, e.edx), (u32::from(id), u32::from(id), 0, 0));
        }
    }

    #[test]
    fn the_cache_leafs_core_count_saturates_at_its_six_bits() {
        let mut cpuid = CpuId::from_entries(&[entry(4, 0)]).unwrap();
        for_vcpu(&mut cpuid, 0, 254);
        assert_eq!(cpuid.as_slice()[0].eax >> 26, 0x3f, "64 or more cores");
    }

    #[test]
    fn one_vcpu_has_no_htt() {
        let mut cpuid =
            CpuId::from_entries(&[kvm_cpuid_entry2 { function: 1, edx: EDX_HTT, ..Default::default() }]).unwrap();
        for_vcpu(&mut cpuid, 0, 1);
        assert_eq!(cpuid.as_slice()[0].edx & EDX_HTT, 0);
    }
}
