#!/usr/bin/env python3
"""Writes the seed corpora into DIR/transport, DIR/ports and DIR/block.
- transport (fuzz_targets/transport.rs): a driver that brings the console
  up and writes a buffer, and the misbehaviours of the hostile guest
  (guest/src/bin/hostile.rs) on top of it; and the inputs in
  fuzz/regressions/transport, each of which once found a bug.
- ports (fuzz_targets/ports.rs): a driver that brings the console up with
  MULTIPORT and its control queues and sends control messages: the bring-up
  Linux does, and each abuse of the hostile-ports guest
  (guest/src/bin/hostile-ports.rs).
- block (fuzz_targets/block.rs): a driver that brings the block device up
  and posts requests: every type, well formed and not, in range and not.

    fuzz/seeds.py DIR
"""
import os
import struct
import sys

DESC, AVAIL, USED, DATA = 0x1000, 0x1100, 0x1200, 0x1800


def image(descs, head=0, idx=1):
    """The 4 KiB at 0x1000: descriptor table, avail ring, a buffer."""
    img = bytearray(4096)
    for i, (addr, length, flags, nxt) in enumerate(descs):
        struct.pack_into("<QIHH", img, DESC - 0x1000 + 16 * i, addr, length, flags, nxt)
    struct.pack_into("<HHH", img, AVAIL - 0x1000, 0, idx, head)
    img[DATA - 0x1000:DATA - 0x1000 + 13] = b"Hello World!\n"
    return bytes(img)


def reg(write, offset, value=0, width=4):
    return struct.pack("<BBHI", 1 if write else 0, {1: 0, 2: 1, 4: 2, 8: 3}[width], offset, value)


def bring_up(num=16, desc=DESC, avail=AVAIL, used=USED, status=(1, 3, 0xB), ready=True, queue=1):
    ops = [reg(1, 0x070, 0)] + [reg(1, 0x070, s) for s in status[:2]]
    ops += [reg(1, 0x024, 1), reg(1, 0x020, 1), reg(1, 0x024, 0), reg(1, 0x020, 0)]
    ops += [reg(1, 0x070, s) for s in status[2:]] + [reg(0, 0x070)]
    ops += [reg(1, 0x030, queue), reg(1, 0x038, num)]
    for off, addr in ((0x080, desc), (0x090, avail), (0x0A0, used)):
        ops += [reg(1, off, addr), reg(1, off + 4, 0)]
    if ready:
        ops.append(reg(1, 0x044, 1))
    return ops + [reg(1, 0x070, 0xF)]


def no_queues():
    """Negotiation and DRIVER_OK with no queue enabled (the device goes live)."""
    ops = [reg(1, 0x070, 0), reg(1, 0x070, 1), reg(1, 0x070, 3)]
    ops += [reg(1, 0x024, 1), reg(1, 0x020, 1), reg(1, 0x024, 0), reg(1, 0x020, 0)]
    return ops + [reg(1, 0x070, 0xB), reg(1, 0x070, 0xF), reg(0, 0x070)]


def notify():
    return [reg(1, 0x050, 1), reg(0, 0x060), reg(1, 0x064, 1), reg(0, 0x070), struct.pack("<BBHI", 3, 0, 0, 0)]


