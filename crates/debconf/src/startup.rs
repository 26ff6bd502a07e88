//! Connecting to a real debconf frontend the way the shell confmodule
//! (`/usr/share/debconf/confmodule`) does.

use std::env;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, StdinLock};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process;

use crate::client::Debconf;
use crate::error::{Error, Result};
use crate::sys;

/// The confmodule protocol version this crate speaks, for
/// [`Debconf::version`].
pub const PROTOCOL_VERSION: &str = "2.0";

/// The fd commands are written to once the frontend is running.
const COMMAND_FD: i32 = 3;

/// A client connected to a real frontend: replies from fd 0 (stdin),
/// commands to a close-on-exec duplicate of fd 3.
pub type StdDebconf = Debconf<StdinLock<'static>, File>;

/// Programs that [`Debconf::from_env_or_exec`] execs when no frontend is
/// running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendPaths {
    /// debconf's frontend, `/usr/share/debconf/frontend`.
    pub debconf: PathBuf,
    /// cdebconf's frontend, `/usr/lib/cdebconf/debconf`, used when
    /// `DEBCONF_USE_CDEBCONF` is non-empty.
    pub cdebconf: PathBuf,
}

impl Default for FrontendPaths {
    /// The Debian paths.
    fn default() -> Self {
        FrontendPaths {
            debconf: PathBuf::from("/usr/share/debconf/frontend"),
            cdebconf: PathBuf::from("/usr/lib/cdebconf/debconf"),
        }
    }
}

/// Whether an environment variable is set to a non-empty value (the shell's
/// `[ "${VAR:-}" ]`).
fn env_nonempty(name: &str) -> bool {
    env::var_os(name).is_some_and(|v| !v.is_empty())
}

impl Debconf<StdinLock<'static>, File> {
    /// [`Debconf::from_env_or_exec`] with this process's arguments
    /// ([`std::env::args_os`]) and the Debian frontend paths.
    ///
    /// Does not return if a frontend had to be started: the process is
    /// replaced by the frontend, which runs the program again.
    pub fn connect() -> Result<Self> {
        Self::from_env_or_exec(env::args_os(), &FrontendPaths::default())
    }

    /// Connect to the running debconf frontend, starting one first if
    /// needed, like the shell confmodule:
    ///
    /// 1. If `DEBIAN_HAS_FRONTEND` is empty or unset, set
    ///    `PERL_DL_NONLAZY=1` and exec `paths.debconf argv[0] argv[1..]`
    ///    (`paths.cdebconf` when `DEBCONF_USE_CDEBCONF` is non-empty).
    ///    `argv[0]` is passed as given: the frontend derives the package
    ///    name, templates and config script from it (`DEBCONF_PACKAGE`
    ///    overrides the name). On success this never returns.
    /// 2. If `DEBCONF_REDIR` is empty or unset, duplicate fd 1 (the command
    ///    pipe) to fd 3, point fd 1 at fd 2 (fd 5 under cdebconf) and set
    ///    `DEBCONF_REDIR=1`, so stdout output from this program and its
    ///    children goes to stderr instead of into the protocol.
    /// 3. Write commands to fd 3 and read replies from fd 0.  Fd 3 is
    ///    marked close-on-exec (the client writes to a close-on-exec
    ///    duplicate of it), so no program this process starts holds the
    ///    command pipe open — a daemon started from a maintainer script
    ///    would otherwise keep the frontend waiting.  Children cannot talk
    ///    to the frontend through it.
    ///
    /// Call this early, before starting threads (it modifies the
    /// environment) and before anything else reads stdin. The client holds
    /// the process-wide stdin lock for as long as it lives: do not read
    /// stdin elsewhere in the process meanwhile. Connect at most once per
    /// process.
    pub fn from_env_or_exec<I>(argv: I, paths: &FrontendPaths) -> Result<Self>
    where
        I: IntoIterator<Item = OsString>,
    {
        if !env_nonempty("DEBIAN_HAS_FRONTEND") {
            return Err(exec_frontend(argv.into_iter().collect(), paths));
        }
        if !env_nonempty("DEBCONF_REDIR") {
            let cdebconf = env_nonempty("DEBCONF_USE_CDEBCONF");
            sys::dup2(1, COMMAND_FD)
                .map_err(|source| Error::Setup { what: "dup fd 1 (command pipe) to fd 3", source })?;
            let out = if cdebconf { 5 } else { 2 };
            sys::dup2(out, 1).map_err(|source| Error::Setup {
                what: "redirect stdout away from the command pipe",
                source,
            })?;
            env::set_var("DEBCONF_REDIR", "1");
            log::debug!("debconf: command pipe moved to fd 3, stdout now goes to fd {out}");
        }
        let writer = sys::dup_cloexec(COMMAND_FD).map_err(|source| Error::Setup {
            what: "open fd 3 (command pipe; DEBCONF_REDIR is set but fd 3 is not usable)",
            source,
        })?;
        // Nothing this program starts (pg_dump, tar, apachectl, a daemon
        // that apachectl starts) may keep the command pipe open: dpkg's
        // frontend would wait for it to close.  The client writes to its
        // own close-on-exec duplicate.
        sys::set_cloexec(COMMAND_FD)
            .map_err(|source| Error::Setup { what: "mark fd 3 (command pipe) close-on-exec", source })?;
        Ok(Debconf::new(io::stdin().lock(), writer))
    }
}

/// Exec the frontend; only returns (an error) if that fails.
fn exec_frontend(argv: Vec<OsString>, paths: &FrontendPaths) -> Error {
    let frontend = if env_nonempty("DEBCONF_USE_CDEBCONF") { &paths.cdebconf } else { &paths.debconf };
    let Some((program, args)) = argv.split_first() else {
        return Error::Setup {
            what: "start a debconf frontend",
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "argv is empty, the frontend needs this program's path",
            ),
        };
    };
    log::debug!("debconf: no frontend running, exec {} {}", frontend.display(), program.to_string_lossy());
    let source = process::Command::new(frontend).arg(program).args(args).env("PERL_DL_NONLAZY", "1").exec();
    Error::Exec { path: frontend.clone(), source }
}
