#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_targets/transport.rs into DIR: a driver
that brings the console up and writes a buffer, and the misbehaviours of the
hostile guest (guest/src/bin/hostile.rs) on top of it; and the inputs in
fuzz/regressions/transport, each of which once found a bug.

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


def bring_up(num=16, desc=DESC, avail=AVAIL, used=USED, status=(1, 3, 0xB), ready=True):
    ops = [reg(1, 0x070, 0)] + [reg(1, 0x070, s) for s in status[:2]]
    ops += [reg(1, 0x024, 1), reg(1, 0x020, 1), reg(1, 0x024, 0), reg(1, 0x020, 0)]
    ops += [reg(1, 0x070, s) for s in status[2:]] + [reg(0, 0x070)]
    ops += [reg(1, 0x030, 1), reg(1, 0x038, num)]
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
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, (img, ops) in cases.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(img + b"".join(ops))
regressions = os.path.join(os.path.dirname(os.path.abspath(__file__)), "regressions", "transport")
for name in sorted(os.listdir(regressions)):
    with open(os.path.join(regressions, name), "rb") as src, open(os.path.join(out, name), "wb") as f:
        f.write(src.read())
print(f"seeds: {len(cases)} and {len(os.listdir(regressions))} regressions in {out}")
