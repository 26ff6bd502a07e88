//! The debconf gate of the V1 removal: what lava-server's `config`,
//! `preinst` and `postinst` do.
//!
//! The question `lava-server/removev1` ("Remove V1 data from database?")
//! gates the destructive step.  The rules, which close holes of LAVA's own
//! 2017.12 shell scripts:
//!
//! * It is asked only on an upgrade (or a reinstall over kept
//!   configuration) from a version before 2017.12, and only when V1 data
//!   actually exists, in the database or under the media root.  When the
//!   database cannot be reached to tell, it is asked, and the question's
//!   extended text says why ([`presence`]).
//! * Its template default is `false`, and only the exact value `true`
//!   (answered, or preseeded with `debconf-set-selections`) lets the upgrade
//!   go on.  Unseen, empty (a prompt that read end-of-file), or anything else
//!   aborts.  The value is never reset: on abort only the *seen* flag is
//!   cleared, so an interactive admin is asked again next time and a
//!   noninteractive run keeps aborting until someone preseeds `true`.
//!   (LAVA's preinst ran `db_reset`, which put the value back to its
//!   default `true`: a preseeded "no" protected one attempt only.)
//! * The `preinst` checks for V1 data ([`presence`]); when it finds some,
//!   it starts the debconf frontend with what it found in
//!   [`preinst::FOUND_ENV`], so that the `config` script the frontend runs
//!   first (a shell script, `debian/lava-server.config`: it may run before
//!   anything is unpacked and cannot look at the database) asks the
//!   question.  `config` never acts, and running it three times in one
//!   upgrade changes nothing.
//! * `preinst upgrade` aborts the upgrade on anything but `true`, leaving
//!   the old version installed and running, and tells the admin exactly how
//!   to hold the package or preseed the answer; on `true` it records the
//!   decision in the state directory ([`preinst`], [`decision`]).
//! * `postinst configure` acts on that recorded decision, not on a re-read
//!   of debconf, and runs the core drop: one transaction, so a failure
//!   leaves the package half-configured with nothing lost, and
//!   `dpkg --configure -a` resumes ([`postinst`]).
//! * Once the gate lets an upgrade go on, the preinst also makes the
//!   preinst step of removing the obsolete `/etc/init.d/lava-*` conffiles
//!   (`dpkg-maintscript-helper rm_conffile`, [`conffiles`]): the compiled
//!   preinst has no `#DEBHELPER#` token for debhelper to fill in.
//!
//! Every decision and step goes to the journal in the state directory,
//! never with a password.  The library never prints: each entry point
//! returns a [`Verdict`] whose message the binary writes to stderr (stdout
//! is the debconf channel in a maintainer script).

use std::path::PathBuf;

use lava_v1_core::config::Paths;
use lava_v1_core::state::StateDir;
use lava_v1_maintscript::Root;

pub mod conffiles;
pub mod decision;
mod error;
pub mod messages;
pub mod postinst;
pub mod preinst;
pub mod presence;
pub mod progress;

pub use error::{Error, Result};

/// The debconf question.
pub const QUESTION: &str = "lava-server/removev1";
/// The second question: take a backup before the drop (default true).
pub const BACKUP_QUESTION: &str = "lava-server/backupv1";
/// The third question: keep a readable copy of the V1 results, one SQLite
/// file written before the drop (default true).
pub const EXPORT_QUESTION: &str = "lava-server/exportv1";
/// The package.
pub const PACKAGE: &str = "lava-server";
/// The version these maintainer scripts belong to.
pub const PACKAGE_VERSION: &str = "2017.12-1";

/// What the maintainer scripts work on, all under `DPKG_ROOT`.
#[derive(Debug, Clone)]
pub struct Context {
    /// The root (`DPKG_ROOT`, `/` normally).
    pub root: Root,
    /// LAVA's files and our state directory, under the root.
    pub paths: Paths,
}

impl Context {
    /// The context for `root`: LAVA's default paths under it.
    pub fn new(root: Root) -> Context {
        let defaults = Paths::default();
        let paths = Paths {
            instance_conf: root.path(&defaults.instance_conf),
            settings_conf: root.path(&defaults.settings_conf),
            media_root: None,
            state_dir: root.path(&defaults.state_dir),
        };
        Context { root, paths }
    }

    /// The context from the environment (`DPKG_ROOT`).
    pub fn from_env() -> Context {
        Context::new(Root::from_env())
    }

    /// The media root, under `DPKG_ROOT` (settings.conf names a path on
    /// the target system).
    pub fn media_root(&self) -> Result<PathBuf> {
        Ok(self.target_paths()?.media_root()?)
    }

    /// [`Context::paths`] with the media root read from settings.conf and
    /// put under `DPKG_ROOT`: what every step that reads the media tree
    /// (the room check, the backup, the readable copy) is given, so none of
    /// them reads the host's tree in place of the target's.
    pub fn target_paths(&self) -> lava_v1_core::Result<Paths> {
        let media_root = self.root.path(self.paths.media_root()?);
        Ok(Paths { media_root: Some(media_root), ..self.paths.clone() })
    }

    /// The state directory.
    pub fn state(&self) -> StateDir {
        StateDir::new(&self.paths.state_dir)
    }

    /// Appends to the journal; a journal that cannot be written is logged,
    /// not fatal, except where a step says otherwise.
    pub fn journal(&self, event: &str) {
        if let Err(e) = self.state().journal(event) {
            log::warn!("cannot write the journal: {e}");
        }
    }
}

/// How a maintainer script ends: its exit status and what to tell the
/// admin on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The exit status (0: go on).
    pub code: u8,
    /// Lines for the admin, if any.
    pub message: Option<String>,
}

impl Verdict {
    /// Success, nothing to say.
    pub fn ok() -> Verdict {
        Verdict { code: 0, message: None }
    }

    /// Success with a note.
    pub fn ok_with(message: String) -> Verdict {
        Verdict { code: 0, message: Some(message) }
    }

    /// Failure: dpkg stops this step.
    pub fn fail(message: String) -> Verdict {
        Verdict { code: 1, message: Some(message) }
    }
}

/// Sets up logging for a maintainer script: stderr only (stdout is the
/// debconf channel), quiet unless `RUST_LOG` or `DPKG_MAINTSCRIPT_DEBUG=1`
/// asks for more.
pub fn init_logging() {
    let default =
        if std::env::var_os("DPKG_MAINTSCRIPT_DEBUG").is_some_and(|v| v == "1") { "debug" } else { "warn" };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .target(env_logger::Target::Stderr)
        .format_target(false)
        .try_init();
}

/// Ends a maintainer script: prints the verdict's message on stderr and
/// turns it into an exit status.
#[allow(clippy::print_stderr)]
pub fn finish(script: &str, result: Result<Verdict>) -> std::process::ExitCode {
    match result {
        Ok(v) => {
            if let Some(m) = v.message {
                eprint!("{m}");
            }
            std::process::ExitCode::from(v.code)
        }
        Err(e) => {
            eprint!("{}", lava_v1_core::explain::render(&format!("{PACKAGE} {script}"), &e));
            std::process::ExitCode::FAILURE
        }
    }
}
