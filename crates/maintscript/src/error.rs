//! The one error type of this crate.

use std::ffi::OsString;
use std::fmt;

use crate::args::Script;

/// Everything that can go wrong in this crate.
///
/// Every variant that comes from running a program names the command line
/// that was run, so that a maintainer script can print the error as is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A maintainer script was called with arguments that match none of the
    /// call forms of Debian Policy ch. 6 for that script. Callers should
    /// exit 1 (dpkg then reports the script as failed).
    #[error("{script}: unknown call form: {script} {}: {reason}", DisplayArgs(.args))]
    UnknownCallForm {
        /// The script that was called.
        script: Script,
        /// The exact arguments it was called with (without `argv[0]`).
        args: Vec<OsString>,
        /// Why the arguments were not accepted.
        reason: String,
    },

    /// A string is not a valid Debian version (as `dpkg --validate-version`
    /// would judge it).
    #[error("invalid Debian version {input:?}: {reason}")]
    InvalidVersion {
        /// The rejected string.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A string is not a valid Debian package name.
    #[error("invalid package name {input:?}: {reason}")]
    InvalidPackageName {
        /// The rejected string.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A program could not be started at all.
    #[error("cannot run `{command}`")]
    Spawn {
        /// The command line, shell-quoted for display.
        command: String,
        /// The error from the operating system.
        #[source]
        source: std::io::Error,
    },

    /// A program ran but exited unsuccessfully.
    #[error("`{command}` failed ({status}): {}", stderr.trim_end())]
    CommandFailed {
        /// The command line, shell-quoted for display.
        command: String,
        /// How it ended, e.g. `exit status 2` or `killed by signal 9`.
        status: String,
        /// What it wrote to stderr.
        stderr: String,
    },

    /// A dpkg admin directory given explicitly has no `status` file
    /// (dpkg-query would silently treat it as an empty database).
    #[error("{} is not a dpkg database: it has no status file", path.display())]
    NoDpkgDatabase {
        /// The admin directory.
        path: std::path::PathBuf,
    },

    /// A program succeeded but printed something this crate cannot parse.
    #[error("unexpected output from `{command}`: {detail}")]
    UnexpectedOutput {
        /// The command line, shell-quoted for display.
        command: String,
        /// What was wrong with the output.
        detail: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Renders arguments unambiguously: each one quoted, empty ones visible,
/// non-UTF-8 bytes escaped.
struct DisplayArgs<'a>(&'a [OsString]);

impl fmt::Display for DisplayArgs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(no arguments)");
        }
        for (i, arg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{arg:?}")?;
        }
        Ok(())
    }
}

/// Quotes a command line for messages: words that need it are put in
/// single quotes, the way a shell would accept them.
pub(crate) fn quote_command<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> String {
    let mut out = quote_word(program);
    for arg in args {
        out.push(' ');
        out.push_str(&quote_word(&arg.as_ref().to_string_lossy()));
    }
    out
}

fn quote_word(word: &str) -> String {
    let plain =
        !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            quote_command("dpkg-query", &["-W", "-f=${Version}\n", "lava-server"]),
            "dpkg-query -W '-f=${Version}\n' lava-server"
        );
        assert_eq!(quote_command("x", &["", "it's"]), r"x '' 'it'\''s'");
    }

    #[test]
    fn unknown_call_form_display() {
        let e = Error::UnknownCallForm {
            script: Script::Preinst,
            args: vec!["upgrade".into(), "".into()],
            reason: "bad".into(),
        };
        assert_eq!(e.to_string(), r#"preinst: unknown call form: preinst "upgrade" "": bad"#);
        let e =
            Error::UnknownCallForm { script: Script::Postrm, args: vec![], reason: "no action given".into() };
        assert_eq!(e.to_string(), "postrm: unknown call form: postrm (no arguments): no action given");
    }
}
