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
    #[error("{}:{line}: {reason}", path.display())]
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
    #[error("cannot connect to the {target}")]
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
    #[error("timed out after {timeout} waiting for a lock on LAVA's tables; another session is using them")]
    LockTimeout {
        /// The lock timeout in force.
        timeout: String,
    },

    /// The database is not a LAVA database.
    #[error("{target} is not a LAVA database: {found}")]
    NotLava {
        /// Which database.
        target: String,
        /// What was found instead.
        found: String,
    },

    /// The LAVA database is older than 2017.10.
    #[error("the LAVA database is older than 2017.10: {found}")]
    TooOld {
        /// Which migrations are missing.
        found: String,
    },

    /// Something outside V1 depends on V1 data, so dropping it would
    /// change or break that object.
    #[error("objects outside LAVA's V1 data depend on it and would be lost: {objects}")]
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
    #[error("another run of lava-v1 (pid {pid}) is working on this instance")]
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

    /// V1 jobs are still waiting, running or being canceled.
    #[error("{count} V1 jobs are still submitted, running or canceling:\n{jobs}")]
    JobsInProgress {
        /// How many.
        count: usize,
        /// One line per job (the first 50).
        jobs: String,
    },

    /// `--older-than` is not an age.
    #[error("`{value}` is not an age: use <N>h or <N>d (hours or days), as `lava-server manage jobs rm --older-than` does")]
    BadAge {
        /// The value given.
        value: String,
    },

    /// The V1 tables still exist, and the V1 files are what they point at.
    #[error("the V1 tables still exist ({tables} of {}); the V1 files under the media root are what their rows point at", crate::schema::V1_TABLES.len())]
    V1TablesPresent {
        /// How many V1 tables are left.
        tables: usize,
    },

    /// Rows of tables LAVA does not know point at the jobs being removed.
    #[error("rows outside LAVA's own tables point at V1 jobs: {detail}")]
    JobsReferenced {
        /// The server's message and detail.
        detail: String,
    },

    /// A previous interrupted run left work for a different instance.
    #[error("the state directory holds unfinished work of another instance: {what}")]
    ForeignPending {
        /// What differs.
        what: String,
        /// The pending file.
        path: PathBuf,
    },

    /// A backup file or directory could not be written or read.
    #[error("backup: error {doing} `{}`", path.display())]
    Backup {
        /// The path.
        path: PathBuf,
        /// What we were doing, in words.
        doing: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The disk filled up while the backup was being written.
    #[error("the disk holding `{}` filled up while the backup was being written; {} and nothing was dropped", path.display(), if *removed { "the incomplete backup was removed" } else { "the incomplete backup (`*.incomplete`) could not be removed: delete it," })]
    DiskFull {
        /// The backup directory.
        path: PathBuf,
        /// Whether the incomplete backup was removed.
        removed: bool,
    },

    /// Not enough free space for the backup.
    #[error("not enough free space for {what} in `{}`: it needs up to {needed} bytes, {available} are free; nothing was written and nothing was dropped", path.display())]
    NoSpace {
        /// What would not fit: the backup, the readable copy of the V1
        /// results, or both.
        what: String,
        /// The backup directory.
        path: PathBuf,
        /// Bytes needed (an upper bound).
        needed: u64,
        /// Bytes available.
        available: u64,
    },

    /// A backup failed verification.
    #[error("the backup `{}` is not usable: {reason}", path.display())]
    BadBackup {
        /// The backup (or the file in it).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A helper program could not be started.
    #[error("cannot run `{program}`")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A helper program failed.
    #[error("`{program}` failed ({status}): {stderr}")]
    ToolFailed {
        /// The program.
        program: String,
        /// Its exit status.
        status: String,
        /// What it wrote to stderr (libpq programs never print passwords).
        stderr: String,
    },

    /// The instance is not in a maintenance window, or the database role
    /// lacks a right the drop needs.
    #[error("not ready to remove V1 data; nothing was changed:\n{problems}")]
    Preflight {
        /// Every problem, one per line.
        problems: String,
    },

    /// The database session was cut short; the transaction did not commit.
    #[error("{doing} was interrupted: {why}; {}", if doing.starts_with("committing") { "the commit may or may not have happened (`lava-v1 status` tells)" } else { "the transaction was rolled back and nothing was changed" })]
    Interrupted {
        /// What we were doing.
        doing: String,
        /// What happened, in words.
        why: String,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },

    /// An export file could not be written or read.
    #[error("export: error {doing} `{}`", path.display())]
    Export {
        /// The path.
        path: PathBuf,
        /// What we were doing, in words.
        doing: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// SQLite failed while an export was written or checked.
    #[error("export: SQLite failed {doing} `{}`: {message}", path.display())]
    Sqlite {
        /// The export file.
        path: PathBuf,
        /// What we were doing, in words.
        doing: String,
        /// SQLite's error, as text: the error type itself stays out of
        /// this enum, so that programs without SQLite (the preinst) never
        /// link its library.
        message: String,
    },

    /// A written export failed its checks, and was not kept.
    #[error("the export `{}` failed its checks and was removed: {reason}", path.display())]
    ExportCheck {
        /// The export file (as it was being written).
        path: PathBuf,
        /// What differed.
        reason: String,
    },

    /// A refusal, and what to do instead.
    #[error("{reason}")]
    Refused {
        /// Why nothing was done.
        reason: String,
        /// What to do instead, if anything.
        hint: Option<String>,
    },
}

impl From<fdsafe::Error> for Error {
    /// A root the safe remover could not open is a media directory that
    /// could not be inspected.
    fn from(e: fdsafe::Error) -> Self {
        Error::Media { path: e.path, source: e.source }
    }
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl crate::explain::Hinted for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::ConfigSyntax { .. } => "fix or remove that line; LAVA's own scripts source this file too".to_owned(),
            Error::Connect { .. } => "check that PostgreSQL is running and that LAVA_DB_* in instance.conf are right".to_owned(),
            Error::LockTimeout { .. } => "stop the LAVA services (lava-master, lava-server-gunicorn, lava-publisher, apache2) or wait for the other session, then run the same command again; nothing was changed".to_owned(),
            Error::NotLava { .. } => "check LAVA_DB_NAME in instance.conf (or --instance-conf)".to_owned(),
            Error::TooOld { .. } => "upgrade lava-server to 2017.10 first; the V1 removal starts from a 2017.10 database".to_owned(),
            Error::Blocked { .. } => "drop or change these objects yourself (they are not LAVA's), then run the same command again; nothing was changed".to_owned(),
            Error::Busy { path, .. } => format!("wait for it to finish; the lock is `{}`", path.display()),
            Error::JobsInProgress { .. } => "wait for them to finish or cancel them in LAVA's web interface, then run the same command again; nothing was changed".to_owned(),
            Error::V1TablesPresent { .. } => "remove the V1 tables first with `lava-v1 drop --yes` (the package's postinst does), then run the same command again; nothing was removed".to_owned(),
            Error::JobsReferenced { .. } => "those are not LAVA's (LAVA's own command would fail the same way); delete or repoint them, then run the same command again.  This batch was rolled back; batches before it stay done".to_owned(),
            Error::ForeignPending { path, .. } => format!("run with the same --instance-conf and --media-root as the interrupted run to finish it; if that instance is gone, delete `{}` by hand", path.display()),
            Error::DiskFull { .. } => "free some space there (or choose another directory with --backup-dir) and run it again".to_owned(),
            Error::Export { .. } | Error::Sqlite { .. } => "check that the directory exists, is writable and has room (or choose another file with --output), then run it again; an export is only ever kept complete and checked".to_owned(),
            Error::ExportCheck { .. } => "run it again (nothing was changed in the database); if it fails the same way, report it with `lava-v1 report`".to_owned(),
            Error::NoSpace { what, .. } if what == "the backup" => "free some space or choose another directory with --backup-dir".to_owned(),
            Error::NoSpace { .. } => "free some space there, then run the same command again; an admin who needs neither the backup nor the readable copy may answer no to lava-server/backupv1 or lava-server/exportv1".to_owned(),
            Error::Preflight { .. } => "connect as the role that owns LAVA's tables (`ALTER TABLE … OWNER TO` that role, or set LAVA_DB_USER in instance.conf), drop or change the objects listed (they are not LAVA's), then run the same command again".to_owned(),
            Error::Interrupted { .. } => "find out what stopped it (statement_timeout settings, another administrator, the server log), then run the same command again: it finishes the job either way".to_owned(),
            Error::Refused { hint: Some(hint), .. } => hint.clone(),
            _ => return None,
        })
    }
}

