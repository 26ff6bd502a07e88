//! The preinst's share of removing obsolete conffiles.
//!
//! lava-server 2017.12 no longer ships the `/etc/init.d/lava-*` scripts.
//! `debian/lava-server.maintscript` lists them as `rm_conffile` lines, and
//! debhelper turns those into `dpkg-maintscript-helper rm_conffile … --
//! "$@"` calls in the shell `postinst`, `prerm` and `postrm`.  The
//! `preinst` is this crate's compiled program and carries no
//! `#DEBHELPER#` token, so it makes its call itself, from the same file
//! (compiled in): an unchanged file becomes `FILE.dpkg-remove`, a modified
//! one `FILE.dpkg-backup`; the postinst then deletes the first and keeps
//! the second as `FILE.dpkg-bak`, and the postrm's `abort-upgrade` puts
//! both back if the upgrade fails after this step.
//!
//! The preinst calls [`prepare_removal`] only once the gate has let the
//! upgrade go on: an upgrade stopped at the question leaves every conffile
//! exactly where it was.
//!
//! dpkg-maintscript-helper prints on stdout, and in a maintainer script
//! under debconf stdout was the protocol pipe, so the helper's stdout is
//! sent to stderr, its stdin is `/dev/null` (fd 0 is debconf's reply pipe)
//! and the command pipe (fd 3) is not inherited.

use std::ffi::OsString;
use std::process::{Command, Stdio};

use crate::{Error, Result, PACKAGE};

/// `debian/lava-server.maintscript`, as debhelper reads it.
pub const MAINTSCRIPT: &str = include_str!("../../../debian/lava-server.maintscript");

/// The program that does the work (dpkg's own state machine).
pub const HELPER: &str = "dpkg-maintscript-helper";

/// One `rm_conffile` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RmConffile {
    /// The conffile, absolute.
    pub path: String,
    /// The last version that shipped it (`2017.12-1~`).
    pub last_version: String,
    /// The package that owned it: always named, because the old package
    /// is `Architecture: all` and this one is not, and without the name
    /// the helper would look for `lava-server:<arch>` and silently do
    /// nothing.
    pub package: String,
}

impl RmConffile {
    /// The helper's arguments before `--`.
    pub fn helper_args(&self) -> [&str; 4] {
        ["rm_conffile", &self.path, &self.last_version, &self.package]
    }
}

/// Parses maintscript text: only complete `rm_conffile FILE VERSION
/// PACKAGE` lines are accepted (blank lines and `#` comments are skipped),
/// so that anything else is caught by the tests instead of silently
/// ignored.
pub fn parse(text: &str) -> std::result::Result<Vec<RmConffile>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["rm_conffile", path, version, package] if path.starts_with('/') => out.push(RmConffile {
                path: (*path).to_owned(),
                last_version: (*version).to_owned(),
                package: (*package).to_owned(),
            }),
            _ => {
                return Err(format!(
                    "line {}: expected `rm_conffile /ABSOLUTE/PATH LASTVERSION PACKAGE`, got `{line}`",
                    n + 1
                ))
            }
        }
    }
    Ok(out)
}

/// The compiled-in list.
pub fn obsolete() -> Vec<RmConffile> {
    // Checked by this module's tests, so it cannot fail at run time.
    parse(MAINTSCRIPT).unwrap_or_default()
}

/// The preinst step of every `rm_conffile` line: runs
/// `dpkg-maintscript-helper rm_conffile FILE VERSION PACKAGE -- ARGS…` with
/// the preinst's own arguments.
pub fn prepare_removal(args: &[OsString]) -> Result<()> {
    prepare_removal_with(HELPER, &obsolete(), args)
}

