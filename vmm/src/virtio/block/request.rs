//! virtio-blk requests (VirtIO 1.2 §5.2.6): a chain is parsed and checked
//! whole before any byte moves, in two steps with two outcomes.
//! - `Request::parse`: is the chain a request at all? A 16-byte header in
//!   device-readable buffers, a status byte at the end of device-writable
//!   ones, data in the direction its type needs. A chain that is not is the
//!   driver's bug: the device needs a reset (`Malformed`).
//! - `Request::check`: can the device honour it? Lengths in whole sectors,
//!   sectors inside the capacity, no write to a read-only disk, segments and
//!   flags in range. One that cannot completes with IOERR or UNSUPP and the
//!   device goes on, as QEMU's and Linux's targets answer such requests.
//!
//! The driver may split any part over several descriptors (VERSION_1 implies
//! ANY_LAYOUT), so header, data and status are byte ranges of the chain.

use thiserror::Error;
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use super::super::chain::Buffer;

pub const SECTOR_SHIFT: u32 = 9;
pub const SECTOR_SIZE: u64 = 1 << SECTOR_SHIFT;
const HEADER_SIZE: u64 = 16;
/// `struct virtio_blk_discard_write_zeroes`.
const SEGMENT_SIZE: u64 = 16;
/// GET_ID's answer: the serial, NUL-padded.
pub const ID_BYTES: usize = 20;

pub const T_IN: u32 = 0;
pub const T_OUT: u32 = 1;
pub const T_FLUSH: u32 = 4;
pub const T_GET_ID: u32 = 8;
pub const T_DISCARD: u32 = 11;
pub const T_WRITE_ZEROES: u32 = 13;

pub const S_OK: u8 = 0;
pub const S_IOERR: u8 = 1;
pub const S_UNSUPP: u8 = 2;

/// WRITE_ZEROES may deallocate (write_zeroes_may_unmap); DISCARD must not
/// carry it (§5.2.6.2).
pub const FLAG_UNMAP: u32 = 1;

/// What the device promises in its configuration space, and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// In sectors.
    pub capacity: u64,
    pub read_only: bool,
    pub max_discard_sectors: u32,
    pub max_discard_seg: u32,
    pub max_write_zeroes_sectors: u32,
    pub max_write_zeroes_seg: u32,
}

/// A chain that is no request.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Malformed {
    #[error("request {head}: its header needs 16 device-readable bytes, the chain has {readable}")]
    ShortHeader { head: u16, readable: u64 },
    #[error("request {head}: no device-writable byte at its end for the status")]
    NoStatus { head: u16 },
    #[error("request {head}: a {kind} request with {len} device-{direction} data bytes")]
    WrongDirection { head: u16, kind: &'static str, len: u64, direction: &'static str },
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Read `data` (device-writable) from `sector`.
    In {
        sector: u64,
    },
    /// Write `data` (device-readable) at `sector`.
    Out {
        sector: u64,
    },
    Flush,
    /// The serial into `data` (device-writable).
    GetId,
    /// Segments in `data` (device-readable).
    Discard,
    WriteZeroes,
    Unknown(u32),
}

/// One range of sectors of a DISCARD or WRITE_ZEROES request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub sector: u64,
    pub sectors: u32,
    pub unmap: bool,
}

/// A parsed request: what it asks, its data's buffers, where its status goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub head: u16,
    pub kind: Kind,
    /// The data's bytes, in the chain's buffers (cut at header and status).
    pub data: Vec<Buffer>,
    pub data_len: u64,
    pub status: GuestAddress,
}

/// `len` bytes of `buffers` from byte `start` on, as buffers.
fn cut(buffers: &[Buffer], mut start: u64, mut len: u64) -> Vec<Buffer> {
    let mut out = Vec::new();
    for b in buffers {
        let blen = u64::from(b.len);
        if start >= blen {
            start -= blen;
            continue;
        }
        if len == 0 {
            break;
        }
        let n = (blen - start).min(len);
        // Inside a buffer the chain walk checked: no overflow.
        out.push(Buffer { addr: b.addr.unchecked_add(start), len: n as u32, writable: b.writable });
        len -= n;
        start = 0;
    }
    out
}

