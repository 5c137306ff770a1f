//! Counters printed by `--stats`.

use std::fmt;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub exits_mmio: u64,
    pub exits_io: u64,
    pub exits_hlt: u64,
    pub exits_other: u64,
    pub mmio_reads: u64,
    pub mmio_writes: u64,
    /// QueueNotify writes that reached the VMM (none in vhost mode).
    pub notifications: u64,
    /// QueueNotify writes that KVM turned into ioeventfd kicks (vhost mode,
    /// and the disks): no exit to the VMM.
    pub ioeventfd_notifications: Option<u64>,
    /// Times the kernel's worker slept and was woken (vhost mode).
    pub worker_wakeups: Option<u64>,
    /// Used-buffer notifications: raised by the VMM, or signalled by the kernel.
    pub used_notifications: u64,
    /// Interrupts the VMM injected (KVM_INTERRUPT, bare-metal guests).
    pub interrupts: u64,
    /// Bytes the VMM wrote out (in vhost mode the kernel does, uncounted here).
    pub console_bytes: Option<u64>,
    /// Requests the disks took.
    pub disk_requests: u64,
    /// Peak resident set size of this process, if /proc tells it.
    pub peak_rss_kib: Option<u64>,
}

/// The process's peak RSS (VmHWM). Unlike wait4's ru_maxrss, it starts afresh
/// at exec, so it does not include the parent's memory.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim().parse().ok())
}

impl Stats {
    /// Adds a vCPU's exit counts.
    pub fn add_exits(&mut self, other: &Stats) {
        self.exits_mmio += other.exits_mmio;
        self.exits_io += other.exits_io;
        self.exits_hlt += other.exits_hlt;
        self.exits_other += other.exits_other;
        self.mmio_reads += other.mmio_reads;
        self.mmio_writes += other.mmio_writes;
        self.interrupts += other.interrupts;
    }

    /// Exits to userspace, of every reason.
    pub fn exits(&self) -> u64 {
        self.exits_mmio + self.exits_io + self.exits_hlt + self.exits_other
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(f, "=== Statistics ===")?;
        writeln!(
            f,
            "exits: {} (mmio {}, io {}, hlt {}, other {})",
            self.exits(),
            self.exits_mmio,
            self.exits_io,
            self.exits_hlt,
            self.exits_other
        )?;
        writeln!(f, "mmio: {} reads, {} writes", self.mmio_reads, self.mmio_writes)?;
        writeln!(f, "queue notifications: {}", self.notifications)?;
        if let Some(kicks) = self.ioeventfd_notifications {
            writeln!(f, "ioeventfd notifications: {kicks}")?;
        }
        if let Some(wakeups) = self.worker_wakeups {
            writeln!(f, "worker wake-ups: {wakeups}")?;
        }
        write!(f, "used notifications: {}", self.used_notifications)?;
        if self.interrupts != 0 {
            write!(f, "\ninterrupts injected: {}", self.interrupts)?;
        }
        if let Some(bytes) = self.console_bytes {
            write!(f, "\nconsole bytes: {bytes}")?;
        }
        if self.disk_requests != 0 {
            write!(f, "\ndisk requests: {}", self.disk_requests)?;
        }
        if let Some(kib) = self.peak_rss_kib {
            write!(f, "\npeak RSS: {kib} KiB")?;
        }
        Ok(())
    }
}
