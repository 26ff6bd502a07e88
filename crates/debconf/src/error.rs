//! The crate's error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// `std::result::Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Which command an error belongs to, without any value that could be a
/// secret: only the command word (e.g. `GET`, `PROGRESS SET`) and, when the
/// command has one, the question or template name it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command word as sent, upper case (`"INPUT"`, `"PROGRESS START"`).
    pub word: String,
    /// The question/template name (or template file path) the command was
    /// about, if any.
    pub subject: Option<String>,
}

impl Command {
    /// A command description without a subject.
    pub(crate) fn bare(word: &str) -> Self {
        Command { word: word.to_owned(), subject: None }
    }

    /// A command description about `subject`.
    pub(crate) fn about(word: &str, subject: &str) -> Self {
        Command { word: word.to_owned(), subject: Some(subject.to_owned()) }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Some(s) => write!(f, "{} {}", self.word, s),
            None => f.write_str(&self.word),
        }
    }
}

/// Everything that can go wrong while talking to debconf.
///
/// Variants carrying a `code` and `text` are non-success replies from the
/// frontend; `text` is the frontend's own explanation, verbatim.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reply code 10–19: the frontend rejected the parameters (for example
    /// the question does not exist, or a template file cannot be opened).
    #[error("debconf {command}: bad parameters (code {code}): {text}")]
    BadParams {
        /// The command that was answered.
        command: Command,
        /// The reply code.
        code: u8,
        /// The frontend's text.
        text: String,
    },
    /// Reply code 20–29: the frontend did not understand the command
    /// (wrong number of arguments, unknown command, invalid priority…).
    #[error("debconf {command}: syntax error (code {code}): {text}")]
    Syntax {
        /// The command that was answered.
        command: Command,
        /// The reply code.
        code: u8,
        /// The frontend's text.
        text: String,
    },
    /// Reply code 30 to `VERSION`: the frontend does not speak the
    /// requested protocol version.
    #[error("debconf {command}: protocol version not supported (code 30): {text}")]
    VersionBad {
        /// The command that was answered.
        command: Command,
        /// The frontend's text (e.g. `Version too low (1.0)`).
        text: String,
    },
    /// Reply code 30–99 that has no special meaning for the command sent.
    #[error("debconf {command}: command failed (code {code}): {text}")]
    CommandFailed {
        /// The command that was answered.
        command: Command,
        /// The reply code.
        code: u8,
        /// The frontend's text.
        text: String,
    },
    /// Reply code 100–109: internal error in the frontend (for example a
    /// template file that does not parse).
    #[error("debconf {command}: frontend internal error (code {code}): {text}")]
    Internal {
        /// The command that was answered.
        command: Command,
        /// The reply code.
        code: u8,
        /// The frontend's text.
        text: String,
    },
    /// The reply line could not be parsed, used a reserved code, or had an
    /// unexpected shape. The protocol is probably out of sync.
    #[error("debconf {command}: protocol error: {reason}")]
    Protocol {
        /// The command that was answered.
        command: Command,
        /// What was wrong with the reply.
        reason: String,
    },
    /// The frontend closed the reply pipe (EOF on fd 0) instead of answering.
    #[error(
        "debconf {command}: the frontend closed the reply pipe (end of file) before answering; \
         is a debconf frontend running?"
    )]
    Eof {
        /// The command that got no reply.
        command: Command,
    },
    /// Reading the reply or writing the command failed.
    #[error("debconf {command}: I/O error talking to the frontend")]
    Io {
        /// The command being sent or answered.
        command: Command,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An argument cannot be sent safely (for example a newline without the
    /// `escape` capability, or a question name containing whitespace).
    #[error("debconf {command}: invalid argument: {reason}")]
    InvalidArgument {
        /// The command that was not sent.
        command: Command,
        /// Why the argument was refused.
        reason: String,
    },
    /// A command was attempted after `STOP` had been sent.
    #[error("debconf {command}: STOP was already sent, the frontend no longer listens")]
    Stopped {
        /// The command that was not sent.
        command: Command,
    },
    /// Executing the debconf frontend failed.
    #[error("cannot exec the debconf frontend {}", path.display())]
    Exec {
        /// The frontend program that could not be executed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Setting up the confmodule file descriptors (fd 3, stdout redirect)
    /// failed, or the environment does not allow a start-up.
    #[error("cannot set up the debconf connection: {what}")]
    Setup {
        /// The step that failed.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The command this error belongs to, if it happened while talking to a
    /// frontend.
    pub fn command(&self) -> Option<&Command> {
        match self {
            Error::BadParams { command, .. }
            | Error::Syntax { command, .. }
            | Error::VersionBad { command, .. }
            | Error::CommandFailed { command, .. }
            | Error::Internal { command, .. }
            | Error::Protocol { command, .. }
            | Error::Eof { command }
            | Error::Io { command, .. }
            | Error::InvalidArgument { command, .. }
            | Error::Stopped { command } => Some(command),
            Error::Exec { .. } | Error::Setup { .. } => None,
        }
    }

    /// The frontend's reply code, for errors that are non-success replies.
    pub fn code(&self) -> Option<u8> {
        match self {
            Error::BadParams { code, .. }
            | Error::Syntax { code, .. }
            | Error::CommandFailed { code, .. }
            | Error::Internal { code, .. } => Some(*code),
            Error::VersionBad { .. } => Some(30),
            _ => None,
        }
    }

    /// The frontend's text, for errors that are non-success replies.
    pub fn frontend_text(&self) -> Option<&str> {
        match self {
            Error::BadParams { text, .. }
            | Error::Syntax { text, .. }
            | Error::VersionBad { text, .. }
            | Error::CommandFailed { text, .. }
            | Error::Internal { text, .. } => Some(text),
            _ => None,
        }
    }
}