HELLO = (DATA, 13, 0, 0)
NEXT, WRITE, INDIRECT = 1, 2, 4
cases = {
    "hello": (image([HELLO]), bring_up() + notify()),
    "desc-beyond-ram": (image([(0x4000_0000, 16, 0, 0)]), bring_up() + notify()),
    "desc-overflow": (image([(0xFFFF_FFFF_FFFF_FFF0, 0x100, 0, 0)]), bring_up() + notify()),
    "next-out-of-range": (image([(DATA, 13, NEXT, 19)]), bring_up() + notify()),
    "desc-loop": (image([(DATA, 13, NEXT, 1), (DATA, 13, NEXT, 0)]), bring_up() + notify()),
    "chain-too-long": (image([(DATA, 13, NEXT, (i + 1) % 16) for i in range(16)]), bring_up() + notify()),
    "write-only-desc": (image([(DATA, 13, WRITE, 0)]), bring_up() + notify()),
    "indirect": (image([(DATA, 16, INDIRECT, 0)]), bring_up() + notify()),
    "head-out-of-range": (image([HELLO], head=17), bring_up() + notify()),
    "avail-idx-jump": (image([HELLO], idx=17), bring_up() + notify()),
    "huge-chain": (image([(0, 0x1_0000, NEXT if i < 15 else 0, i + 1) for i in range(16)]), bring_up() + notify() * 8),
    "queue-size-zero": (image([HELLO]), bring_up(num=0) + notify()),
    "queue-size-not-pow2": (image([HELLO]), bring_up(num=3) + notify()),
    "queue-size-over-max": (image([HELLO]), bring_up(num=0x8000) + notify()),
    "avail-at-zero": (image([HELLO]), bring_up(avail=0) + notify()),
    "ready-before-addresses": (image([HELLO]), bring_up(ready=False) + [reg(1, 0x044, 1)] + notify()),
    "driver-ok-without-features-ok": (image([HELLO]), bring_up(status=(1, 3, 7)) + notify()),
    "disable-then-post": (image([HELLO]), bring_up() + [reg(1, 0x030, 1), reg(1, 0x044, 0)] + notify()),
    "bad-width": (image([HELLO]), [reg(0, 0x070, width=1), reg(1, 0x030, 1, 2), reg(1, 0x070, 0xFF, 1)] + bring_up() + notify()),
    "no-queues": (image([HELLO]), no_queues() + notify()),
    "needs-reset-then-post": (image([HELLO]), bring_up() + [reg(1, 0x070, 7)] + notify()),
    "emergency-write": (image([HELLO]), [reg(1, 0x108, b) for b in b"emergency\n"] + bring_up() + notify()),
}
out = os.path.join(sys.argv[1], "transport")
os.makedirs(out, exist_ok=True)
for name, (img, ops) in cases.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(img + b"".join(ops))
regressions = os.path.join(os.path.dirname(os.path.abspath(__file__)), "regressions", "transport")
for name in sorted(os.listdir(regressions)):
    with open(os.path.join(regressions, name), "rb") as src, open(os.path.join(out, name), "wb") as f:
        f.write(src.read())
print(f"seeds: {len(cases)} and {len(os.listdir(regressions))} regressions in {out}")


# The block device: requests of header (16 bytes at HDR), data, status.
HDR, BUF, STATUS = 0x1800, 0x1900, 0x1880
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WRITE_ZEROES = 0, 1, 4, 8, 11, 13


def request(kind, sector, data, descs=None, segments=()):
    """An image whose chain 0 is header + `data` (address, length, flags) + status."""
    chain = descs if descs is not None else [(HDR, 16, 0)] + data + [(STATUS, 1, WRITE)]
    img = bytearray(image([(a, l, f | (NEXT if i + 1 < len(chain) else 0), i + 1) for i, (a, l, f) in enumerate(chain)]))
    struct.pack_into("<IIQ", img, HDR - 0x1000, kind, 0, sector)
    for i, (sector, count, flags) in enumerate(segments):
        struct.pack_into("<QII", img, BUF - 0x1000 + 16 * i, sector, count, flags)
    return bytes(img)


def reused_head(img):
    """`img` with chain 0 made available twice (avail.idx 2, both entries 0)."""
    img = bytearray(img)
    struct.pack_into("<H", img, AVAIL - 0x1000 + 2, 2)
    return bytes(img)


def block_notify():
    return [reg(1, 0x050, 0), struct.pack("<BBHI", 3, 0, 0, 0), struct.pack("<BBHI", 3, 0, 0, 0), reg(0, 0x060)]


