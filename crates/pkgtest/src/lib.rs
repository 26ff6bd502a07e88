//! Package tests for lava-server 2017.12-1: the real `.deb`, installed,
//! upgraded, aborted, retried and purged with the real apt, dpkg and
//! debconf inside a minimal Debian 12 chroot, the way dpkg's functional
//! tests and dbconfig-common's autopkgtests exercise maintainer scripts.
//!
//! * [`chroot`]: the chroot, made once with mmdebstrap, cached as a
//!   tarball, and copied fresh for every scenario; `/proc` (and
//!   `/dev/pts` for a terminal) are mounted in it and always unmounted
//!   before the tree is deleted.
//! * [`debs`]: the package under test (built with `scripts/build-deb`
//!   unless `LAVA_V1_DEB` names one) and the stand-in packages the tests
//!   build from plain files with `dpkg-deb -b`.
//! * [`inspect`]: what the assertions look at: dpkg's status, the debconf
//!   database, file trees.
//!
//! Every dpkg, apt and debconf command runs inside the chroot; the host's
//! dpkg database is never used.  The PostgreSQL clusters run on the host
//! (`lava-v1-testkit`); the chroot shares the host's network, so the
//! stand-in's `instance.conf` points at `127.0.0.1:<port>`.
//!
//! Test code: it panics with a clear message instead of returning errors.

#![allow(clippy::print_stderr)]

pub mod chroot;
pub mod debs;
pub mod inspect;

use std::path::PathBuf;
use std::time::Instant;

pub use chroot::Chroot;

/// The workspace's top directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// Whether the package tests can run here: they need root (chroot, mount).
/// Returns the reason when they cannot.
pub fn unavailable() -> Option<String> {
    if std::env::var_os("LAVA_V1_SKIP_PKGTEST").is_some_and(|v| v == "1") {
        return Some("LAVA_V1_SKIP_PKGTEST=1".into());
    }
    if !nix::unistd::geteuid().is_root() {
        return Some("they need root (chroot and mount); scripts/test runs them in CI".into());
    }
    None
}

/// Prints how long a scenario took when it ends (passed or failed).
#[derive(Debug)]
pub struct Timer {
    name: String,
    start: Instant,
}

impl Timer {
    /// Starts timing `name`.
    pub fn start(name: &str) -> Timer {
        eprintln!("pkgtest: {name}: started");
        Timer { name: name.to_owned(), start: Instant::now() }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        let outcome = if std::thread::panicking() { "FAILED" } else { "ok" };
        eprintln!("pkgtest: {}: {outcome} in {:.1} s", self.name, self.start.elapsed().as_secs_f64());
    }
}
