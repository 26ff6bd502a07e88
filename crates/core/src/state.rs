//! The state directory (`/var/lib/lava-server/v1-removal` by default): an
//! exclusive lock so two runs never work on one instance at once, and an
//! append-only journal of every step.  Nothing here ever holds a password.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use crate::{Error, Result};

/// The journal's file name in the state directory.
const JOURNAL: &str = "journal.log";
/// The file naming the last verified backup (shown by the report).
pub const LAST_BACKUP: &str = "last-backup";

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

/// Held while a run works on the instance; released on drop (and by the
/// kernel if the process dies, so a killed run never leaves a stale lock).
#[derive(Debug)]
pub struct Lock {
    _file: Flock<File>,
}

impl StateDir {
    /// The directory at `path` (created on first write, mode 0700).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateDir { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the directory, mode 0700 (missing parents get the usual
    /// 0755), or tightens an existing one to 0700: it holds the journal,
    /// the decision and the reports.  Every writer of the state directory
    /// goes through here.  A symbolic link in its place is refused, never
    /// followed.
    pub fn create(&self) -> Result<()> {
        let err = |source| Error::State { path: self.path.clone(), source };
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o755).create(parent).map_err(err)?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(err(e)),
            _ => {}
        }
        // Made by us just now or long ago, by anyone: 0700 from here on.
        // (A new one is 0700 already, unless the umask took bits away.)
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(&self.path)
            .map_err(err)?;
        let mode = dir.metadata().map_err(err)?.permissions().mode() & 0o7777;
        if mode != 0o700 {
            dir.set_permissions(std::fs::Permissions::from_mode(0o700)).map_err(err)?;
            log::debug!("state directory {} was mode {mode:04o}; now 0700", self.path.display());
        }
        Ok(())
    }

    /// Creates the directory if needed and proves it can be written to
    /// (a file created, synced and removed).
    pub fn check_writable(&self) -> Result<()> {
        self.create()?;
        let probe = self.path.join(format!(".write-check.{}", std::process::id()));
        let state_err = |source| Error::State { path: self.path.clone(), source };
        let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&probe);
        let written = f.and_then(|mut f| f.write_all(b"ok\n").and_then(|()| f.sync_all()));
        let _ = std::fs::remove_file(&probe);
        written.map_err(state_err)
    }

    /// Takes the exclusive lock, or fails at once naming the holder.
    pub fn lock(&self) -> Result<Lock> {
        self.lock_named("lock")
    }

    /// Takes the exclusive lock kept in the file `name` of the state
    /// directory (a separate lock for a step that may run while another
    /// holds the main one), or fails at once naming the holder.
    pub fn lock_named(&self, name: &str) -> Result<Lock> {
        self.create()?;
        let path = self.path.join(name);
        let state_err = |source| Error::State { path: path.clone(), source };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(state_err)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut locked) => {
                locked.set_len(0).map_err(state_err)?;
                locked.rewind().map_err(state_err)?;
                writeln!(locked, "{}", std::process::id()).map_err(state_err)?;
                Ok(Lock { _file: locked })
            }
            Err((mut file, errno)) if errno == nix::errno::Errno::EWOULDBLOCK => {
                // The holder empties the file, then writes its pid: give a
                // holder that has just taken the lock a moment to do so.
                let mut pid = String::new();
                for _ in 0..50 {
                    pid.clear();
                    let _ = file.rewind().and_then(|()| file.read_to_string(&mut pid));
                    if !pid.trim().is_empty() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                let pid = match pid.trim() {
                    "" => "not yet recorded".to_owned(),
                    p => p.to_owned(),
                };
                Err(Error::Busy { pid, path })
            }
            Err((_, errno)) => Err(state_err(std::io::Error::from(errno))),
        }
    }

    /// The journal: one line per step of every run, never a password.
    pub fn journal_path(&self) -> PathBuf {
        self.path.join(JOURNAL)
    }

    /// The last verified backup this state directory recorded, if any.
    pub fn last_backup(&self) -> Option<PathBuf> {
        let text = std::fs::read_to_string(self.path.join(LAST_BACKUP)).ok()?;
        let path = text.trim();
        (!path.is_empty()).then(|| PathBuf::from(path))
    }

    /// Records `backup` as the last verified backup (atomically).
    pub fn record_last_backup(&self, backup: &Path) -> Result<()> {
        self.create()?;
        write_atomically(&self.path.join(LAST_BACKUP), format!("{}\n", backup.display()).as_bytes())
    }

    /// Runs one step of a command with the journal around it: `{what}:
    /// started`, then `{what}: done: {summary}` or `{what}: FAILED: {error}`
    /// (a journal that cannot be written after the start is logged, not
    /// fatal: the step's own outcome matters more).
    pub fn step<T, E>(
        &self,
        what: &str,
        summary: impl FnOnce(&T) -> String,
        work: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: std::fmt::Display + From<Error>,
    {
        self.journal(&format!("{what}: started"))?;
        let outcome = work();
        let line = match &outcome {
            Ok(t) => format!("{what}: done: {}", summary(t)),
            Err(e) => format!("{what}: FAILED: {e}"),
        };
        if let Err(e) = self.journal(&line) {
            log::warn!("cannot write the journal: {e}");
        }
        outcome
    }

    /// Appends one line to the journal (mode 0600).
    pub fn journal(&self, event: &str) -> Result<()> {
        self.create()?;
        let path = self.journal_path();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| Error::State { path: path.clone(), source })?;
        let line = format!("{} pid={} {}\n", utc_now(), std::process::id(), event.replace('\n', " | "));
        f.write_all(line.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|source| Error::State { path, source })
    }
}

