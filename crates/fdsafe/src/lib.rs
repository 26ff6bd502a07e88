//! File-system access through open directory descriptors, for programs
//! that run as root in directories other users can write into: a planted
//! or swapped-in symbolic link never redirects them.
//!
//! * [`remove`] removes (or measures) trees below a root directory opened
//!   once ([`remove::open_root`], [`remove::Remover`]): descriptor-relative,
//!   never following a link, never crossing a mount point, never leaving
//!   the root, with a bounded number of open descriptors however deep the
//!   tree, and a report of everything it had to leave.
//! * [`fd`] opens a regular file below a directory without following
//!   links ([`fd::open_in`]), and makes anonymous in-memory files
//!   ([`fd::memory_file`]) that one child program inherits
//!   ([`fd::inherit`]).
//!
//! The library never prints; it logs what it leaves with `log`.

pub mod fd;
pub mod remove;

use std::path::PathBuf;

/// A root directory could not be opened, or its descriptor duplicated.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the directory `{}`", path.display())]
pub struct Error {
    /// The directory, as given.
    pub path: PathBuf,
    /// The OS error (for a refused symbolic link, `PermissionDenied` with
    /// the reason).
    #[source]
    pub source: std::io::Error,
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
