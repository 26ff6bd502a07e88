//! Fault-injection points, in the spirit of PostgreSQL's injection points.
//!
//! When the environment variable `LAVA_V1_FAULT_PAUSE` names a point, the
//! run logs `fault injection: paused at <point>` (on stderr, at warn level)
//! and waits there: until it is killed, or, when `LAVA_V1_FAULT_RESUME`
//! names a file, until that file exists.  Tests use it to SIGKILL a run at
//! a precise step, or to break the database under it and let it go on, and
//! prove that nothing was changed.  Without the variable every point is a
//! no-op.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable that selects a pause point.
pub const PAUSE_VAR: &str = "LAVA_V1_FAULT_PAUSE";
/// The environment variable naming the file whose creation resumes a pause.
pub const RESUME_VAR: &str = "LAVA_V1_FAULT_RESUME";

/// Opens a [`fdsafe::remove::Remover`] on `root` that pauses at the point
/// `remove-after-scan` (a directory's names read, its subdirectories not
/// yet entered: where a swapped-in link would strike).
pub(crate) fn remover(root: &Path, dry_run: bool) -> crate::Result<fdsafe::remove::Remover> {
    Ok(fdsafe::remove::Remover::open(root, dry_run)?.after_scan(|| point("remove-after-scan")))
}

/// Pauses if `point` is the selected injection point.  Cheap when none is
/// (the variable is read once per process), so points may sit in loops.
pub fn point(point: &str) {
    static SELECTED: OnceLock<Option<String>> = OnceLock::new();
    let selected = SELECTED.get_or_init(|| std::env::var(PAUSE_VAR).ok());
    if selected.as_deref() != Some(point) {
        return;
    }
    log::warn!("fault injection: paused at {point}");
    let resume = std::env::var_os(RESUME_VAR).map(PathBuf::from);
    loop {
        match &resume {
            Some(file) if file.exists() => {
                log::warn!("fault injection: resumed at {point}");
                return;
            }
            Some(_) => std::thread::sleep(Duration::from_millis(20)),
            None => std::thread::sleep(Duration::from_secs(3600)),
        }
    }
}
