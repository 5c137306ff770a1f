//! A console port beyond port 0 (`--port name=NAME,socket=PATH|pty|file=PATH`):
//! what the command line says, checked before anything is created, and the
//! port's state while the VM runs.
//!
//! Names are 1 to 64 characters of `A-Z a-z 0-9 . _ -`: Linux shows a name
//! in `/sys/class/virtio-ports/vportNpM/name` and udev makes it a link
//! `/dev/virtio-ports/NAME`, where a `/`, a space or a control character
//! would make a path of another meaning or none; 64 holds the names guest
//! agents use (`org.qemu.guest_agent.0`).

use std::path::PathBuf;

use super::link::Link;
use super::stream::{Receive, Transmit};

/// Ports besides the console: QEMU's default `max_ports` for a
/// virtio-serial device is 31, and 32 ports make 64 queues.
pub const MAX_PORTS: usize = 31;
pub const NAME_MAX: usize = 64;
/// Host bytes held for a port until the guest posts receive buffers.
pub const INPUT_MAX: usize = 64 * 1024;

const USAGE: &str = "--port name=NAME,socket=PATH | name=NAME,pty | name=NAME,file=PATH";

/// Where a port's host side is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Socket(PathBuf),
    Pty,
    /// Output only.
    File(PathBuf),
}

/// A `--port` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub name: String,
    pub backend: Backend,
}

fn check_name(name: &str) -> Result<(), String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-';
    if name.is_empty() || name.len() > NAME_MAX || !name.bytes().all(allowed) {
        return Err(format!("--port: name={name}: a port name is 1 to {NAME_MAX} characters of A-Z a-z 0-9 . _ -"));
    }
    Ok(())
}

impl PortSpec {
    /// Parses `name=NAME,socket=PATH`, `name=NAME,pty` or
    /// `name=NAME,file=PATH`, in any order; a comma in PATH is written `,,`.
    pub fn parse(arg: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut chars = arg.chars().peekable();
        while let Some(c) = chars.next() {
            if c == ',' && chars.peek() == Some(&',') {
                chars.next();
                current.push(',');
            } else if c == ',' {
                parts.push(std::mem::take(&mut current));
            } else {
                current.push(c);
            }
        }
        parts.push(current);
        let (mut name, mut backend) = (None, None);
        for part in &parts {
            let (key, value) = match part.split_once('=') {
                Some((key, value)) => (key, Some(value)),
                None => (part.as_str(), None),
            };
            let new = match (key, value) {
                ("name", Some(value)) => {
                    check_name(value)?;
                    if name.replace(value.to_string()).is_some() {
                        return Err(format!("--port {arg}: name= given twice"));
                    }
                    continue;
                }
                ("socket", Some(path)) if !path.is_empty() => Backend::Socket(path.into()),
                ("file", Some(path)) if !path.is_empty() => Backend::File(path.into()),
                ("pty", None) => Backend::Pty,
                _ => return Err(format!("--port {arg}: {part:?} is not understood ({USAGE})")),
            };
            if backend.replace(new).is_some() {
                return Err(format!("--port {arg}: one of socket=, pty or file= ({USAGE})"));
            }
        }
        match (name, backend) {
            (Some(name), Some(backend)) => Ok(PortSpec { name, backend }),
            (None, _) => Err(format!("--port {arg}: no name= ({USAGE})")),
            (_, None) => Err(format!("--port {arg}: no socket=, pty or file= ({USAGE})")),
        }
    }

    /// Checks the ports together: how many, and every name once.
    pub fn check_all(specs: &[PortSpec]) -> Result<(), String> {
        if specs.len() > MAX_PORTS {
            return Err(format!("--port: at most {MAX_PORTS} ports"));
        }
        for (i, spec) in specs.iter().enumerate() {
            if specs[..i].iter().any(|s| s.name == spec.name) {
                return Err(format!("--port: the name {} is given twice", spec.name));
            }
        }
        Ok(())
    }
}

/// A port while the VM runs.
pub struct Port {
    pub name: String,
    pub link: Link,
    pub tx: Transmit,
    pub rx: Receive,
    /// The driver said PORT_READY: it takes messages about the port.
    pub ready: bool,
    /// The driver's last PORT_OPEN: a process in the guest has it open.
    pub guest_open: bool,
    /// A file output's failure, once reported.
    pub failure_reported: bool,
}

impl Port {
    pub fn new(name: String, link: Link) -> Self {
        Port {
            name,
            link,
            tx: Transmit::default(),
            rx: Receive::new(INPUT_MAX),
            ready: false,
            guest_open: false,
            failure_reported: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_names_are_checked() {
        assert_eq!(
            PortSpec::parse("name=org.qemu.guest_agent.0,socket=/tmp/a,,b").unwrap(),
            PortSpec { name: "org.qemu.guest_agent.0".into(), backend: Backend::Socket("/tmp/a,b".into()) }
        );
        assert_eq!(PortSpec::parse("pty,name=t").unwrap(), PortSpec { name: "t".into(), backend: Backend::Pty });
        assert_eq!(PortSpec::parse("name=log,file=out.txt").unwrap().backend, Backend::File("out.txt".into()));
        let bad_name = "--port: name=a/b: a port name is 1 to 64 characters of A-Z a-z 0-9 . _ -";
        assert_eq!(PortSpec::parse("name=a/b,pty").unwrap_err(), bad_name);
        assert!(PortSpec::parse(&format!("name={},pty", "x".repeat(65))).is_err());
        assert!(PortSpec::parse(&format!("name={},pty", "x".repeat(64))).is_ok());
        assert!(PortSpec::parse("name=,pty").is_err());
        assert!(PortSpec::parse("name=a b,pty").is_err());
        assert_eq!(
            PortSpec::parse("name=a").unwrap_err(),
            "--port name=a: no socket=, pty or file= (--port name=NAME,socket=PATH | name=NAME,pty | name=NAME,file=PATH)"
        );
        assert!(PortSpec::parse("socket=/x").is_err());
        assert!(PortSpec::parse("name=a,pty,file=x").is_err());
        assert!(PortSpec::parse("name=a,pty=1").is_err());
        assert!(PortSpec::parse("name=a,socket=").is_err());
        let two = [PortSpec::parse("name=a,pty").unwrap(), PortSpec::parse("name=a,file=x").unwrap()];
        assert_eq!(PortSpec::check_all(&two).unwrap_err(), "--port: the name a is given twice");
        let many: Vec<_> = (0..32).map(|i| PortSpec::parse(&format!("name=p{i},pty")).unwrap()).collect();
        assert_eq!(PortSpec::check_all(&many).unwrap_err(), "--port: at most 31 ports");
        assert!(PortSpec::check_all(&many[..31]).is_ok());
    }
}
