//! The device against real files and both engines, driven through a mock
//! split queue: what reaches the file, what the driver gets back.

use std::io::{Read, Seek, SeekFrom, Write};

use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::desc::{split::Descriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::disk::{DiskConfig, Image};
use super::engine::EngineKind;
use super::request::*;
use super::*;

const NEXT: u16 = VRING_DESC_F_NEXT as u16;
const WRITE: u16 = VRING_DESC_F_WRITE as u16;

struct Rig {
    mem: GuestMemoryMmap,
    queue: Queue,
    block: Block,
    file: std::fs::File,
    posted: u16,
    /// Next free descriptor.
    desc: u16,
}

fn rig(engine: EngineKind, sectors: u64, read_only: bool) -> (Rig, MockSplitQueue<'static, GuestMemoryMmap>) {
    rig_in(&std::env::temp_dir(), engine, sectors, read_only)
}

fn rig_in(
    dir: &std::path::Path,
    engine: EngineKind,
    sectors: u64,
    read_only: bool,
) -> (Rig, MockSplitQueue<'static, GuestMemoryMmap>) {
    let mem: &'static GuestMemoryMmap =
        Box::leak(Box::new(GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()));
    let vq = MockSplitQueue::new(mem, 16);
    let queue = vq.create_queue().unwrap();
    let mut file = tempfile(dir);
    file.write_all(&vec![0xaa; (sectors * 512) as usize]).unwrap();
    let config = DiskConfig {
        path: "test.img".into(),
        read_only,
        serial: Some("SERIAL-7".into()),
        direct: false,
        engine: Some(engine),
    };
    let image = Image { file: file.try_clone().unwrap(), size: sectors * 512 };
    let block = Block::new(config, image, mem, 0).unwrap();
    (Rig { mem: mem.clone(), queue, block, file, posted: 0, desc: 0 }, vq)
}

fn tempfile(dir: &std::path::Path) -> std::fs::File {
    let path = dir.join(format!("vmm-block-test-{}-{:?}", std::process::id(), std::thread::current().id()));
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    file
}

impl Rig {
    /// Posts a request: header at 0x1000 + 0x100 * head, then `bufs`
    /// (address, length, writable), then the status byte.
    fn post(&mut self, vq: &MockSplitQueue<GuestMemoryMmap>, kind: u32, sector: u64, bufs: &[(u64, u32, bool)]) -> u16 {
        let head = self.desc;
        let hdr = 0x1000 + 0x100 * u64::from(head);
        self.mem.write_obj(kind, GuestAddress(hdr)).unwrap();
        self.mem.write_obj(sector, GuestAddress(hdr + 8)).unwrap();
        let mut chain = vec![(hdr, 16, 0)];
        chain.extend(bufs.iter().map(|&(a, l, w)| (a, l, if w { WRITE } else { 0 })));
        chain.push((hdr + 0x80, 1, WRITE));
        for (i, &(addr, len, flags)) in chain.iter().enumerate() {
            let last = i + 1 == chain.len();
            let d = Descriptor::new(addr, len, flags | if last { 0 } else { NEXT }, self.desc + 1);
            vq.desc_table().store(self.desc, RawDescriptor::from(d)).unwrap();
            self.desc += 1;
        }
        vq.avail().ring().ref_at(self.posted.into()).unwrap().store(head);
        self.posted += 1;
        vq.avail().idx().store(self.posted);
        head
    }

    fn status(&self, head: u16) -> u8 {
        self.mem.read_obj(GuestAddress(0x1000 + 0x100 * u64::from(head) + 0x80)).unwrap()
    }

    /// Runs the queue until nothing is in flight, as the event loop would.
    fn run(&mut self) -> Result<(), QueueError> {
        loop {
            let run = self.block.process_queue(0, &mut self.queue, &self.mem)?;
            if !run.blocked {
                return Ok(());
            }
            let mut fd = libc::pollfd { fd: self.block.engine.fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one live pollfd.
            unsafe { libc::poll(&mut fd, 1, 1000) };
            self.block.poll_news();
        }
    }
}

fn engines() -> [EngineKind; 2] {
    [EngineKind::Sync, EngineKind::IoUring]
}

#[test]
fn writes_reach_the_file_and_read_back_with_flush_and_get_id() {
    for engine in engines() {
        let (mut r, vq) = rig(engine, 64, false);
        r.mem.write_slice(&[0x11; 1024], GuestAddress(0x8_0000)).unwrap();
        r.mem.write_slice(&[0x22; 512], GuestAddress(0x9_0000)).unwrap();
        // Several in flight at once: two writes, then a flush, one kick.
        let w1 = r.post(&vq, T_OUT, 2, &[(0x8_0000, 1024, false)]);
        let w2 = r.post(&vq, T_OUT, 63, &[(0x9_0000, 512, false)]);
        r.run().unwrap();
        let f = r.post(&vq, T_FLUSH, 0, &[]);
        let id = r.post(&vq, T_GET_ID, 0, &[(0xa_0000, 20, true)]);
        r.run().unwrap();
        assert_eq!([r.status(w1), r.status(w2), r.status(f), r.status(id)], [S_OK; 4], "{engine:?}");
        let mut serial = [0u8; 20];
        r.mem.read_slice(&mut serial, GuestAddress(0xa_0000)).unwrap();
        assert_eq!(&serial, b"SERIAL-7\0\0\0\0\0\0\0\0\0\0\0\0");
        let mut disk = Vec::new();
        r.file.seek(SeekFrom::Start(0)).unwrap();
        r.file.read_to_end(&mut disk).unwrap();
        assert_eq!(&disk[1024..2048], &[0x11; 1024][..], "{engine:?}");
        assert_eq!(&disk[63 * 512..], &[0x22; 512][..]);
        assert_eq!(&disk[..1024], &[0xaa; 1024][..]);
        // Read it back, across two buffers; the used length counts the data and the status.
        let rd = r.post(&vq, T_IN, 2, &[(0xb_0000, 512, true), (0xc_0000, 512, true)]);
        r.run().unwrap();
        assert_eq!(r.status(rd), S_OK);
        let mut back = [0u8; 512];
        r.mem.read_slice(&mut back, GuestAddress(0xc_0000)).unwrap();
        assert_eq!(back, [0x11; 512]);
        assert_eq!(vq.used().idx().load(), 5);
        let used = vq.used().ring().ref_at(4).unwrap().load();
        assert_eq!((used.id(), used.len()), (u32::from(rd), 1025));
        assert_eq!(r.block.requests, 5);
    }
}

#[test]
fn requests_it_cannot_honour_complete_with_a_status_and_the_device_goes_on() {
    for engine in engines() {
        let (mut r, vq) = rig(engine, 8, true);
        let past = r.post(&vq, T_IN, 8, &[(0x8_0000, 512, true)]);
        let odd = r.post(&vq, T_IN, 0, &[(0x8_0000, 511, true)]);
        let ro = r.post(&vq, T_OUT, 0, &[(0x8_0000, 512, false)]);
        let unknown = r.post(&vq, 99, 0, &[]);
        let ok = r.post(&vq, T_IN, 7, &[(0x8_0000, 512, true)]);
        r.run().unwrap();
        assert_eq!(
            [r.status(past), r.status(odd), r.status(ro), r.status(unknown), r.status(ok)],
            [S_IOERR, S_IOERR, S_IOERR, S_UNSUPP, S_OK]
        );
    }
}

#[test]
fn discard_and_write_zeroes_reach_the_file() {
    for engine in engines() {
        let (mut r, vq) = rig(engine, 16, false);
        // Write zeroes over sectors 1..3 (no unmap), discard 8..16.
        r.mem.write_obj(1u64, GuestAddress(0x8_0000)).unwrap();
        r.mem.write_obj(2u32, GuestAddress(0x8_0008)).unwrap();
        r.mem.write_obj(0u32, GuestAddress(0x8_000c)).unwrap();
        r.mem.write_obj(8u64, GuestAddress(0x8_1000)).unwrap();
        r.mem.write_obj(8u32, GuestAddress(0x8_1008)).unwrap();
        r.mem.write_obj(0u32, GuestAddress(0x8_100c)).unwrap();
        let wz = r.post(&vq, T_WRITE_ZEROES, 0, &[(0x8_0000, 16, false)]);
        let dc = r.post(&vq, T_DISCARD, 0, &[(0x8_1000, 16, false)]);
        r.run().unwrap();
        assert_eq!([r.status(wz), r.status(dc)], [S_OK, S_OK], "{engine:?}");
        let mut disk = Vec::new();
        r.file.seek(SeekFrom::Start(0)).unwrap();
        r.file.read_to_end(&mut disk).unwrap();
        assert_eq!(disk.len(), 16 * 512, "the size is kept");
        assert!(disk[512..1536].iter().all(|&b| b == 0));
        assert!(disk[..512].iter().chain(&disk[1536..4096]).all(|&b| b == 0xaa));
        assert!(disk[4096..].iter().all(|&b| b == 0), "discarded sectors read as zeroes from a file");
    }
}

#[test]
fn write_zeroes_are_written_where_the_file_system_has_no_zero_range() {
    // tmpfs punches holes but has no FALLOC_FL_ZERO_RANGE.
    let shm = std::path::Path::new("/dev/shm");
    if !shm.is_dir() {
        return;
    }
    for engine in engines() {
        let (mut r, vq) = rig_in(shm, engine, 16, false);
        for round in 0..2 {
            let sector = 1 + 4 * round;
            r.mem.write_obj(sector, GuestAddress(0x8_0000)).unwrap();
            r.mem.write_obj(2u32, GuestAddress(0x8_0008)).unwrap();
            r.mem.write_obj(0u32, GuestAddress(0x8_000c)).unwrap();
            let wz = r.post(&vq, T_WRITE_ZEROES, 0, &[(0x8_0000, 16, false)]);
            r.run().unwrap();
            assert_eq!(r.status(wz), S_OK, "{engine:?}, round {round}");
        }
        assert!(!r.block.zero_range, "learnt on the first request");
        let mut disk = Vec::new();
        r.file.seek(SeekFrom::Start(0)).unwrap();
        r.file.read_to_end(&mut disk).unwrap();
        let zero = |s: usize| disk[s * 512..(s + 1) * 512].iter().all(|&b| b == 0);
        assert_eq!(
            (0..16).map(zero).collect::<Vec<_>>(),
            (0..16).map(|s| [1, 2, 5, 6].contains(&s)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_malformed_request_stops_the_queue() {
    let (mut r, vq) = rig(EngineKind::IoUring, 8, false);
    // The header in a device-writable descriptor.
    vq.desc_table().store(0, RawDescriptor::from(Descriptor::new(0x1000, 16, WRITE | NEXT, 1))).unwrap();
    vq.desc_table().store(1, RawDescriptor::from(Descriptor::new(0x1080, 1, WRITE, 0))).unwrap();
    vq.avail().ring().ref_at(0).unwrap().store(0);
    vq.avail().idx().store(1);
    assert_eq!(
        r.run(),
        Err(QueueError::Invalid("request 0: its header needs 16 device-readable bytes, the chain has 0".into()))
    );
}

#[test]
fn a_used_ring_over_the_avail_index_cannot_hold_a_run_for_ever() {
    // The used flags at the avail index: disabling notifications writes 1
    // there (no new chain), enabling writes 0 (a chain seems to be there),
    // so the usual re-check would find work on every pass and never any.
    let (mut r, vq) = rig(EngineKind::Sync, 8, false);
    let head = r.post(&vq, T_FLUSH, 0, &[]);
    // An available ring at 2 mod 4 with one chain, the used ring 2 bytes on.
    let avail = 0x4_0002u64;
    r.mem.write_obj([0u16, 1, head], GuestAddress(avail)).unwrap();
    r.queue.set_ready(false);
    r.queue.set_avail_ring_address(Some(avail as u32), Some(0));
    r.queue.set_used_ring_address(Some(avail as u32 + 2), Some(0));
    r.queue.set_ready(true);
    assert_eq!((r.queue.avail_ring(), r.queue.used_ring()), (avail, avail + 2));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let run = r.block.process_queue(0, &mut r.queue, &r.mem);
        let _ = tx.send(run.map(|run| run.more));
        // The rig (its device and engine) goes with this thread.
        std::mem::forget(r);
    });
    let more = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the run ends");
    assert_eq!(more, Ok(true), "the run stops at its budget of passes and asks to run again");
}
