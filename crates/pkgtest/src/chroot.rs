//! A minimal Debian 12 chroot per scenario.
//!
//! `mmdebstrap --variant=minbase --include=apt-utils,postgresql-client,libsqlite3-0`
//! (apt-utils, so that apt's `dpkg-preconfigure` hook runs config scripts
//! before dpkg starts, as on a real system) makes a tarball once; it is cached in
//! `/var/cache/lava-v1-tests/` (`LAVA_V1_CHROOT_CACHE` overrides), named
//! after a hash of the recipe, and rebuilt when the recipe changes or the
//! tarball is older than [`MAX_AGE_DAYS`].  It is unpacked once under
//! `target/tmp/pkgtest` (kept between runs while the tarball is
//! unchanged), and each scenario gets a `cp -a` copy of that.
//!
//! Mounts: `/proc` always, `/dev/pts` on request.  They are unmounted
//! before the tree is deleted, and nothing is deleted while
//! `/proc/mounts` lists anything under it (deleting a tree with a live
//! `/proc` or `/dev/pts` mount in it walks into the host's).  Trees left
//! by a killed run are cleaned the same way at the next start.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

/// The Debian release.
pub const SUITE: &str = "bookworm";
/// A cached tarball older than this is rebuilt.
pub const MAX_AGE_DAYS: u64 = 30;
/// Bump to rebuild every cache (a change in what the base holds).
const RECIPE_VERSION: u32 = 1;

/// mmdebstrap's arguments, without the output and the mirror.
fn recipe() -> Vec<String> {
    [
        "--variant=minbase",
        "--mode=root",
        // apt-utils: dpkg-preconfigure runs config scripts before dpkg
        // starts, as on a real system.  postgresql-client and
        // libsqlite3-0: the package's dependencies (the postinst backs up
        // with pg_dump and exports the V1 results into an SQLite file);
        // the scenarios install from local files only.
        "--include=apt-utils,postgresql-client,libsqlite3-0",
        // apt in the scenarios only ever reads local repositories.
        "--customize-hook=rm -f \"$1/etc/apt/sources.list\"",
        SUITE,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn key() -> String {
    let mut h = Sha256::new();
    h.update(format!("{RECIPE_VERSION}\0{}", recipe().join("\0")));
    h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The Debian mirror mmdebstrap downloads from (`LAVA_V1_DEBIAN_MIRROR`).
pub fn mirror() -> String {
    std::env::var("LAVA_V1_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into())
}

/// Where the tarball is cached.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("LAVA_V1_CHROOT_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/lava-v1-tests"), PathBuf::from)
}

/// Where the unpacked base and the scenario trees live:
/// `LAVA_V1_PKGTEST_WORK`, else `target/tmp/pkgtest` in the workspace.
pub fn work_dir() -> PathBuf {
    std::env::var_os("LAVA_V1_PKGTEST_WORK").map_or_else(
        || {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| crate::workspace_root().join("target"), PathBuf::from);
            target.join("tmp/pkgtest")
        },
        PathBuf::from,
    )
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An exclusive lock on `path` (created), held while the value lives.
fn flock(path: &Path) -> nix::fcntl::Flock<fs::File> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("lock {}: {e}", path.display()))
}

/// The cached tarball, made first if missing or stale.
pub fn tarball() -> PathBuf {
    let dir = cache_dir();
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let _lock = flock(&dir.join(".lock"));
    let path = dir.join(format!("{SUITE}-minbase-{}.tar.zst", key()));
    let fresh = fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < Duration::from_secs(MAX_AGE_DAYS * 86_400));
    if fresh {
        return path;
    }
    // Older recipes' tarballs are of no further use.
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{SUITE}-minbase-")) && e.path() != path {
            let _ = fs::remove_file(e.path());
        }
    }
    let tmp = dir.join(format!("{SUITE}-minbase-{}.tmp.tar.zst", key()));
    eprintln!("pkgtest: making the {SUITE} chroot with mmdebstrap (about a minute) into {}", path.display());
    let start = Instant::now();
    run_ok(
        Command::new("mmdebstrap").args(recipe()).arg(&tmp).arg(mirror()),
        "mmdebstrap (needs the Debian mirror; LAVA_V1_DEBIAN_MIRROR picks another)",
    );
    fs::rename(&tmp, &path).expect("move the new tarball into place");
    eprintln!("pkgtest: chroot tarball made in {:.1} s", start.elapsed().as_secs_f64());
    path
}