up = bring_up(queue=0)
block_cases = {
    "read": request(T_IN, 1, [(BUF, 1024, WRITE)]),
    "write": request(T_OUT, 2, [(BUF, 512, 0)]),
    "flush": request(T_FLUSH, 0, []),
    "get-id": request(T_GET_ID, 0, [(BUF, 20, WRITE)]),
    "discard": request(T_DISCARD, 0, [(BUF, 16, 0)], segments=[(0, 8, 0)]),
    "write-zeroes-unmap": request(T_WRITE_ZEROES, 0, [(BUF, 16, 0)], segments=[(8, 8, 1)]),
    "discard-past-end": request(T_DISCARD, 0, [(BUF, 16, 0)], segments=[(120, 16, 0)]),
    "header-writable": request(T_IN, 0, [], descs=[(HDR, 16, WRITE), (STATUS, 1, WRITE)]),
    "status-read-only": request(T_IN, 0, [], descs=[(HDR, 16, 0), (BUF, 512, 0)]),
    "readable-after-writable": request(T_OUT, 0, [], descs=[(HDR, 16, 0), (STATUS, 1, WRITE), (BUF, 512, 0)]),
    "length-511": request(T_IN, 0, [(BUF, 511, WRITE)]),
    "sector-past-end": request(T_IN, 128, [(BUF, 512, WRITE)]),
    "sector-overflow": request(T_OUT, 0xFFFF_FFFF_FFFF_FFFF, [(BUF, 512, 0)]),
    "huge-chain": request(T_IN, 0, [(0, 0xFFFF_FFFF, WRITE), (0, 1, WRITE)]),
    "unknown-type": request(77, 0, [(BUF, 512, 0)]),
    "header-split": request(T_IN, 0, [], descs=[(HDR, 10, 0), (HDR + 10, 6, 0), (BUF, 513, WRITE)]),
    # The hostile-disk guest's other cases (guest/src/bin/hostile-disk.rs).
    "short-header": request(T_IN, 0, [], descs=[(HDR, 8, 0), (BUF, 512, WRITE), (STATUS, 1, WRITE)]),
    "no-status": request(T_OUT, 0, [], descs=[(HDR, 16, 0), (BUF, 512, 0)]),
    "read-into-readable": request(T_IN, 0, [(BUF, 512, 0)]),
    "write-from-writable": request(T_OUT, 0, [(BUF, 512, WRITE)]),
    "data-beyond-ram": request(T_IN, 0, [(0x4000_0000, 512, WRITE)]),
    "discard-unmap": request(T_DISCARD, 0, [(BUF, 16, 0)], segments=[(0, 8, 1)]),
    "write-zeroes-bad-flags": request(T_WRITE_ZEROES, 0, [(BUF, 16, 0)], segments=[(0, 8, 4)]),
    "head-reused": reused_head(request(T_IN, 0, [(BUF, 512, WRITE)])),
}
out = os.path.join(sys.argv[1], "block")
os.makedirs(out, exist_ok=True)
for name, img in block_cases.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(img + b"".join(up + block_notify()))
print(f"seeds: {len(block_cases)} in {out}")


# The console's ports: control transmitq (3) rings at DESC/AVAIL/USED, the
# driver's messages at DATA, 16 bytes apart; control receiveq (2) rings at
# CDESC/CAVAIL/CUSED with 16 buffers of 128 bytes at CBUF.
CDESC, CAVAIL, CUSED, CBUF = 0x1400, 0x1500, 0x1600, 0x1A00
BAD_ID = 0xFFFF_FFFF
DEVICE_READY, PORT_READY, PORT_NAME, PORT_OPEN = 0, 3, 7, 6


