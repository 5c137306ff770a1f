//! ELF loader for i386 (ELF32) and x86-64 (ELF64) executables: the class
//! picks the entry mode. rust-vmm's linux-loader handles ELF64 kernels only,
//! so both classes are parsed here; the parse is small and every field a file
//! could lie about is checked.

use std::ops::Range;

use thiserror::Error;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::boot::{self, Mode};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("not an ELF file")]
    NotElf,
    #[error("unsupported ELF file: {0}")]
    Unsupported(&'static str),
    #[error("malformed ELF file: {0}")]
    Malformed(&'static str),
    #[error("ELF segment {start:#x}..{end:#x} does not fit in guest RAM (0..{ram:#x})")]
    OutsideRam { start: u64, end: u64, ram: u64 },
    #[error("ELF segment {start:#x}..{end:#x} overlaps the VMM's boot data at {reserved_start:#x}..{reserved_end:#x}")]
    Overlap { start: u64, end: u64, reserved_start: u64, reserved_end: u64 },
    #[error("ELF entry point {0:#x} is not inside a loadable segment")]
    BadEntry(u64),
}

/// A loaded executable.
#[derive(Debug, PartialEq, Eq)]
pub struct Image {
    pub mode: Mode,
    pub entry: u64,
}

const PT_LOAD: u32 = 1;
const ET_EXEC: u16 = 2;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;

fn field(image: &[u8], at: usize, len: usize) -> Result<u64, LoadError> {
    let bytes =
        at.checked_add(len).and_then(|end| image.get(at..end)).ok_or(LoadError::Malformed("truncated header"))?;
    let mut v = [0u8; 8];
    v[..len].copy_from_slice(bytes);
    Ok(u64::from_le_bytes(v))
}

struct Segment {
    offset: u64,
    addr: u64,
    filesz: u64,
    memsz: u64,
}

/// Loads `image` into `mem` (which starts at 0 and is `ram` bytes long).
pub fn load(image: &[u8], mem: &GuestMemoryMmap, ram: u64) -> Result<Image, LoadError> {
    if image.get(..4) != Some(b"\x7fELF") {
        return Err(LoadError::NotElf);
    }
    // e_ident: class at 4 (1 = 32-bit, 2 = 64-bit), data at 5 (1 = little-endian).
    let (mode, word) = match image.get(4) {
        Some(1) => (Mode::Protected32, 4),
        Some(2) => (Mode::Long64, 8),
        _ => return Err(LoadError::Unsupported("unknown ELF class")),
    };
    if image.get(5) != Some(&1) {
        return Err(LoadError::Unsupported("big-endian"));
    }
    let machine = field(image, 18, 2)? as u16;
    match (mode, machine) {
        (Mode::Protected32, EM_386) | (Mode::Long64, EM_X86_64) => {}
        _ => return Err(LoadError::Unsupported("not an x86 executable")),
    }
    if field(image, 16, 2)? as u16 != ET_EXEC {
        return Err(LoadError::Unsupported("not an executable (ET_EXEC)"));
    }
    let entry = field(image, 24, word)?;
    let phoff = field(image, 24 + word, word)?;
    let (phentsize, phnum) = match mode {
        Mode::Protected32 => (field(image, 42, 2)?, field(image, 44, 2)?),
        Mode::Long64 => (field(image, 54, 2)?, field(image, 56, 2)?),
    };
    let expected = if mode == Mode::Protected32 { 32 } else { 56 };
    if phentsize != expected {
        return Err(LoadError::Malformed("unexpected program header size"));
    }

    let mut segments = Vec::new();
    for i in 0..phnum {
        // The header's bytes first: field offsets within it cannot overflow.
        let ph = phoff
            .checked_add(i * phentsize)
            .and_then(|at| usize::try_from(at).ok())
            .and_then(|at| image.get(at..)?.get(..phentsize as usize))
            .ok_or(LoadError::Malformed("program headers out of range"))?;
        if field(ph, 0, 4)? as u32 != PT_LOAD {
            continue;
        }
        let seg = match mode {
            Mode::Protected32 => Segment {
                offset: field(ph, 4, 4)?,
                addr: field(ph, 12, 4)?,
                filesz: field(ph, 16, 4)?,
                memsz: field(ph, 20, 4)?,
            },
            Mode::Long64 => Segment {
                offset: field(ph, 8, 8)?,
                addr: field(ph, 24, 8)?,
                filesz: field(ph, 32, 8)?,
                memsz: field(ph, 40, 8)?,
            },
        };
        check_segment(&seg, image.len() as u64, ram, boot::reserved(mode))?;
        segments.push(seg);
    }
    if !segments.iter().any(|s| (s.addr..s.addr + s.memsz).contains(&entry)) {
        return Err(LoadError::BadEntry(entry));
    }
    for seg in &segments {
        let data = &image[seg.offset as usize..(seg.offset + seg.filesz) as usize];
        // In range (checked above); the rest of memsz is already zero: guest
        // RAM is fresh anonymous memory.
        mem.write_slice(data, GuestAddress(seg.addr)).expect("segment checked to lie in guest RAM");
    }
    Ok(Image { mode, entry })
}

/// The file holds the segment's bytes; the segment lies in RAM, clear of the
/// VMM's boot data. Loaded at the physical address (p_paddr), as PVH does.
fn check_segment(seg: &Segment, file_len: u64, ram: u64, reserved: &[Range<u64>]) -> Result<(), LoadError> {
    if seg.filesz > seg.memsz {
        return Err(LoadError::Malformed("segment file size exceeds its memory size"));
    }
    if seg.offset.checked_add(seg.filesz).is_none_or(|end| end > file_len) {
        return Err(LoadError::Malformed("segment data beyond the end of the file"));
    }
    let end = seg.addr.checked_add(seg.memsz).ok_or(LoadError::Malformed("segment wraps around"))?;
    if end > ram {
        return Err(LoadError::OutsideRam { start: seg.addr, end, ram });
    }
    if let Some(r) = reserved.iter().find(|r| seg.memsz > 0 && seg.addr < r.end && r.start < end) {
        return Err(LoadError::Overlap { start: seg.addr, end, reserved_start: r.start, reserved_end: r.end });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 0x10_0000;

    /// A minimal ELF32 i386 executable with one PT_LOAD segment.
    fn elf32(addr: u32, filesz: u32, memsz: u32, entry: u32) -> Vec<u8> {
        let mut f = vec![0u8; 0x60];
        f[..7].copy_from_slice(b"\x7fELF\x01\x01\x01");
        f[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        f[18..20].copy_from_slice(&EM_386.to_le_bytes());
        f[24..28].copy_from_slice(&entry.to_le_bytes());
        f[28..32].copy_from_slice(&0x34u32.to_le_bytes()); // phoff
        f[42..44].copy_from_slice(&32u16.to_le_bytes());
        f[44..46].copy_from_slice(&1u16.to_le_bytes());
        let ph = 0x34;
        f[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        f[ph + 4..ph + 8].copy_from_slice(&0x54u32.to_le_bytes()); // offset
        f[ph + 12..ph + 16].copy_from_slice(&addr.to_le_bytes());
        f[ph + 16..ph + 20].copy_from_slice(&filesz.to_le_bytes());
        f[ph + 20..ph + 24].copy_from_slice(&memsz.to_le_bytes());
        f.truncate(0x54);
        f.extend(std::iter::repeat_n(0xf4, filesz.min(0x1000) as usize)); // hlt
        f
    }

    fn load_image(image: &[u8]) -> Result<Image, LoadError> {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap();
        load(image, &mem, RAM)
    }

    #[test]
    fn loads_a_valid_elf32() {
        let image = load_image(&elf32(0x1000, 16, 32, 0x1000));
        assert_eq!(image, Ok(Image { mode: Mode::Protected32, entry: 0x1000 }));
    }

    #[test]
    fn rejects_non_elf_and_foreign_elf() {
        assert_eq!(load_image(b"#!/bin/sh\n"), Err(LoadError::NotElf));
        assert_eq!(load_image(b""), Err(LoadError::NotElf));
        let mut arm = elf32(0x1000, 16, 16, 0x1000);
        arm[18] = 40; // EM_ARM
        assert_eq!(load_image(&arm), Err(LoadError::Unsupported("not an x86 executable")));
        let mut big = elf32(0x1000, 16, 16, 0x1000);
        big[5] = 2;
        assert_eq!(load_image(&big), Err(LoadError::Unsupported("big-endian")));
        assert_eq!(load_image(&elf32(0x1000, 16, 16, 0x1000)[..30]), Err(LoadError::Malformed("truncated header")));
    }

    #[test]
    fn rejects_segments_outside_ram_or_over_boot_data() {
        assert_eq!(
            load_image(&elf32(0xf_f000, 16, 0x2000, 0xf_f000)),
            Err(LoadError::OutsideRam { start: 0xf_f000, end: 0x10_1000, ram: RAM })
        );
        assert_eq!(
            load_image(&elf32(0x800, 16, 16, 0x800)),
            Err(LoadError::Overlap { start: 0x800, end: 0x810, reserved_start: 0, reserved_end: 0x1000 })
        );
        assert_eq!(
            load_image(&elf32(0xffff_f000, 16, 0x2000, 0xffff_f000)),
            Err(LoadError::OutsideRam { start: 0xffff_f000, end: 0x1_0000_1000, ram: RAM })
        );
    }

    #[test]
    fn rejects_inconsistent_headers() {
        assert_eq!(
            load_image(&elf32(0x1000, 32, 16, 0x1000)),
            Err(LoadError::Malformed("segment file size exceeds its memory size"))
        );
        let mut short = elf32(0x1000, 16, 16, 0x1000);
        short.truncate(short.len() - 1);
        assert_eq!(load_image(&short), Err(LoadError::Malformed("segment data beyond the end of the file")));
        assert_eq!(load_image(&elf32(0x1000, 16, 16, 0x3000)), Err(LoadError::BadEntry(0x3000)));
    }

    #[test]
    fn program_headers_at_the_end_of_the_address_space_are_rejected() {
        let mut far = elf32(0x1000, 16, 16, 0x1000);
        far[28..32].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        assert_eq!(load_image(&far), Err(LoadError::Malformed("program headers out of range")));
        // ELF64: a phoff that overflowed `offset + len` in the header parse.
        let mut elf64 = vec![0u8; 64];
        elf64[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        elf64[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        elf64[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        elf64[32..40].copy_from_slice(&(u64::MAX - 2).to_le_bytes()); // phoff
        elf64[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf64[56..58].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(load_image(&elf64), Err(LoadError::Malformed("program headers out of range")));
    }
}
