//! A disk as the command line names it (`--disk PATH[,readonly=on]
//! [,serial=ID][,direct=on][,engine=io_uring|sync]`, QEMU's `-drive` and
//! Cloud Hypervisor's `--disk` spelled our way), and its image opened,
//! checked and locked before the VM is built: nothing is written to it
//! until the guest writes.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::engine::EngineKind;
use super::request::{ID_BYTES, SECTOR_SIZE};

/// The most disks a VM takes (each needs a virtio-mmio slot and a GSI).
pub const MAX_DISKS: usize = 8;

/// A `--disk` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    pub path: PathBuf,
    pub read_only: bool,
    /// What GET_ID answers: up to 20 bytes.
    pub serial: Option<String>,
    /// O_DIRECT: the host's page cache is bypassed.
    pub direct: bool,
    /// None: io_uring if the host has it, else sync.
    pub engine: Option<EngineKind>,
}

fn on_off(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("--disk: {key}={value}: say on or off")),
    }
}

impl DiskConfig {
    /// Parses `PATH[,key=value...]`; a comma in the path is written `,,`.
    pub fn parse(arg: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut chars = arg.chars().peekable();
        while let Some(c) = chars.next() {
            if c == ',' {
                if chars.peek() == Some(&',') {
                    chars.next();
                    current.push(',');
                } else {
                    parts.push(std::mem::take(&mut current));
                }
            } else {
                current.push(c);
            }
        }
        parts.push(current);
        let path = parts.remove(0);
        if path.is_empty() {
            return Err(
                "--disk: no image path (--disk PATH[,readonly=on][,serial=ID][,direct=on][,engine=io_uring|sync])"
                    .into(),
            );
        }
        let mut disk = DiskConfig { path: path.into(), read_only: false, serial: None, direct: false, engine: None };
        for option in parts {
            let (key, value) = option.split_once('=').unwrap_or((&option, ""));
            match key {
                "readonly" => disk.read_only = on_off(key, value)?,
                "direct" => disk.direct = on_off(key, value)?,
                "serial" => {
                    if value.len() > ID_BYTES || !value.bytes().all(|b| b.is_ascii_graphic()) {
                        return Err(format!(
                            "--disk: serial={value}: at most {ID_BYTES} printable ASCII characters, no spaces"
                        ));
                    }
                    disk.serial = Some(value.into());
                }
                "engine" => {
                    disk.engine = Some(match value {
                        "io_uring" => EngineKind::IoUring,
                        "sync" => EngineKind::Sync,
                        _ => return Err(format!("--disk: engine={value}: say io_uring or sync")),
                    })
                }
                _ => {
                    return Err(format!(
                        "--disk: unknown option '{option}' (options: readonly=on, serial=ID, direct=on, engine=io_uring|sync)"
                    ))
                }
            }
        }
        Ok(disk)
    }
}

/// An open, locked image.
#[derive(Debug)]
pub struct Image {
    pub file: File,
    /// In bytes, a multiple of 512.
    pub size: u64,
}

/// Opens the image `config` names: a regular file or a block device, whose
/// size is whole sectors, not in use by another writer. A writable disk
/// takes an exclusive `flock`, a read-only one a shared lock, as QEMU locks
/// its images: two VMs writing one file system corrupt it.
pub fn open(config: &DiskConfig) -> Result<Image, String> {
    let path = &config.path;
    let name = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("--disk {name}: {e}"))?;
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(format!("--disk {name}: is a directory"));
    }
    if !kind.is_file() && !kind.is_block_device() {
        return Err(format!("--disk {name}: not a regular file or a block device"));
    }
    let mut options = OpenOptions::new();
    options.read(true).write(!config.read_only);
    if config.direct {
        options.custom_flags(libc::O_DIRECT);
    }
    let file = options.open(path).map_err(|e| {
        let hint = if config.direct && e.raw_os_error() == Some(libc::EINVAL) {
            " (its file system does not take O_DIRECT: leave out direct=on)"
        } else {
            ""
        };
        format!("--disk {name}: {e}{hint}")
    })?;
    let size = image_size(&file, path)?;
    if !size.is_multiple_of(SECTOR_SIZE) {
        return Err(format!("--disk {name}: its size, {size} bytes, is not a multiple of 512"));
    }
    let lock = if config.read_only { libc::LOCK_SH } else { libc::LOCK_EX };
    // SAFETY: flock on a descriptor the File owns.
    if unsafe { libc::flock(file.as_raw_fd(), lock | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => {
                return Err(format!("--disk {name}: in use by another process (it holds a lock on the image)"))
            }
            // A kernel without file locking, or a file system without
            // (some NFS): run unlocked and say so, as QEMU's locking=auto.
            Some(libc::ENOSYS) | Some(libc::ENOLCK) | Some(libc::EOPNOTSUPP) => {
                crate::log::line(format_args!("vmm: warning: --disk {name}: not locked against another writer ({e})"))
            }
            _ => return Err(format!("--disk {name}: cannot lock the image: {e}")),
        }
    }
    Ok(Image { file, size })
}

/// The size of a regular file or a block device (whose metadata says 0).
fn image_size(file: &File, path: &Path) -> Result<u64, String> {
    // SAFETY: lseek on a descriptor the File owns; the position is not used
    // (all I/O is positioned).
    let end = unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
    if end < 0 {
        return Err(format!("--disk {}: cannot tell its size: {}", path.display(), std::io::Error::last_os_error()));
    }
    Ok(end as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_parsed_and_checked() {
        let d = DiskConfig::parse("a,,b.img,readonly=on,serial=ABC-1,direct=on,engine=sync").unwrap();
        assert_eq!(
            d,
            DiskConfig {
                path: "a,b.img".into(),
                read_only: true,
                serial: Some("ABC-1".into()),
                direct: true,
                engine: Some(EngineKind::Sync)
            }
        );
        assert_eq!(DiskConfig::parse("x.img").unwrap().engine, None);
        assert_eq!(
            DiskConfig::parse("x.img,cache=none").unwrap_err(),
            "--disk: unknown option 'cache=none' (options: readonly=on, serial=ID, direct=on, engine=io_uring|sync)"
        );
        assert!(DiskConfig::parse("x.img,serial=123456789012345678901").is_err(), "21 bytes");
        assert!(DiskConfig::parse("x.img,serial=a b").is_err());
        assert_eq!(DiskConfig::parse("x.img,readonly=yes").unwrap_err(), "--disk: readonly=yes: say on or off");
        assert!(DiskConfig::parse(",readonly=on").is_err());
    }
}
