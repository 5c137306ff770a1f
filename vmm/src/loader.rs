//! ELF loader for i386 (ELF32) and x86-64 (ELF64) executables: the class
//! picks the entry mode. rust-vmm's linux-loader handles ELF64 kernels only,
//! so both classes are parsed here; the parse is small and every field a file
//! could lie about is checked.

use std::ops::Range;

use thiserror::Error;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::boot::{self, Mode};

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
    let bytes = image.get(at..at + len).ok_or(LoadError::Malformed("truncated header"))?;
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
        let at = phoff
            .checked_add(i * phentsize)
            .and_then(|at| usize::try_from(at).ok())
            .ok_or(LoadError::Malformed("program headers out of range"))?;
        if field(image, at, 4)? as u32 != PT_LOAD {
            continue;
        }
        let seg = match mode {
            Mode::Protected32 => Segment {
                offset: field(image, at + 4, 4)?,
                addr: field(image, at + 12, 4)?,
                filesz: field(image, at + 16, 4)?,
                memsz: field(image, at + 20, 4)?,
            },
            Mode::Long64 => Segment {
                offset: field(image, at + 8, 8)?,
                addr: field(image, at + 24, 8)?,
                filesz: field(image, at + 32, 8)?,
                memsz: field(image, at + 40, 8)?,
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
