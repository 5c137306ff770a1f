//! A port's host side: a Unix socket the VMM listens on (one client at a
//! time; the client's connect and disconnect are the host's PORT_OPEN 1
//! and 0), a pty (open from the start: the VMM holds its slave, so a
//! program that opens and closes it neither loses bytes nor ends the
//! port), or a file (output only). Sockets and ptys are non-blocking and
//! watched by the device's own epoll instance, which the event loop sees
//! as one `DeviceEvent::News` fd: a client that comes and goes changes
//! that set, not the loop's. Neither direction ever waits: guest bytes
//! wait in a bounded buffer for the client to take them, and the port's
//! transmitq stops while it is full; the host's bytes are read only while
//! the port's receive side has room.
//!
//! In vhost mode (`in_kernel`) the kernel moves a connection's bytes both
//! ways: the link only accepts clients and watches each for its hang-up,
//! which ends the connection once the kernel has read all the client sent
//! (nothing left unread in the socket).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::stream::{Receive, Sink};
use crate::output::Output;
use crate::virtio::QueueError;
use crate::warn;

/// Guest bytes held for a client that has not taken them yet.
pub const OUT_MAX: usize = 64 * 1024;

/// An epoll instance of the device's own.
pub struct Watch {
    fd: OwnedFd,
}

impl Watch {
    pub fn new() -> io::Result<Self> {
        // SAFETY: no pointers; the new descriptor is checked and owned.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        Ok(Watch { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Watches `fd` for `events` (level-triggered), reported as `token`.
    pub fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: our epoll fd, a live fd, a live event; the result is checked.
        if unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// What is ready now, without waiting.
    pub fn ready(&self, events: &mut [libc::epoll_event]) -> usize {
        // SAFETY: a live array of `len` events; no wait.
        let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), events.len() as libc::c_int, 0) };
        n.max(0) as usize
    }
}

/// Tokens: port `p`'s listener is `2p`, its connection `2p + 1`.
pub fn token(port: usize, conn: bool) -> u64 {
    2 * port as u64 + u64::from(conn)
}

enum Kind {
    Socket { listener: UnixListener, path: PathBuf, listening: bool },
    Pty { _slave: File },
    File { out: Output },
}

/// In vhost mode, the files the kernel reads a port's host bytes from and
/// writes its guest bytes to (receiveq's, transmitq's); none detaches.
pub type KernelFiles = (Option<RawFd>, Option<RawFd>);

/// What handling a link's readiness changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    pub connected: bool,
    pub disconnected: bool,
    /// Host bytes were queued for the guest.
    pub input: bool,
    /// Held guest bytes went out: a stopped transmitq may go on.
    pub room: bool,
}

pub struct Link {
    kind: Kind,
    /// The socket's client, or the pty's master.
    conn: Option<File>,
    /// Guest bytes waiting for `conn`.
    out: Vec<u8>,
    /// The epoll events `conn` is registered for, if it is.
    registered: Option<u32>,
    /// The client hung up: what it has not read is dropped.
    hung_up: bool,
    /// A pty's master failed to read (its slave is held open, so it should
    /// not): it is not watched for input any more, rather than reported for
    /// ever.
    input_failed: bool,
    /// Guest bytes dropped: no client, or one that left before taking them.
    pub dropped: u64,
    /// The kernel reads and writes the connection (vhost mode).
    kernel: bool,
    /// In vhost mode: the client hung up with bytes the kernel has not read
    /// yet; the connection ends when it has (`settle`).
    pub closing: bool,
}

