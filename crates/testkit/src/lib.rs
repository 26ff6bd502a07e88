//! Test support for the V1 removal: a private Apache ([`apache`]), the benchmarks' hand-written
//! baselines ([`baseline`]), the export benchmark ([`bench_export`]), throwaway PostgreSQL clusters
//! ([`cluster`]), seeded LAVA 2017.10 instances ([`instance`]), hostile media trees ([`hostile`]),
//! a pseudo-terminal to answer questions on ([`pty`]) and exact comparisons of whole databases
//! ([`world`]).
//!
//! Test code: it panics with a clear message instead of returning errors.
#![allow(clippy::print_stderr, clippy::print_stdout)]

pub mod apache;
pub mod baseline;
pub mod bench_export;
pub mod cluster;
pub mod hostile;
pub mod instance;
pub mod measure;
pub mod paused;
pub mod pty;
pub mod world;

pub use cluster::Cluster;
pub use instance::{Instance, Seed};

/// The workspace's built program `name` (`lava-v1`, `lava-server-postinst`,
/// …), beside the running test or tool in the same target profile
/// directory.  Every test and tool finds the programs it runs this way.
pub fn program(name: &str) -> std::path::PathBuf {
    let me = std::env::current_exe().expect("the running program's path");
    let mut dir = me.parent().expect("a directory").to_owned();
    // Test binaries live in <profile>/deps, programs in <profile>.
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace's programs first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// The environment variable that turns every skipped test into a failure
/// (`scripts/test` sets it when it runs as root, as CI does).
pub const NO_SKIP_VAR: &str = "LAVA_V1_NO_SKIP";

/// Whether a test that needs `what` (root, say) can run here: `None` if
/// it can.  Otherwise it says so in the test output and returns the
/// reason, and the caller returns; with [`NO_SKIP_VAR`]`=1` it fails
/// instead, so that a run that must run everything never counts a skip as
/// a pass.
pub fn cannot_run(test: &str, why: Option<String>) -> Option<String> {
    let why = why?;
    if std::env::var_os(NO_SKIP_VAR).is_some_and(|v| v == "1") {
        panic!("{test} cannot run here ({why}), and {NO_SKIP_VAR}=1 forbids skipping it");
    }
    eprintln!("SKIPPED {test}: {why}");
    Some(why)
}

/// [`cannot_run`] for a test that needs root.
pub fn needs_root(test: &str) -> bool {
    cannot_run(test, (!nix::unistd::geteuid().is_root()).then(|| "it needs root".to_owned())).is_some()
}

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
