//! The one error type of the core crate.
//!
//! Every variant says what we were doing and, where there is one, what the
//! admin should do next.  Database errors are classified by SQLSTATE, never
//! by message text.

use std::path::PathBuf;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read the {what} `{}`", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// What the file is, in words.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// `instance.conf` holds a line that is no configuration at all.
    #[error("{}:{line}: {reason}\n\nhint: fix or remove that line; LAVA's own scripts source this file too", path.display())]
    ConfigSyntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, without any secret.
        reason: String,
    },

    /// `settings.conf` is not the JSON LAVA expects.
    #[error("`{}` is not valid LAVA settings: {reason}", path.display())]
    SettingsSyntax {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// `LAVA_DB_PORT` is not a port number.
    #[error("LAVA_DB_PORT `{port}` is not a port number")]
    BadPort {
        /// The value found.
        port: String,
    },

    /// Connecting to PostgreSQL failed.
    #[error("cannot connect to the {target}\n\nhint: check that PostgreSQL is running and that LAVA_DB_* in instance.conf are right")]
    Connect {
        /// Which database, without the password.
        target: String,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },

    /// A statement failed.
    #[error("{doing} failed")]
    Db {
        /// What we were doing.
        doing: String,
        /// The driver's error (its message already carries the server's).
        #[source]
        source: postgres::Error,
    },

    /// Another session holds a lock the drop needs.
    #[error("timed out after {timeout} waiting for a lock on LAVA's tables; another session is using them\n\nhint: stop the LAVA services (lava-master, lava-server-gunicorn, lava-publisher, apache2) or wait for the other session, then run the same command again; nothing was changed")]
    LockTimeout {
        /// The lock timeout in force.
        timeout: String,
    },

    /// The database is not a LAVA database.
    #[error("{target} is not a LAVA database: {found}\n\nhint: check LAVA_DB_NAME in instance.conf (or --instance-conf)")]
    NotLava {
        /// Which database.
        target: String,
        /// What was found instead.
        found: String,
    },

    /// The LAVA database is older than 2017.10.
    #[error("the LAVA database is older than 2017.10: {found}\n\nhint: upgrade lava-server to 2017.10 first; the V1 removal starts from a 2017.10 database")]
    TooOld {
        /// Which migrations are missing.
        found: String,
    },

    /// Something outside V1 depends on V1 data, so dropping it would
    /// change or break that object.
    #[error("objects outside LAVA's V1 data depend on it and would be lost: {objects}\n\nhint: drop or change these objects yourself (they are not LAVA's), then run the same command again; nothing was changed")]
    Blocked {
        /// The dependent objects.
        objects: String,
    },

    /// A media directory could not be inspected.
    #[error("cannot inspect `{}`", path.display())]
    Media {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// Another run holds the state-directory lock.
    #[error("another run of lava-v1 (pid {pid}) is working on this instance\n\nhint: wait for it to finish; the lock is `{}`", path.display())]
    Busy {
        /// The holder's pid, as recorded in the lock file.
        pid: String,
        /// The lock file.
        path: PathBuf,
    },

    /// The state directory could not be written.
    #[error("cannot write the state directory `{}`", path.display())]
    State {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A refusal that needs the admin's explicit consent.
    #[error("{0}")]
    Refused(String),
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a database error, turning the SQLSTATEs we know into their own
    /// variants.
    pub(crate) fn db(doing: impl Into<String>, source: postgres::Error, lock_timeout: &str) -> Self {
        use postgres::error::SqlState;
        if let Some(code) = source.code() {
            if *code == SqlState::LOCK_NOT_AVAILABLE {
                return Error::LockTimeout { timeout: lock_timeout.to_owned() };
            }
        }
        Error::Db { doing: doing.into(), source }
    }
}