impl Error {
    /// A refusal without a hint.
    pub fn refused(reason: impl Into<String>) -> Error {
        Error::Refused { reason: reason.into(), hint: None }
    }

    /// A refusal, and what to do instead.
    pub fn refused_with_hint(reason: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Refused { reason: reason.into(), hint: Some(hint.into()) }
    }

    /// Wraps a database error, turning the SQLSTATEs we know into their own
    /// variants.
    pub(crate) fn db(doing: impl Into<String>, source: postgres::Error, lock_timeout: &str) -> Self {
        use postgres::error::SqlState;
        if let Some(code) = source.code() {
            if *code == SqlState::LOCK_NOT_AVAILABLE {
                return Error::LockTimeout { timeout: lock_timeout.to_owned() };
            }
            if *code == SqlState::QUERY_CANCELED {
                return Error::Interrupted {
                    doing: doing.into(),
                    why: "the statement was canceled (a statement_timeout, or an administrator)".into(),
                    source,
                };
            }
            if [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW]
                .contains(code)
            {
                return Error::Interrupted {
                    doing: doing.into(),
                    why: "the server ended the session (terminated by an administrator, or shutting down)"
                        .into(),
                    source,
                };
            }
        }
        if source.is_closed() {
            return Error::Interrupted {
                doing: doing.into(),
                why: "the connection to the server was lost".into(),
                source,
            };
        }
        Error::Db { doing: doing.into(), source }
    }
}
