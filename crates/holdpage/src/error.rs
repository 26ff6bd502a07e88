//! The holding page's error type.

use std::path::PathBuf;

/// Everything that can go wrong switching the holding page.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An Apache configuration file, link or the holding page could not be
    /// read or changed.
    #[error("cannot {doing} `{}`", path.display())]
    ApacheFile {
        /// What we were doing.
        doing: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// Apache's control program could not be run.
    #[error("cannot run `{command}`")]
    ApacheCommand {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// `apachectl configtest` failed; every change was undone.
    #[error("`{command}` fails {stage}; nothing was changed:\n{output}")]
    ApacheConfigTest {
        /// The command line.
        command: String,
        /// When: before switching, or with the new configuration in place.
        stage: &'static str,
        /// What it printed.
        output: String,
        /// What to do.
        hint: String,
    },

    /// Reloading Apache failed; every change was undone.
    #[error("`{command}` failed, so the change was undone:\n{output}")]
    ApacheReload {
        /// The command line.
        command: String,
        /// What it printed.
        output: String,
    },

    /// The holding page cannot be switched safely; nothing was changed.
    #[error("{reason}")]
    Maintenance {
        /// What is wrong.
        reason: String,
        /// What to do.
        hint: String,
    },

    /// From the core: the state directory (its lock, the record, the
    /// journal).
    #[error(transparent)]
    Core(#[from] lava_v1_core::Error),
}

/// The holding page's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl lava_v1_core::Hinted for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::ApacheCommand { .. } => {
                Some("install apache2, or name Apache's control program with --apachectl".into())
            }
            Error::ApacheConfigTest { hint, .. } | Error::Maintenance { hint, .. } => Some(hint.clone()),
            Error::ApacheReload { .. } => {
                Some("check Apache's error log, then run the same command again".into())
            }
            Error::Core(e) => e.hint(),
            Error::ApacheFile { .. } => None,
        }
    }
}
