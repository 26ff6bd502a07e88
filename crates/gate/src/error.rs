//! The gate's error type: the lower crates' errors, passed through.

/// Everything that can stop a maintainer script.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the core (configuration, database, state directory).
    #[error(transparent)]
    Core(#[from] lava_v1_core::Error),
    /// From the debconf conversation.
    #[error("debconf: {0}")]
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

/// The gate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