/// The unpacked base tree of this process (never used directly).
fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let work = work_dir();
        fs::create_dir_all(&work).expect("create the work dir");
        cleanup_stale(&work);
        let tarball = tarball();
        let _lock = flock(&work.join(".lock"));
        let base = work.join(format!("base-{}", key()));
        let marker = work.join(format!("base-{}.complete", key()));
        let newer = |a: &Path, b: &Path| -> bool {
            let t = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
            matches!((t(a), t(b)), (Some(a), Some(b)) if a >= b)
        };
        // Trees of older recipes are of no further use.
        for e in fs::read_dir(&work).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("base-") && !name.starts_with(&format!("base-{}", key())) {
                let _ = fs::remove_file(e.path());
                remove_tree(&e.path());
            }
        }
        if base.is_dir() && newer(&marker, &tarball) {
            return base;
        }
        let start = Instant::now();
        let _ = fs::remove_file(&marker);
        remove_tree(&base);
        fs::create_dir_all(&base).expect("create the base dir");
        run_ok(
            Command::new("tar")
                .arg("--zstd")
                .arg("-xpf")
                .arg(&tarball)
                .arg("-C")
                .arg(&base)
                .arg("--numeric-owner"),
            "unpack the chroot tarball",
        );
        // Quiet, plain apt output for the transcripts.
        fs::write(
            base.join("etc/apt/apt.conf.d/90pkgtest"),
            "Dpkg::Progress-Fancy \"0\";\nAPT::Color \"0\";\nDpkg::Use-Pty \"0\";\nquiet \"1\";\n",
        )
        .expect("write apt.conf.d/90pkgtest");
        fs::write(&marker, "").expect("write the marker");
        eprintln!("pkgtest: chroot unpacked in {:.1} s", start.elapsed().as_secs_f64());
        base
    })
}

/// Mount points listed in `/proc/mounts` at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .map(unescape_mount_path)
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found
}

fn unescape_mount_path(s: &str) -> PathBuf {
    // /proc/mounts escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = (b[i] == b'\\' && i + 4 <= b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 4]).ok().and_then(|o| u8::from_str_radix(o, 8).ok()))
            .flatten();
        if let Some(v) = octal {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

fn umount(path: &Path) {
    let ok = Command::new("umount").arg(path).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        // Something still has it open (a stray process): detach it.
        let _ = Command::new("umount").arg("-l").arg(path).status();
    }
}

/// Deletes a tree, after unmounting everything under it; refuses (with a
/// warning) while anything is still mounted there.
pub fn remove_tree(dir: &Path) {
    if !dir.exists() {
        return;
    }
    for m in mounts_under(dir) {
        umount(&m);
    }
    let left = mounts_under(dir);
    if !left.is_empty() {
        eprintln!("pkgtest: NOT deleting {}: still mounted there: {left:?}", dir.display());
        return;
    }
    // --one-file-system: a second guard, should a mount appear meanwhile.
    let ok =
        Command::new("rm").arg("-rf").arg("--one-file-system").arg(dir).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("pkgtest: cannot delete {}", dir.display());
    }
}

/// Removes scenario trees of processes that are gone.
fn cleanup_stale(work: &Path) {
    for e in fs::read_dir(work).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) =
            name.strip_prefix("run-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() as i32 && !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("pkgtest: removing {} left by a run that died", e.path().display());
            remove_tree(&e.path());
        }
    }
}

/// What a command in the chroot did.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line.
    pub cmd: String,
    /// Its exit status (-1: killed by a signal).
    pub code: i32,
    /// stdout and stderr, interleaved as written.
    pub out: String,
}

impl Run {
    /// Panics unless the command exited with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "`{}` exited {}, expected {code}; output:\n{}",
            self.cmd, self.code, self.out
        );
        self
    }

    /// Panics unless the command succeeded.
    #[track_caller]
    pub fn expect_ok(&self) -> &Run {
        self.expect_code(0)
    }

    /// Panics unless the output contains `text`.
    #[track_caller]
    pub fn expect_output(&self, text: &str) -> &Run {
        assert!(self.out.contains(text), "`{}`: no {text:?} in the output:\n{}", self.cmd, self.out);
        self
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scenario's chroot: a fresh copy of the base, `/proc` mounted.
#[derive(Debug)]
pub struct Chroot {
    dir: PathBuf,
    log: PathBuf,
    mounts: Vec<PathBuf>,
}

/// The environment every command starts with (`env -i`).
pub const BASE_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("HOME", "/root"),
    ("LANG", "C.UTF-8"),
    ("TERM", "dumb"),
];