/// [`prepare_removal`] with another helper program and list (tests).
pub fn prepare_removal_with(helper: &str, entries: &[RmConffile], args: &[OsString]) -> Result<()> {
    keep_debconf_pipe_private();
    for entry in entries {
        let mut cmd = Command::new(helper);
        cmd.args(entry.helper_args()).arg("--").args(args).stdin(Stdio::null()).stdout(stderr_handle()?);
        // dpkg always sets these; set them when a test or an admin runs
        // the program by hand, so the helper does not refuse to work.
        for (var, value) in [("DPKG_MAINTSCRIPT_NAME", "preinst"), ("DPKG_MAINTSCRIPT_PACKAGE", PACKAGE)] {
            if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
                cmd.env(var, value);
            }
        }
        log::debug!("preinst: {helper} {} -- {args:?}", entry.helper_args().join(" "));
        let status = cmd.status().map_err(|source| Error::Helper {
            command: format!("{helper} rm_conffile {}", entry.path),
            detail: source.to_string(),
        })?;
        if !status.success() {
            return Err(Error::Helper {
                command: format!("{helper} rm_conffile {}", entry.path),
                detail: status.to_string(),
            });
        }
    }
    Ok(())
}

/// Our stderr, for a child's stdout.
fn stderr_handle() -> Result<Stdio> {
    use std::os::fd::AsFd;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().map_err(|source| Error::Helper {
        command: "duplicate stderr".to_owned(),
        detail: source.to_string(),
    })?;
    Ok(Stdio::from(fd))
}

/// Under debconf, fd 3 is the command pipe (`DEBCONF_REDIR` says so) and
/// stays inheritable for the shell confmodule's sake.  Our client writes
/// through its own close-on-exec duplicate, so marking fd 3 itself
/// close-on-exec only keeps children off the protocol.
fn keep_debconf_pipe_private() {
    if std::env::var_os("DEBCONF_REDIR").is_some_and(|v| !v.is_empty()) {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag};
        if let Err(e) = fcntl(3, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)) {
            log::debug!("fd 3 not marked close-on-exec: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_parses_and_names_the_package() {
        let list = parse(MAINTSCRIPT).expect("debian/lava-server.maintscript parses");
        let paths: Vec<&str> = list.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/etc/init.d/lava-master",
                "/etc/init.d/lava-publisher",
                "/etc/init.d/lava-server",
                "/etc/init.d/lava-server-gunicorn",
                "/etc/init.d/lava-slave"
            ]
        );
        for e in &list {
            assert_eq!(e.package, PACKAGE, "{e:?}: name the package (Architecture all -> any)");
            assert_eq!(e.last_version, "2017.12-1~", "{e:?}");
        }
    }

    #[test]
    fn anything_but_complete_rm_conffile_lines_is_refused() {
        assert!(parse("rm_conffile /etc/x 1.0~\n").is_err(), "package must be named");
        assert!(parse("mv_conffile /etc/x /etc/y 1.0~ p\n").is_err());
        assert!(parse("rm_conffile etc/x 1.0~ p\n").is_err());
        assert_eq!(parse("# c\n\nrm_conffile /etc/x 1.0~ p\n").unwrap().len(), 1);
    }

    #[test]
    fn the_helper_gets_the_scripts_arguments_and_never_our_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let helper = dir.path().join("helper");
        // Logs its arguments, where its stdin and stdout lead, and where
        // our stderr leads (its own stderr, inherited).
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\nin=$(readlink /proc/$$/fd/0) out=$(readlink /proc/$$/fd/1) err=$(readlink /proc/$$/fd/2)\n\
                 {{ echo \"$*\"; echo \"$in\"; [ \"$out\" = \"$err\" ] && echo stdout-is-stderr; }} >> {}\n",
                log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let entries = parse("rm_conffile /etc/a 2~ pkg\nrm_conffile /etc/b 2~ pkg\n").unwrap();
        let args: Vec<OsString> = ["upgrade", "1", "2"].iter().map(OsString::from).collect();
        prepare_removal_with(helper.to_str().unwrap(), &entries, &args).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            text,
            "rm_conffile /etc/a 2~ pkg -- upgrade 1 2\n/dev/null\nstdout-is-stderr\n\
             rm_conffile /etc/b 2~ pkg -- upgrade 1 2\n/dev/null\nstdout-is-stderr\n"
        );
        std::fs::write(&helper, "#!/bin/sh\nexit 3\n").unwrap();
        let err = prepare_removal_with(helper.to_str().unwrap(), &entries, &args).unwrap_err();
        assert!(err.to_string().contains("rm_conffile /etc/a"), "{err}");
    }
}
