//! The recorded decision: written by the preinst, read by the postinst.
//!
//! `decision` in the state directory, `key=value` lines, written
//! atomically (temporary file, fsync, rename, fsync of the directory), mode
//! 0600.  The postinst acts on this file, never on a re-read of debconf,
//! so what runs is what the admin decided before the files were unpacked.

use std::fs;

use lava_v1_core::state::utc_now;

use crate::{Context, Result};

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The admin answered (or preseeded) `true`.
    Remove,
    /// There was no V1 data, so nobody was asked; only empty V1 tables may
    /// be dropped on its strength.
    NoV1Data,
}

impl Answer {
    fn as_str(self) -> &'static str {
        match self {
            Answer::Remove => "remove",
            Answer::NoV1Data => "no-v1-data",
        }
    }
}

/// The decision file's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What was decided.
    pub answer: Answer,
    /// The version being upgraded from.
    pub old_version: String,
    /// The version being installed.
    pub new_version: String,
    /// When (UTC).
    pub time: String,
    /// Take a backup before the drop (the admin may say they have one).
    pub backup: bool,
    /// Write a readable copy of the V1 results (`lava-v1 export`) before
    /// the drop.
    pub export: bool,
}

const FILE: &str = "decision";

impl Decision {
    /// A decision taken now.
    pub fn now(answer: Answer, old_version: &str, new_version: &str) -> Decision {
        Decision {
            answer,
            old_version: old_version.to_owned(),
            new_version: new_version.to_owned(),
            time: utc_now(),
            backup: true,
            export: true,
        }
    }

    /// Writes it atomically into the state directory.
    pub fn write(&self, ctx: &Context) -> Result<()> {
        let dir = &ctx.paths.state_dir;
        ctx.state().create()?;
        let text = format!(
            "answer={}\nold_version={}\nnew_version={}\ntime={}\nbackup={}\nexport={}\n",
            self.answer.as_str(),
            self.old_version,
            self.new_version,
            self.time,
            if self.backup { "yes" } else { "no" },
            if self.export { "yes" } else { "no" }
        );
        lava_v1_core::state::write_atomically(&dir.join(FILE), text.as_bytes())?;
        Ok(())
    }

    /// Reads the decision, if there is one.  A file that cannot be parsed
    /// counts as none (and is logged): nothing destructive happens on it.
    pub fn read(ctx: &Context) -> Option<Decision> {
        let path = ctx.paths.state_dir.join(FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    log::warn!("cannot read {}: {e}", path.display());
                }
                return None;
            }
        };
        let parsed = parse(&text);
        if parsed.is_none() {
            log::warn!("{} is not a decision this program wrote; ignoring it", path.display());
        }
        parsed
    }

    /// Removes the decision (after an abort, so a stale "yes" cannot act).
    pub fn remove(ctx: &Context) -> Result<()> {
        let path = ctx.paths.state_dir.join(FILE);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(lava_v1_core::Error::State { path, source }.into()),
        }
    }

    /// Where it lives.
    pub fn path(ctx: &Context) -> std::path::PathBuf {
        ctx.paths.state_dir.join(FILE)
    }
}

fn parse(text: &str) -> Option<Decision> {
    let get = |key: &str| {
        text.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('='))).map(str::to_owned)
    };
    let answer = match get("answer")?.as_str() {
        "remove" => Answer::Remove,
        "no-v1-data" => Answer::NoV1Data,
        _ => return None,
    };
    Some(Decision {
        answer,
        old_version: get("old_version")?,
        new_version: get("new_version")?,
        time: get("time").unwrap_or_default(),
        // Anything but an explicit "no" takes the backup.
        backup: get("backup").as_deref() != Some("no"),
        // Likewise the readable copy.
        export: get("export").as_deref() != Some("no"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lava_v1_maintscript::Root;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::new(Root::new(dir.path()));
        assert_eq!(Decision::read(&ctx), None);
        let d = Decision::now(Answer::Remove, "2017.10-1", "2017.12-1");
        d.write(&ctx).unwrap();
        assert_eq!(Decision::read(&ctx), Some(d));
        let mode = fs::metadata(Decision::path(&ctx)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = fs::metadata(&ctx.paths.state_dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the state directory");
        Decision::remove(&ctx).unwrap();
        assert_eq!(Decision::read(&ctx), None);
        Decision::remove(&ctx).unwrap();
    }

    #[test]
    fn an_existing_open_state_directory_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::new(Root::new(dir.path()));
        fs::create_dir_all(&ctx.paths.state_dir).unwrap();
        fs::set_permissions(&ctx.paths.state_dir, fs::Permissions::from_mode(0o755)).unwrap();
        Decision::now(Answer::Remove, "2017.10-1", "2017.12-1").write(&ctx).unwrap();
        let mode = fs::metadata(&ctx.paths.state_dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn garbage_is_no_decision() {
        assert_eq!(parse("answer=yes\nold_version=1\nnew_version=2\n"), None);
        assert_eq!(parse("answer=remove\n"), None);
        assert_eq!(parse(""), None);
    }
}