impl Chroot {
    /// A fresh chroot for scenario `name`.
    pub fn new(name: &str) -> Chroot {
        let base = base();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let slug: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let dir = work_dir().join(format!("run-{}-{n}-{slug}", std::process::id()));
        let log = work_dir().join(format!("log-{slug}.txt"));
        let _ = fs::remove_file(&log);
        run_ok(
            Command::new("cp").arg("-a").arg("--reflink=auto").arg(base).arg(&dir),
            "copy the base chroot",
        );
        let mut c = Chroot { dir, log, mounts: Vec::new() };
        c.mount(&["-t", "proc", "proc"], "proc");
        c
    }

    fn mount(&mut self, args: &[&str], target: &str) {
        let path = self.path(target);
        run_ok(Command::new("mount").args(args).arg(&path), &format!("mount {}", path.display()));
        self.mounts.push(path);
    }

    /// Bind-mounts the host's `/dev/pts` (for a program on a terminal).
    pub fn mount_pts(&mut self) {
        self.mount(&["--bind", "/dev/pts"], "dev/pts");
    }

    /// The chroot's top directory on the host.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A path inside the chroot, as seen from the host.
    pub fn path(&self, inside: &str) -> PathBuf {
        self.dir.join(inside.trim_start_matches('/'))
    }

    /// The transcript of every command run so far.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Copies a host file into the chroot (creating directories).
    pub fn copy_in(&self, host: &Path, inside: &str) {
        let to = self.path(inside);
        fs::create_dir_all(to.parent().expect("a parent")).expect("create dirs in the chroot");
        fs::copy(host, &to).unwrap_or_else(|e| panic!("copy {} into the chroot: {e}", host.display()));
    }

    /// Writes a file inside the chroot (creating directories).
    pub fn write(&self, inside: &str, content: &str) {
        let to = self.path(inside);
        fs::create_dir_all(to.parent().expect("a parent")).expect("create dirs in the chroot");
        fs::write(&to, content).unwrap_or_else(|e| panic!("write {}: {e}", to.display()));
    }

    /// The command that runs `script` with `sh -c` in the chroot, in a
    /// clean environment plus `env`, stderr joined to stdout.
    pub fn command(&self, script: &str, env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new("chroot");
        cmd.arg(&self.dir).arg("/usr/bin/env").arg("-i");
        for (k, v) in BASE_ENV.iter().chain(env) {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.args(["/bin/sh", "-c", &format!("exec 2>&1\n{script}")]);
        cmd
    }

    /// Runs `script` in the chroot (stdin `/dev/null`), logs it, returns
    /// what it did.
    pub fn sh(&self, script: &str, env: &[(&str, &str)]) -> Run {
        let out = self
            .command(script, env)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run chroot: {e}"));
        // The script's own stderr is joined to stdout; chroot's (if it
        // cannot start the shell at all) comes last.
        let run = Run {
            cmd: script.to_owned(),
            code: out.status.code().unwrap_or(-1),
            out: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        };
        self.record(&run, env);
        run
    }

    /// Appends a command and its output to the transcript.
    pub fn record(&self, run: &Run, env: &[(&str, &str)]) {
        if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(&self.log) {
            let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(f, "$ {} {}\n{}[exit {}]\n", env.join(" "), run.cmd, run.out, run.code);
        }
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        for m in self.mounts.drain(..).rev() {
            umount(&m);
        }
        if std::thread::panicking() {
            eprintln!("pkgtest: transcript of the failed scenario: {}", self.log.display());
        }
        remove_tree(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/a\\040b/c"), PathBuf::from("/a b/c"));
        assert_eq!(unescape_mount_path("/plain"), PathBuf::from("/plain"));
        assert_eq!(unescape_mount_path("/end\\"), PathBuf::from("/end\\"));
    }

    #[test]
    fn the_cache_key_is_stable() {
        assert_eq!(key().len(), 12);
        assert_eq!(key(), key());
    }
}
