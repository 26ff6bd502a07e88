//! Test support for the V1 removal: a private Apache ([`apache`]), throwaway PostgreSQL clusters
//! ([`cluster`]), seeded LAVA 2017.10 instances ([`instance`]), hostile media trees ([`hostile`]),
//! a pseudo-terminal to answer questions on ([`pty`]) and exact comparisons of whole databases
//! ([`world`]).
//!
//! Test code: it panics with a clear message instead of returning errors.
#![allow(clippy::print_stderr, clippy::print_stdout)]

pub mod apache;
pub mod cluster;
pub mod hostile;
pub mod instance;
pub mod pty;
pub mod world;

pub use cluster::Cluster;
pub use instance::{Instance, Seed};

/// Runs the shell command `cleanup` once this process is gone, however it
/// ends (a killed test run included): for servers and trees that must not
/// outlive the tests that started them.  Detached on purpose.
pub(crate) fn when_this_process_is_gone(cleanup: &str, what: &str) {
    use std::os::unix::process::CommandExt;
    let script = format!("while kill -0 {} 2>/dev/null; do sleep 1; done; {cleanup}", std::process::id());
    #[allow(clippy::zombie_processes)]
    // In a process group of its own, so that a signal to the whole group
    // of this process (a stopped test run) does not take it along.
    std::process::Command::new("sh")
        .process_group(0)
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn the {what} watchdog: {e}"));
}
