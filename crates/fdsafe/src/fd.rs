//! Descriptor plumbing: opening a file relative to a directory without
//! following links, anonymous memory files, and handing an open
//! descriptor to one child program.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// Whether `name` is a plain relative path: one or more normal
/// components separated by `/` — not empty, not absolute, no `.` or `..`,
/// no empty component, no NUL.
pub fn is_plain_relative(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\0')
        && name.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

fn invalid(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, reason)
}

#[allow(unsafe_code)]
fn openat(dir: RawFd, name: &str, flags: OFlag) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::openat(Some(dir), name, flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, Mode::empty())
        .map_err(|e| {
            if e == nix::errno::Errno::ELOOP {
                invalid(format!("`{name}` is a symbolic link"))
            } else {
                io::Error::from(e)
            }
        })?;
    // SAFETY: `fd` was just returned by a successful openat, so it is an
    // open descriptor that nothing else in this process owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A descriptor of its own for the directory `dir` is open on: `.`
/// opened relative to it, so the very same directory, never a path looked
/// up again (for another thread, say, as a [`nix::dir::Dir`] cannot be
/// shared).
pub fn reopen_dir(dir: &impl AsRawFd) -> io::Result<OwnedFd> {
    openat(dir.as_raw_fd(), ".", OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// Opens the regular file `name` (see [`is_plain_relative`]) under the
/// directory `dir` for reading: each component relative to the one before
/// it, never following a symbolic link (`O_NOFOLLOW`), and without
/// blocking on a FIFO or a device; anything but a regular file is refused.
pub fn open_in(dir: &Path, name: &str) -> io::Result<File> {
    if !is_plain_relative(name) {
        return Err(invalid(format!("{name:?} is not a plain relative file name")));
    }
    let at: OwnedFd = File::open(dir)?.into();
    open_at(&at, name)
}

/// [`open_in`] below a directory already open (a media root opened once
/// with [`crate::remove::open_root`], say): every component is opened
/// relative to the one before it, `O_NOFOLLOW`, so nothing outside `dir`
/// is ever reached, whatever links the tree holds.
pub fn open_at(dir: &impl AsRawFd, name: &str) -> io::Result<File> {
    if !is_plain_relative(name) {
        return Err(invalid(format!("{name:?} is not a plain relative file name")));
    }
    let mut parts = name.split('/').peekable();
    let mut at: Option<OwnedFd> = None;
    while let Some(part) = parts.next() {
        let base = at.as_ref().map_or(dir.as_raw_fd(), |fd| fd.as_raw_fd());
        if parts.peek().is_some() {
            at = Some(openat(base, part, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?);
        } else {
            let file = File::from(openat(base, part, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)?);
            if !file.metadata()?.is_file() {
                return Err(invalid(format!("{name:?} is not a regular file")));
            }
            return Ok(file);
        }
    }
    unreachable!("a plain relative name has at least one component")
}

/// An anonymous file in memory (`memfd_create`), mode 0600, holding
/// `contents` and never on any file system: gone with its last descriptor.
/// Close-on-exec; [`inherit`] hands it to one child.
pub fn memory_file(name: &str, contents: &[u8]) -> io::Result<File> {
    let cname = CString::new(name).map_err(|_| invalid("NUL in a memory file's name".into()))?;
    let fd = nix::sys::memfd::memfd_create(&cname, nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)?;
    let mut file = File::from(fd);
    // libpq reads a passfile only when it is a regular file that group
    // and others cannot read.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    Ok(file)
}

/// Makes `cmd`'s child inherit `file` at the same descriptor number (every
/// other child of this process still never sees it), and returns the
/// path the child opens it by: `/proc/self/fd/<n>`.
pub fn inherit(cmd: &mut Command, file: &File) -> String {
    let fd = file.as_raw_fd();
    clear_cloexec_in_child(cmd, fd);
    format!("/proc/self/fd/{fd}")
}

#[allow(unsafe_code)]
fn clear_cloexec_in_child(cmd: &mut Command, fd: RawFd) {
    // SAFETY: the closure runs in the child between fork and exec; it only
    // calls fcntl, which is async-signal-safe, and touches no memory of
    // the parent's other threads.  `fd` stays open in the parent for as
    // long as `cmd` may be spawned: the caller holds the `File`.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn plain_relative_names() {
        for ok in ["a", "jobs/x.copy", "media.tar", ".hidden"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in ["", "/dev/zero", "../x", "a/../b", "./a", "a//b", "a/", "a\0b", ".", ".."] {
            assert!(!is_plain_relative(bad), "{bad:?}");
        }
    }

    #[test]
    fn opens_only_regular_files_and_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("jobs")).unwrap();
        std::fs::write(dir.path().join("jobs/a.copy"), "rows\n").unwrap();
        let mut text = String::new();
        open_in(dir.path(), "jobs/a.copy").unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "rows\n");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("jobs"), dir.path().join("dirlink")).unwrap();
        nix::unistd::mkfifo(&dir.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        for bad in ["link", "dirlink/a.copy", "fifo", "jobs", "/etc/passwd", "../x", "missing"] {
            assert!(open_in(dir.path(), bad).is_err(), "{bad}");
        }
        let root = crate::remove::open_root(dir.path()).unwrap();
        let mut text = String::new();
        open_at(&root, "jobs/a.copy").unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "rows\n");
        for bad in ["link", "dirlink/a.copy", "fifo", "jobs", "/etc/passwd", "../x", "missing"] {
            assert!(open_at(&root, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_memory_file_reaches_only_the_child_it_is_given_to() {
        let file = memory_file("test", b"secret\n").unwrap();
        let mut cmd = Command::new("cat");
        let path = inherit(&mut cmd, &file);
        let out = cmd.arg(&path).output().unwrap();
        assert_eq!(out.stdout, b"secret\n");
        let out = Command::new("cat").arg(&path).output().unwrap();
        assert!(!out.status.success(), "another child must not see it");
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}