impl Link {
    /// Listens on `path`, replacing a socket left there (as QEMU does); any
    /// other file there is refused.
    pub fn socket(path: &Path) -> io::Result<Self> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "a file that is not a socket is there"));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(Link::new(Kind::Socket { listener, path: path.to_path_buf(), listening: false }, None))
    }

    /// A new pty in raw mode; returns it and its slave's path.
    pub fn pty() -> io::Result<(Self, PathBuf)> {
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC;
        // SAFETY: no pointers; the descriptor is checked and owned.
        let master = unsafe { libc::posix_openpt(flags) };
        if master < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        let master = unsafe { File::from_raw_fd(master) };
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: a pty master; `name` is a live buffer of its length.
        let ok = unsafe {
            libc::grantpt(master.as_raw_fd()) == 0
                && libc::unlockpt(master.as_raw_fd()) == 0
                && libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) == 0
        };
        if !ok {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: ptsname_r wrote a NUL-terminated string.
        let path = PathBuf::from(unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned());
        let slave = std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open(&path)?;
        // SAFETY: a zeroed termios for tcgetattr to fill; a terminal fd.
        unsafe {
            let mut mode: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(slave.as_raw_fd(), &mut mode) != 0 {
                return Err(io::Error::last_os_error());
            }
            // Bytes pass unchanged: no echo, no line discipline, no CR/LF mapping.
            libc::cfmakeraw(&mut mode);
            if libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &mode) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok((Link::new(Kind::Pty { _slave: slave }, Some(master)), path))
    }

    /// Output only, into `out` (started by the caller once every argument
    /// checked out).
    pub fn file(out: Output) -> Self {
        Link::new(Kind::File { out }, None)
    }

    fn new(kind: Kind, conn: Option<File>) -> Self {
        Link {
            kind,
            conn,
            out: Vec::new(),
            registered: None,
            hung_up: false,
            input_failed: false,
            dropped: 0,
            kernel: false,
            closing: false,
        }
    }

    /// Leaves the connection's bytes to the kernel (vhost mode); only
    /// sockets and files can be, as the kernel writes only to what cannot
    /// block it.
    pub fn in_kernel(&mut self) -> Result<(), &'static str> {
        if matches!(self.kind, Kind::Pty { .. }) {
            return Err("a pty port is not supported with --vhost (the kernel does not write to a terminal); use socket= or file=");
        }
        self.kernel = true;
        Ok(())
    }

    /// In vhost mode, the files the kernel reads the host's bytes from and
    /// writes the guest's to: the client's socket (while one is connected),
    /// a file's output.
    pub fn kernel_files(&self) -> KernelFiles {
        match &self.kind {
            Kind::Socket { .. } if self.closing => (None, None),
            Kind::Socket { .. } => {
                let fd = self.conn.as_ref().map(AsRawFd::as_raw_fd);
                (fd, fd)
            }
            Kind::File { out } => (None, out.file().map(AsRawFd::as_raw_fd)),
            Kind::Pty { .. } => (None, None),
        }
    }

    /// Whether the host side is open (a client is connected; a pty and a
    /// file always are).
    pub fn host_connected(&self) -> bool {
        match self.kind {
            Kind::Socket { .. } => self.conn.is_some(),
            Kind::Pty { .. } | Kind::File { .. } => true,
        }
    }

    /// Whether the host can send the guest anything through this link.
    pub fn has_input(&self) -> bool {
        !matches!(self.kind, Kind::File { .. })
    }

    /// The file output, which the event loop watches for room and the VMM
    /// drains at the end.
    pub fn output(&self) -> Option<&Output> {
        match &self.kind {
            Kind::File { out } => Some(out),
            _ => None,
        }
    }

    /// Guest bytes not yet taken by the client.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Registers what the link waits for with `watch`: the listener, or the
    /// pty's master.
    pub fn start(&mut self, watch: &Watch, port: usize, room: usize) -> io::Result<()> {
        if let Kind::Socket { listener, listening, .. } = &mut self.kind {
            watch.ctl(libc::EPOLL_CTL_ADD, listener.as_raw_fd(), libc::EPOLLIN as u32, token(port, false))?;
            *listening = true;
        }
        self.sync(watch, port, room);
        Ok(())
    }

    /// Registers the connection for what the link can act on now: input
    /// while the receive side has `room`, output while bytes wait. A client
    /// that hung up with no room left is not watched (its hang-up would be
    /// reported for ever) until there is room to read what it left.
    pub fn sync(&mut self, watch: &Watch, port: usize, room: usize) {
        let Some(conn) = &self.conn else { return };
        let mut want = 0;
        if self.kernel {
            // Level-triggered: a client that hung up is reported until it
            // is dropped, so not while the kernel reads what it left.
            if !self.closing {
                want |= libc::EPOLLRDHUP as u32;
            }
        } else {
            if room > 0 && self.has_input() && !self.input_failed {
                want |= libc::EPOLLIN as u32;
            }
            if !self.out.is_empty() && !self.hung_up {
                want |= libc::EPOLLOUT as u32;
            }
        }
        let fd = conn.as_raw_fd();
        let result = match (self.registered, want) {
            (None, 0) => Ok(()),
            (Some(_), 0) => watch.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0),
            (None, _) => watch.ctl(libc::EPOLL_CTL_ADD, fd, want, token(port, true)),
            (Some(have), _) if have == want => Ok(()),
            (Some(_), _) => watch.ctl(libc::EPOLL_CTL_MOD, fd, want, token(port, true)),
        };
        match result {
            Ok(()) => self.registered = (want != 0).then_some(want),
            Err(e) => warn!("console: port {port}: cannot watch its connection: {e}"),
        }
    }

    /// Acts on readiness of the listener (`conn` false) or the connection.
    pub fn ready(&mut self, watch: &Watch, port: usize, conn: bool, rx: &mut Receive) -> Changes {
        let mut changes = Changes::default();
        if !conn {
            self.accept(watch, port, &mut changes);
        } else if self.kernel {
            // A hang-up (or an error) of the client's socket.
            self.closing = true;
            changes.disconnected = self.settle();
        } else {
            if self.conn.is_some() {
                self.read(rx, &mut changes);
            }
            if self.conn.is_some() && !self.out.is_empty() {
                changes.room |= self.flush();
            }
        }
        if changes.disconnected {
            self.disconnect(watch, port);
        }
        self.sync(watch, port, rx.room());
        changes
    }

    /// In vhost mode, whether a client that hung up is done with: the
    /// kernel has read all it sent (or the socket cannot say).
    pub fn settle(&mut self) -> bool {
        let Some(conn) = self.conn.as_ref().filter(|_| self.closing) else { return false };
        let mut unread: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through a live pointer.
        let failed = unsafe { libc::ioctl(conn.as_raw_fd(), libc::FIONREAD, &mut unread) } != 0;
        failed || unread == 0
    }

    fn accept(&mut self, watch: &Watch, port: usize, changes: &mut Changes) {
        let Kind::Socket { listener, listening, .. } = &mut self.kind else { return };
        if self.conn.is_some() {
            return;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = stream.set_nonblocking(true) {
                    warn!("console: port {port}: a client could not be made non-blocking ({e}); closed");
                    return;
                }
                // One client at a time: later ones wait in the backlog.
                let _ = watch.ctl(libc::EPOLL_CTL_DEL, listener.as_raw_fd(), 0, 0);
                *listening = false;
                self.conn = Some(File::from(OwnedFd::from(stream)));
                self.hung_up = false;
                changes.connected = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // It would be reported again at once, for ever: the port
                // takes no more clients.
                let _ = watch.ctl(libc::EPOLL_CTL_DEL, listener.as_raw_fd(), 0, 0);
                *listening = false;
                warn!("console: port {port}: accept: {e}; no more clients");
            }
        }
    }

    /// Reads what the receive side has room for; end of file or an error
    /// ends the connection.
    fn read(&mut self, rx: &mut Receive, changes: &mut Changes) {
        let Some(conn) = &mut self.conn else { return };
        let mut buf = [0u8; 16 * 1024];
        // A bounded number of reads: the budget of one event.
        for _ in 0..8 {
            let want = rx.room().min(buf.len());
            if want == 0 {
                return;
            }
            match conn.read(&mut buf[..want]) {
                Ok(0) => {
                    match self.kind {
                        Kind::Socket { .. } => changes.disconnected = true,
                        _ => self.input_failed = true,
                    }
                    return;
                }
                Ok(n) => {
                    rx.queue_input(&buf[..n]);
                    changes.input = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => return,
                Err(e) => {
                    if matches!(self.kind, Kind::Socket { .. }) {
                        changes.disconnected = true;
                    } else {
                        warn!("console: pty: read: {e}; no more input from it");
                        self.input_failed = true;
                    }
                    return;
                }
            }
        }
    }

    /// Writes held guest bytes to the connection; returns whether any went.
    fn flush(&mut self) -> bool {
        let Some(conn) = &mut self.conn else { return false };
        let mut wrote = 0;
        while wrote < self.out.len() {
            match conn.write(&self.out[wrote..]) {
                Ok(0) => break,
                Ok(n) => wrote += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // The client went away: what it did not take is lost
                    // to it, as to any reader that leaves.
                    self.hung_up = true;
                    self.dropped += (self.out.len() - wrote) as u64;
                    wrote = self.out.len();
                }
            }
        }
        self.out.drain(..wrote);
        wrote > 0
    }

    /// The client left (in vhost mode: once `settle` said so): the
    /// listener takes the next.
    pub fn disconnect(&mut self, watch: &Watch, port: usize) {
        if let Some(conn) = self.conn.take() {
            if self.registered.take().is_some() {
                let _ = watch.ctl(libc::EPOLL_CTL_DEL, conn.as_raw_fd(), 0, 0);
            }
        }
        self.dropped += self.out.len() as u64;
        self.out.clear();
        self.hung_up = false;
        self.closing = false;
        if let Kind::Socket { listener, listening, .. } = &mut self.kind {
            match watch.ctl(libc::EPOLL_CTL_ADD, listener.as_raw_fd(), libc::EPOLLIN as u32, token(port, false)) {
                Ok(()) => *listening = true,
                Err(e) => warn!("console: port {port}: cannot listen again: {e}"),
            }
        }
    }

    /// After a transmitq run: sends what it left, and watches for room if
    /// the client did not take it all.
    pub fn send(&mut self, watch: &Watch, port: usize, room: usize) {
        if self.conn.is_some() && !self.out.is_empty() && !self.hung_up {
            self.flush();
        }
        self.sync(watch, port, room);
    }

    /// Tries to write what is held, without waiting; returns whether there
    /// is nothing left to wait for. A socket's client may still read (the
    /// VMM waits for it as for stdout's reader); a pty's bytes go with the
    /// pty when the VMM ends, read or not, so a pty nobody opened never
    /// holds the VMM's exit.
    pub fn drain(&mut self) -> bool {
        if self.conn.is_some() && !self.hung_up {
            self.flush();
        }
        self.out.is_empty() || self.conn.is_none() || self.hung_up || matches!(self.kind, Kind::Pty { .. })
    }

    /// Gives up on held bytes (the VM ended and the client does not read).
    pub fn abandon(&mut self) {
        self.dropped += self.out.len() as u64;
        self.out.clear();
    }

    /// What the link is, for the state dump.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Socket { path, listening, .. } => format!(
                "socket {}, {}",
                path.display(),
                if self.closing {
                    "a client hung up, its last bytes not yet read"
                } else if self.conn.is_some() {
                    "a client connected"
                } else if *listening {
                    "listening"
                } else {
                    "not listening"
                }
            ),
            Kind::Pty { .. } => "pty".into(),
            Kind::File { out } => format!("file ({} bytes waiting)", out.pending()),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Kind::Socket { path, .. } = &self.kind {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A port's transmitq sink: the file's output, or the held bytes of a
/// connection. With no client, bytes are dropped (QEMU's virtserialport
/// does the same: a host that is not there reads nothing).
pub struct PortSink<'a>(pub &'a mut Link);

impl Sink for PortSink<'_> {
    fn take(&mut self, mem: &GuestMemoryMmap, addr: GuestAddress, len: usize) -> Result<usize, QueueError> {
        let link = &mut *self.0;
        if let Kind::File { out } = &mut link.kind {
            return out.take(mem, addr, len);
        }
        if link.conn.is_none() || link.hung_up {
            link.dropped += len as u64;
            return Ok(len);
        }
        if link.out.len() >= OUT_MAX {
            link.flush();
        }
        let n = len.min(OUT_MAX - link.out.len());
        let start = link.out.len();
        link.out.resize(start + n, 0);
        if let Err(e) = mem.read_slice(&mut link.out[start..], addr) {
            link.out.truncate(start);
            return Err(QueueError::Memory(e.to_string()));
        }
        Ok(n)
    }
}
