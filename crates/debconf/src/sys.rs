//! The only `unsafe` code of the crate: file descriptor plumbing for the
//! confmodule start-up (`exec 3>&1; exec 1>&2` in the shell confmodule).
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, RawFd};

/// `dup2(old, new)`, retried on `EINTR`.
pub(crate) fn dup2(old: RawFd, new: RawFd) -> io::Result<()> {
    loop {
        // SAFETY: dup2 takes plain integers and has no memory-safety
        // preconditions; an invalid `old` yields EBADF. Replacing `new` is
        // the intent: the fds touched here (1 and 3) are not owned by any
        // Rust object (std's stdout handle writes to whatever fd 1 is).
        let r = unsafe { libc::dup2(old, new) };
        if r >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// A new close-on-exec duplicate of `fd` (numbered 10 or above), owned as
/// a [`File`]. `fd` itself stays open and inheritable.
pub(crate) fn dup_cloexec(fd: RawFd) -> io::Result<File> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes plain integers and has no
    // memory-safety preconditions; a closed `fd` yields EBADF.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` was just returned by a successful F_DUPFD_CLOEXEC, so it
    // is an open descriptor that nothing else in this process owns; the
    // File takes sole ownership and closes it on drop.
    Ok(unsafe { File::from_raw_fd(new) })
}

/// Sets `FD_CLOEXEC` on `fd`, so that programs this process execs do not
/// inherit it.
pub(crate) fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(F_GETFD/F_SETFD) takes plain integers and has no
    // memory-safety preconditions; a closed `fd` yields EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
