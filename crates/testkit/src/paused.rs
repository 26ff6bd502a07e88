//! Runs paused at a fault point (`LAVA_V1_FAULT_PAUSE`), killed or resumed
//! there, and a small disk to fill: what the interruption tests of the
//! command and of the maintainer scripts share.

/// Starts `cmd` (a `lava-v1` or a maintainer script) paused at the fault
/// point `point`; returns once it is there, with a reader of the rest of
/// its stderr.
pub fn spawn_paused_command(
    mut cmd: std::process::Command,
    point: &str,
    resume: Option<&std::path::Path>,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader};
    cmd.env("LAVA_V1_FAULT_PAUSE", point)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if let Some(file) = resume {
        cmd.env("LAVA_V1_FAULT_RESUME", file);
    }
    let mut child = cmd.spawn().expect("start the paused run");
    let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut seen = String::new();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(&format!("paused at {point}")) {
                    break;
                }
            }
            _ => panic!("the run ended before reaching {point}: {seen} ({:?})", child.wait()),
        }
    }
    let rest = std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    });
    (child, rest)
}

/// SIGKILLs a paused run and waits until its database backend is gone.
pub fn kill_run(inst: &crate::Instance<'_>, mut child: std::process::Child) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGKILL).unwrap();
    assert!(!child.wait().unwrap().success());
    assert!(inst.wait_for_lava_v1_sessions_to_end(), "the killed run's backend is still there");
}

/// A tmpfs of the given size on a temporary directory (root only),
/// unmounted when dropped, whether the test passed or not.
pub struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`64m`) on a new temporary directory.
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount a tmpfs on {}", dir.path().display());
        Tmpfs(dir)
    }

    /// Fills it up (another writer taking every byte left) with one
    /// file, whose path it returns: remove it to make room again.
    pub fn fill(&self) -> std::path::PathBuf {
        let filler = self.path().join("filler");
        let filled = std::process::Command::new("dd")
            .args(["if=/dev/zero", "bs=1M", "status=none"])
            .arg(format!("of={}", filler.display()))
            .status()
            .expect("run dd");
        assert!(!filled.success(), "dd stops when the disk is full");
        filler
    }

    /// Where it is mounted.
    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0.path()).status();
    }
}

/// The postinst, as dpkg runs it for `configure 2017.10-1`, under the
/// `DPKG_ROOT` `root` (see [`crate::Instance::dpkg_root`]).
pub fn postinst_under(root: &std::path::Path) -> std::process::Command {
    let bin = crate::program("lava-server-postinst");
    let mut c = std::process::Command::new(bin);
    c.args(["configure", "2017.10-1"])
        .env("DPKG_ROOT", root)
        .env("DPKG_MAINTSCRIPT_NAME", "postinst")
        .env("DPKG_MAINTSCRIPT_PACKAGE", "lava-server")
        .env_remove("DEBIAN_HAS_FRONTEND")
        .env_remove("LAVA_V1_FAULT_PAUSE")
        .stdin(std::process::Stdio::null());
    c
}