/// Reads `N` bytes at the start of `buffers`, across them.
fn gather<const N: usize>(mem: &GuestMemoryMmap, buffers: &[Buffer]) -> Result<[u8; N], vm_memory::GuestMemoryError> {
    let mut out = [0u8; N];
    let mut at = 0;
    for b in cut(buffers, 0, N as u64) {
        mem.read_slice(&mut out[at..at + b.len as usize], b.addr)?;
        at += b.len as usize;
    }
    Ok(out)
}

impl Request {
    /// Parses the chain `buffers` from `head` (walked with
    /// `Direction::ReadThenWrite`: every readable buffer comes first).
    pub fn parse(mem: &GuestMemoryMmap, head: u16, buffers: &[Buffer]) -> Result<Self, ParseError> {
        let readable: u64 = buffers.iter().filter(|b| !b.writable).map(|b| u64::from(b.len)).sum();
        let writable: u64 = buffers.iter().filter(|b| b.writable).map(|b| u64::from(b.len)).sum();
        if readable < HEADER_SIZE {
            return Err(Malformed::ShortHeader { head, readable }.into());
        }
        if writable == 0 {
            return Err(Malformed::NoStatus { head }.into());
        }
        let header: [u8; 16] = gather(mem, buffers)?;
        let kind = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
        let sector = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        let writable_start = readable;
        let status_at = cut(buffers, writable_start + writable - 1, 1)[0].addr;
        // The data: readable after the header, or writable before the status.
        let (in_data, out_data) = (writable - 1, readable - HEADER_SIZE);
        let (kind, data, name) = match kind {
            T_IN => (Kind::In { sector }, Some(true), "read"),
            T_OUT => (Kind::Out { sector }, Some(false), "write"),
            T_FLUSH => (Kind::Flush, None, "flush"),
            T_GET_ID => (Kind::GetId, Some(true), "get-id"),
            T_DISCARD => (Kind::Discard, Some(false), "discard"),
            T_WRITE_ZEROES => (Kind::WriteZeroes, Some(false), "write-zeroes"),
            other => (Kind::Unknown(other), None, ""),
        };
        let wrong = |len, direction| Malformed::WrongDirection { head, kind: name, len, direction };
        let (data, data_len) = match (kind.clone(), data) {
            // Unknown types get UNSUPP whatever they carry.
            (Kind::Unknown(_), _) => (Vec::new(), 0),
            (_, Some(true)) if out_data != 0 => return Err(wrong(out_data, "readable").into()),
            (_, Some(false)) if in_data != 0 => return Err(wrong(in_data, "writable").into()),
            (_, None) if out_data != 0 => return Err(wrong(out_data, "readable").into()),
            (_, None) if in_data != 0 => return Err(wrong(in_data, "writable").into()),
            (_, None) => (Vec::new(), 0),
            (_, Some(true)) => (cut(buffers, writable_start, in_data), in_data),
            (_, Some(false)) => (cut(buffers, HEADER_SIZE, out_data), out_data),
        };
        Ok(Request { head, kind, data, data_len, status: status_at })
    }

    /// Whether the device can do what the request asks on a disk with
    /// `limits`: `Err(status)` if not. DISCARD and WRITE_ZEROES segments
    /// are read from guest memory here, and returned.
    pub fn check(&self, mem: &GuestMemoryMmap, limits: &Limits) -> Result<Vec<Segment>, u8> {
        let in_range = |sector: u64, len: u64| {
            len.is_multiple_of(SECTOR_SIZE)
                && sector.checked_add(len >> SECTOR_SHIFT).is_some_and(|end| end <= limits.capacity)
        };
        match self.kind {
            Kind::In { sector } if in_range(sector, self.data_len) => Ok(Vec::new()),
            Kind::Out { .. } if limits.read_only => Err(S_IOERR),
            Kind::Out { sector } if in_range(sector, self.data_len) => Ok(Vec::new()),
            Kind::In { .. } | Kind::Out { .. } => Err(S_IOERR),
            Kind::Flush | Kind::GetId => Ok(Vec::new()),
            Kind::Discard | Kind::WriteZeroes => {
                let discard = self.kind == Kind::Discard;
                let (max_sectors, max_seg) = if discard {
                    (limits.max_discard_sectors, limits.max_discard_seg)
                } else {
                    (limits.max_write_zeroes_sectors, limits.max_write_zeroes_seg)
                };
                if limits.read_only
                    || self.data_len == 0
                    || !self.data_len.is_multiple_of(SEGMENT_SIZE)
                    || self.data_len / SEGMENT_SIZE > u64::from(max_seg)
                {
                    return Err(S_IOERR);
                }
                let mut segments = Vec::new();
                for i in 0..self.data_len / SEGMENT_SIZE {
                    let raw: [u8; 16] =
                        gather(mem, &cut(&self.data, i * SEGMENT_SIZE, SEGMENT_SIZE)).map_err(|_| S_IOERR)?;
                    let sector = u64::from_le_bytes(raw[0..8].try_into().expect("8 bytes"));
                    let sectors = u32::from_le_bytes(raw[8..12].try_into().expect("4 bytes"));
                    let flags = u32::from_le_bytes(raw[12..16].try_into().expect("4 bytes"));
                    // §5.2.6.2: unknown flags, or unmap on a discard, are unsupported.
                    if flags & !FLAG_UNMAP != 0 || (discard && flags & FLAG_UNMAP != 0) {
                        return Err(S_UNSUPP);
                    }
                    if sectors > max_sectors || !in_range(sector, u64::from(sectors) << SECTOR_SHIFT) {
                        return Err(S_IOERR);
                    }
                    segments.push(Segment { sector, sectors, unmap: flags & FLAG_UNMAP != 0 });
                }
                Ok(segments)
            }
            Kind::Unknown(_) => Err(S_UNSUPP),
        }
    }
}