def control(messages, lens=None, flags=0):
    """An image with `messages` (id, event, value) as chains 0.. on the control
    transmitq, and the control receiveq's buffers posted."""
    lens = lens or [8] * len(messages)
    img = bytearray(image([(DATA + 16 * i, lens[i], flags, 0) for i in range(len(messages))], idx=len(messages)))
    struct.pack_into("<H", img, AVAIL - 0x1000, 0)
    for i in range(len(messages)):
        struct.pack_into("<H", img, AVAIL - 0x1000 + 4 + 2 * i, i)
        struct.pack_into("<IHH", img, DATA - 0x1000 + 16 * i, *messages[i])
    for i in range(16):
        struct.pack_into("<QIHH", img, CDESC - 0x1000 + 16 * i, CBUF + 128 * i, 128, WRITE, 0)
        struct.pack_into("<H", img, CAVAIL - 0x1000 + 4 + 2 * i, i)
    struct.pack_into("<HH", img, CAVAIL - 0x1000, 0, 16)
    return bytes(img)


def ports_up():
    """MULTIPORT and F_SIZE taken; queues 2 and 3 set up; DRIVER_OK."""
    ops = [reg(1, 0x070, 0), reg(1, 0x070, 1), reg(1, 0x070, 3)]
    ops += [reg(1, 0x024, 1), reg(1, 0x020, 1), reg(1, 0x024, 0), reg(1, 0x020, 3)]
    ops += [reg(1, 0x070, 0xB), reg(0, 0x070), reg(0, 0x104)]
    for queue, (desc, avail, used) in ((2, (CDESC, CAVAIL, CUSED)), (3, (DESC, AVAIL, USED))):
        ops += [reg(1, 0x030, queue), reg(1, 0x038, 16)]
        for off, addr in ((0x080, desc), (0x090, avail), (0x0A0, used)):
            ops += [reg(1, off, addr), reg(1, off + 4, 0)]
        ops.append(reg(1, 0x044, 1))
    return ops + [reg(1, 0x070, 0xF)]


def kick_control():
    """Control transmitq notified, the device's news taken (messages for the
    driver delivered), the interrupt acknowledged."""
    news = struct.pack("<BBHI", 3, 0, 0, 0)
    return [reg(1, 0x050, 3), news, reg(1, 0x050, 2), news, reg(0, 0x060), reg(1, 0x064, 3)]


def flood(rounds):
    """The 16 chains made available again and again: avail.idx stored higher."""
    ops = []
    for r in range(2, rounds + 2):
        ops += [struct.pack("<BBHI", 2, 0, AVAIL, (16 * r) << 16), reg(1, 0x050, 3)]
    return ops + [struct.pack("<BBHI", 3, 0, 0, 0)]


up = [(BAD_ID, DEVICE_READY, 1), (0, PORT_READY, 1), (1, PORT_READY, 1), (2, PORT_READY, 1)]
ports_cases = {
    "bring-up": control(up),
    "port-ready-unknown": control(up + [(7, PORT_READY, 1)]),
    "port-open-unknown": control(up + [(9, PORT_OPEN, 1)]),
    "unknown-event": control(up + [(1, 99, 0)]),
    "device-event": control(up + [(1, PORT_NAME, 1)]),
    "short-header": control(up + [(0, 0, 0)], lens=[8] * 4 + [4]),
    "device-ready-0": control([(BAD_ID, DEVICE_READY, 0)]),
    "console-as-vport": control(up + [(0, PORT_OPEN, 1)]),
    "port-not-added": control([(BAD_ID, DEVICE_READY, 1), (0, PORT_READY, 1), (1, PORT_READY, 0)]),
    "flood": control([(1, PORT_READY, 1)] * 16),
    "control-writable": control(up, flags=WRITE),
    "guest-open-close": control(up + [(1, PORT_OPEN, 1), (1, PORT_OPEN, 0)]),
}
out = os.path.join(sys.argv[1], "ports")
os.makedirs(out, exist_ok=True)
for name, img in ports_cases.items():
    ops = ports_up() + kick_control() + (flood(40) if name == "flood" else [])
    with open(os.path.join(out, name), "wb") as f:
        f.write(img + b"".join(ops))
print(f"seeds: {len(ports_cases)} in {out}")
