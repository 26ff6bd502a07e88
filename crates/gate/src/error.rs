//! The gate's error type: the lower crates' errors, passed through.

/// Everything that can stop a maintainer script.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the core (configuration, database, state directory).
    #[error(transparent)]
    Core(#[from] lava_v1_core::Error),
    /// From the debconf conversation (its text names debconf).
    #[error(transparent)]
    Debconf(#[from] lava_v1_debconf::Error),
    /// From dpkg plumbing (argument parsing, versions).
    #[error(transparent)]
    Maintscript(#[from] lava_v1_maintscript::Error),
    /// A helper program (dpkg-maintscript-helper) could not be run or
    /// failed.
    #[error("{command}: {detail}")]
    Helper {
        /// What was run.
        command: String,
        /// How it failed.
        detail: String,
    },
}

impl lava_v1_core::Hinted for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Core(e) => e.hint(),
            _ => None,
        }
    }
}

/// The gate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