/// Replaces the file at `path` with `contents` (mode 0600) so that a
/// reader, or a run after a crash or a power loss, finds either the old
/// file or the whole new one: written to `.<name>.tmp` beside it, synced,
/// renamed over it, and the directory synced.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let err = |source| Error::State { path: path.to_owned(), source };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| err(std::io::ErrorKind::InvalidInput.into()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut f =
        OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(err)?;
    f.write_all(contents).and_then(|()| f.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(err)
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format_utc(secs as i64)
}

/// Formats seconds since the epoch as RFC 3339 UTC.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The proleptic Gregorian `(year, month, day)` of a day number (days
/// since 1970-01-01), by H. Hinnant's civil-from-days algorithm.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_512_086_400), "2017-12-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400 + 86_399), "2000-02-29T23:59:59Z");
    }

    #[test]
    fn the_state_directory_is_made_0700_and_an_existing_one_tightened() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        // New, with a missing parent: the parent 0755, the directory 0700,
        // whatever the umask lets through.
        let state = StateDir::new(dir.path().join("lib/v1-removal"));
        state.create()?;
        assert_eq!(mode(&dir.path().join("lib")), 0o755 & !umask());
        assert_eq!(mode(state.path()), 0o700);
        // Existing and too open: tightened by every writer.
        std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        state.journal("x")?;
        assert_eq!(mode(state.path()), 0o700);
        std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        drop(state.lock()?);
        assert_eq!(mode(state.path()), 0o700);
        // A link in its place is refused, and its target left alone.
        let target = dir.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("link")).unwrap();
        assert!(StateDir::new(dir.path().join("link")).create().is_err());
        assert_eq!(mode(&target), 0o755);
        Ok(())
    }

    /// This process's umask, read without changing it.
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:")).unwrap();
        u32::from_str_radix(line.trim(), 8).unwrap()
    }

    #[test]
    fn lock_is_exclusive_and_journal_private() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let held = state.lock()?;
        match state.lock() {
            Err(Error::Busy { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(held);
        let _again = state.lock()?;
        state.journal("drop: started")?;
        state.journal("drop: done\nsecond line")?;
        let text = std::fs::read_to_string(dir.path().join("state/journal.log")).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("done | second line"));
        let mode = std::fs::metadata(dir.path().join("state/journal.log")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(dir.path().join("state")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        Ok(())
    }
}
