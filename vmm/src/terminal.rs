//! The VMM's stdin as the guest console's keyboard. On a terminal it goes to
//! raw mode (every key to the guest, Ctrl-C included) and is restored on every
//! way out, since the guard restores it on drop; Ctrl-A x quits, Ctrl-A
//! Ctrl-A sends a Ctrl-A, as in QEMU. Output processing stays on, as QEMU
//! leaves it, so the VMM's own lines still start at the left margin.

use std::os::fd::RawFd;

/// Restores the terminal's mode when dropped.
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// Raw mode on `fd` if it is a terminal; None otherwise (a pipe, a file).
    pub fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: isatty takes any fd.
        if unsafe { libc::isatty(fd) } != 1 {
            return None;
        }
        // SAFETY: a zeroed termios is valid for tcgetattr to fill.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a terminal fd and a live termios.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        // SAFETY: a live termios.
        unsafe { libc::cfmakeraw(&mut raw) };
        raw.c_oflag |= libc::OPOST | libc::ONLCR;
        // SAFETY: as above.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return None;
        }
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: the fd and the mode it had.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// The terminal's size on `fd` (cols, rows), if it is a terminal that
/// knows one.
pub fn size(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: a zeroed winsize for TIOCGWINSZ to fill; any fd.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into a live one.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } != 0 {
        return None;
    }
    Some((ws.ws_col, ws.ws_row))
}

const CTRL_A: u8 = 0x01;

/// The escape sequence's state across reads.
#[derive(Default)]
pub struct Escape {
    after_ctrl_a: bool,
}

impl Escape {
    /// Appends the bytes of `input` meant for the guest to `out`; returns
    /// true when the user asked to quit.
    pub fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.after_ctrl_a {
                self.after_ctrl_a = false;
                match b {
                    b'x' | b'X' => return true,
                    CTRL_A => out.push(CTRL_A),
                    other => out.extend_from_slice(&[CTRL_A, other]),
                }
            } else if b == CTRL_A {
                self.after_ctrl_a = true;
            } else {
                out.push(b);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_a_x_quits_and_ctrl_a_ctrl_a_sends_one() {
        let mut e = Escape::default();
        let mut out = Vec::new();
        assert!(!e.filter(b"ls\r\x01\x01", &mut out));
        assert_eq!(out, b"ls\r\x01");
        out.clear();
        // Split across reads.
        assert!(!e.filter(b"a\x01", &mut out));
        assert!(e.filter(b"x", &mut out));
        assert_eq!(out, b"a");
        let mut e = Escape::default();
        out.clear();
        assert!(!e.filter(b"\x01c", &mut out));
        assert_eq!(out, b"\x01c", "an unknown escape passes through");
    }
}