/// Why a chain could not be taken as a request.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("{0}")]
    Malformed(#[from] Malformed),
    #[error("guest memory access failed: {0}")]
    Memory(String),
}

impl From<vm_memory::GuestMemoryError> for ParseError {
    fn from(e: vm_memory::GuestMemoryError) -> Self {
        ParseError::Memory(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        capacity: 100,
        read_only: false,
        max_discard_sectors: 64,
        max_discard_seg: 2,
        max_write_zeroes_sectors: 64,
        max_write_zeroes_seg: 1,
    };

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
    }

    fn header(mem: &GuestMemoryMmap, at: u64, kind: u32, sector: u64) {
        mem.write_slice(&kind.to_le_bytes(), GuestAddress(at)).unwrap();
        mem.write_slice(&sector.to_le_bytes(), GuestAddress(at + 8)).unwrap();
    }

    fn r(addr: u64, len: u32) -> Buffer {
        Buffer { addr: GuestAddress(addr), len, writable: false }
    }

    fn w(addr: u64, len: u32) -> Buffer {
        Buffer { addr: GuestAddress(addr), len, writable: true }
    }

    #[test]
    fn a_read_has_its_data_between_header_and_status() {
        let mem = mem();
        header(&mem, 0x1000, T_IN, 7);
        let req = Request::parse(&mem, 3, &[r(0x1000, 16), w(0x2000, 1024), w(0x3000, 1)]).unwrap();
        assert_eq!(req.kind, Kind::In { sector: 7 });
        assert_eq!(req.check(&mem, &LIMITS), Ok(Vec::new()));
        assert_eq!((req.data, req.data_len, req.status), (vec![w(0x2000, 1024)], 1024, GuestAddress(0x3000)));
    }

    #[test]
    fn header_data_and_status_may_share_and_span_descriptors() {
        let mem = mem();
        // The header split 10 + 6, the data's first 10 bytes in its second part.
        mem.write_slice(&T_OUT.to_le_bytes(), GuestAddress(0x1000)).unwrap();
        mem.write_slice(&5u64.to_le_bytes()[..2], GuestAddress(0x1008)).unwrap();
        mem.write_slice(&5u64.to_le_bytes()[2..], GuestAddress(0x2000)).unwrap();
        let req = Request::parse(&mem, 0, &[r(0x1000, 10), r(0x2000, 16), r(0x3000, 502), w(0x4000, 1)]).unwrap();
        assert_eq!(req.kind, Kind::Out { sector: 5 });
        assert_eq!(req.data, vec![r(0x2006, 10), r(0x3000, 502)]);
        // A read whose status shares the last descriptor with its data.
        header(&mem, 0x1000, T_IN, 0);
        let req = Request::parse(&mem, 0, &[r(0x1000, 16), w(0x4000, 513)]).unwrap();
        assert_eq!((req.data, req.status), (vec![w(0x4000, 512)], GuestAddress(0x4200)));
    }

    #[test]
    fn malformed_chains_are_the_drivers_bug() {
        let mem = mem();
        header(&mem, 0x1000, T_IN, 0);
        assert_eq!(
            Request::parse(&mem, 1, &[w(0x1000, 16), w(0x2000, 1)]),
            Err(Malformed::ShortHeader { head: 1, readable: 0 }.into())
        );
        assert_eq!(Request::parse(&mem, 1, &[r(0x1000, 17)]), Err(Malformed::NoStatus { head: 1 }.into()));
        assert_eq!(
            Request::parse(&mem, 1, &[r(0x1000, 16), r(0x2000, 512), w(0x3000, 1)]),
            Err(Malformed::WrongDirection { head: 1, kind: "read", len: 512, direction: "readable" }.into())
        );
        header(&mem, 0x1000, T_FLUSH, 0);
        assert_eq!(
            Request::parse(&mem, 1, &[r(0x1000, 16), w(0x3000, 2)]),
            Err(Malformed::WrongDirection { head: 1, kind: "flush", len: 1, direction: "writable" }.into())
        );
    }

    #[test]
    fn requests_the_device_cannot_honour_get_a_status() {
        let mem = mem();
        let check = |kind, sector, data: u32| {
            header(&mem, 0x1000, kind, sector);
            let data = if kind == T_IN { w(0x2000, data) } else { r(0x2000, data) };
            Request::parse(&mem, 0, &[r(0x1000, 16), data, w(0x9000, 1)]).unwrap().check(&mem, &LIMITS)
        };
        assert_eq!(check(T_IN, 0, 511), Err(S_IOERR), "not whole sectors");
        assert_eq!(check(T_IN, 99, 512), Ok(Vec::new()), "the last sector");
        assert_eq!(check(T_IN, 99, 1024), Err(S_IOERR), "past the end");
        assert_eq!(check(T_OUT, 100, 512), Err(S_IOERR), "at the end");
        assert_eq!(check(T_OUT, u64::MAX, 512), Err(S_IOERR), "sector + length overflows");
        assert_eq!(check(77, 0, 512), Err(S_UNSUPP), "unknown type");
        let ro = Limits { read_only: true, ..LIMITS };
        header(&mem, 0x1000, T_OUT, 0);
        let req = Request::parse(&mem, 0, &[r(0x1000, 16), r(0x2000, 512), w(0x9000, 1)]).unwrap();
        assert_eq!(req.check(&mem, &ro), Err(S_IOERR), "write to a read-only disk");
    }

    #[test]
    fn discard_segments_are_checked_one_by_one() {
        let mem = mem();
        let seg = |at: u64, sector: u64, sectors: u32, flags: u32| {
            mem.write_slice(&sector.to_le_bytes(), GuestAddress(at)).unwrap();
            mem.write_slice(&sectors.to_le_bytes(), GuestAddress(at + 8)).unwrap();
            mem.write_slice(&flags.to_le_bytes(), GuestAddress(at + 12)).unwrap();
        };
        let check = |kind, segments: u32| {
            header(&mem, 0x1000, kind, 0);
            Request::parse(&mem, 0, &[r(0x1000, 16), r(0x2000, segments * 16), w(0x9000, 1)])
                .unwrap()
                .check(&mem, &LIMITS)
        };
        seg(0x2000, 0, 8, 0);
        seg(0x2010, 90, 10, 0);
        assert_eq!(
            check(T_DISCARD, 2),
            Ok(vec![
                Segment { sector: 0, sectors: 8, unmap: false },
                Segment { sector: 90, sectors: 10, unmap: false }
            ])
        );
        seg(0x2010, 91, 10, 0);
        assert_eq!(check(T_DISCARD, 2), Err(S_IOERR), "second segment past the end");
        assert_eq!(check(T_DISCARD, 3), Err(S_IOERR), "more segments than max_discard_seg");
        seg(0x2000, 0, 65, 0);
        assert_eq!(check(T_DISCARD, 1), Err(S_IOERR), "more sectors than max_discard_sectors");
        seg(0x2000, 0, 8, FLAG_UNMAP);
        assert_eq!(check(T_DISCARD, 1), Err(S_UNSUPP), "unmap on a discard");
        assert_eq!(check(T_WRITE_ZEROES, 1), Ok(vec![Segment { sector: 0, sectors: 8, unmap: true }]));
        seg(0x2000, 0, 8, 4);
        assert_eq!(check(T_WRITE_ZEROES, 1), Err(S_UNSUPP), "an unknown flag");
    }
}
