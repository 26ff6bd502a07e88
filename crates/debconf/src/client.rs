//! The protocol client: one method per confmodule command
//! (debconf specification, "Commands"; debconf-devel(7), "THE
//! CONFIGURATION PROTOCOL"; `Debconf::ConfModule` for the frontend side).

use std::fmt;
use std::io::{BufRead, Write};
use std::path::Path;

use crate::error::{Command, Error, Result};
use crate::escape::escape_arg;
use crate::reply::{shorten, Reply, ReplyClass};

/// Only the exact string `true` is true.
///
/// debconf booleans are the strings `true` and `false`, but a database can
/// hold anything: an empty string (a Teletype prompt that read end of file),
/// `yes`, `True`, stray whitespace. Callers deciding something destructive
/// should treat everything but `true` as "no".
pub fn is_true(value: &str) -> bool {
    value == "true"
}

/// A question priority for [`Debconf::input`] and [`Debconf::visible`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// `low`: only shown when the user asked for every detail.
    Low,
    /// `medium`: normal items with reasonable defaults.
    Medium,
    /// `high`: no reasonable default; shown by default.
    High,
    /// `critical`: the system would likely break without the user's input.
    Critical,
}

impl Priority {
    /// The word sent on the wire (`low`, `medium`, `high`, `critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Outcome of [`Debconf::input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Code 0: the question was queued and will be shown at the next `GO`.
    WillAsk,
    /// Code 30: the question will not be shown (priority too low, already
    /// seen, or a non-interactive frontend). Not an error: the value stays
    /// what the database holds.
    Skipped,
}

/// Outcome of [`Debconf::go`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Go {
    /// Code 0: the questions were shown (or there was nothing to show) and
    /// the answers stored.
    Continue,
    /// Code 30: the user asked to go back (only with `CAPB backup`).
    Backup,
}

/// A `PROGRESS` subcommand for [`Debconf::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressCommand<'a> {
    /// `PROGRESS START min max question`: start a progress bar titled by the
    /// question's description.
    Start {
        /// Value of an empty bar.
        min: i64,
        /// Value of a full bar.
        max: i64,
        /// Template whose description is the title.
        question: &'a str,
    },
    /// `PROGRESS SET value`.
    Set(i64),
    /// `PROGRESS STEP increment`.
    Step(i64),
    /// `PROGRESS INFO question`: show the question's description under the
    /// bar.
    Info(&'a str),
    /// `PROGRESS STOP`.
    Stop,
}

/// Outcome of [`Debconf::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Code 0 (`OK`).
    Ok,
    /// Code 30 (`CANCELED`): the user cancelled the operation.
    Cancelled,
}

/// A confmodule protocol client over a reply reader `R` and a command
/// writer `W`.
///
/// Under a real frontend these are fd 0 and fd 3 (see
/// [`Debconf::connect`](crate::Debconf::connect)); for tests, any
/// [`BufRead`] and [`Write`] work.
#[derive(Debug)]
pub struct Debconf<R, W> {
    reader: R,
    writer: W,
    escape: bool,
    stopped: bool,
}

impl<R: BufRead, W: Write> Debconf<R, W> {
    /// A client reading replies from `reader` and writing commands to
    /// `writer`. Sends nothing; call [`Debconf::version`] and
    /// [`Debconf::capb`] as a confmodule normally would.
    pub fn new(reader: R, writer: W) -> Self {
        Debconf { reader, writer, escape: false, stopped: false }
    }

    /// Whether the `escape` capability is in effect (see [`Debconf::capb`]).
    pub fn escape_enabled(&self) -> bool {
        self.escape
    }

    /// Give back the reader and writer.
    pub fn into_inner(self) -> (R, W) {
        (self.reader, self.writer)
    }

    // ----------------------------------------------------------------
    // Plumbing

    /// Check that a question/template/field name is a single word.
    fn check_name(command: &Command, what: &str, name: &str) -> Result<()> {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::InvalidArgument {
                command: command.clone(),
                reason: format!("{what} must be one non-empty word: {}", shorten(name)),
            });
        }
        Ok(())
    }

    /// Encode the line for `word args…`.
    fn encode(&self, command: &Command, word: &str, args: &[&str]) -> Result<String> {
        let mut line = String::from(word);
        for arg in args {
            line.push(' ');
            if self.escape {
                line.push_str(&escape_arg(arg));
            } else if arg.contains('\n') {
                return Err(Error::InvalidArgument {
                    command: command.clone(),
                    reason: "newline in an argument without the escape capability \
                             (negotiate it with CAPB escape)"
                        .to_owned(),
                });
            } else {
                line.push_str(arg);
            }
        }
        line.push('\n');
        Ok(line)
    }

    /// Write one line and flush.
    fn send_line(&mut self, command: &Command, line: &str) -> Result<()> {
        if self.stopped {
            return Err(Error::Stopped { command: command.clone() });
        }
        log::debug!("debconf <-- {command}");
        self.writer
            .write_all(line.as_bytes())
            .and_then(|()| self.writer.flush())
            .map_err(|source| Error::Io { command: command.clone(), source })
    }

    /// Read exactly one reply line and parse it.
    fn read_reply(&mut self, command: &Command, sensitive: bool) -> Result<Reply> {
        let mut buf = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| Error::Io { command: command.clone(), source })?;
        if n == 0 {
            log::debug!("debconf --> EOF (reply to {command})");
            return Err(Error::Eof { command: command.clone() });
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        let line = String::from_utf8(buf).map_err(|_| Error::Protocol {
            command: command.clone(),
            reason: "reply is not valid UTF-8".to_owned(),
        })?;
        let reply = Reply::parse(&line, command)?;
        if sensitive && reply.is_success() {
            log::debug!(
                "debconf --> {} <{} bytes not logged> (reply to {command})",
                reply.code,
                reply.text.len()
            );
        } else {
            log::debug!("debconf --> {} {} (reply to {command})", reply.code, reply.text);
        }
        Ok(reply)
    }

    /// Send `word args…` and read its reply, without interpreting the code.
    fn transact(&mut self, command: &Command, word: &str, args: &[&str], sensitive: bool) -> Result<Reply> {
        let line = self.encode(command, word, args)?;
        self.send_line(command, &line)?;
        self.read_reply(command, sensitive)
    }

    /// The error for a non-success reply (code 30 is handled by callers
    /// that give it a meaning; here it is a command-specific failure).
    fn error_for(command: &Command, reply: Reply) -> Error {
        let command = command.clone();
        let Reply { code, text } = reply;
        match ReplyClass::of(code) {
            Some(ReplyClass::BadParams) => Error::BadParams { command, code, text },
            Some(ReplyClass::SyntaxError) => Error::Syntax { command, code, text },
            Some(ReplyClass::CommandSpecific) => Error::CommandFailed { command, code, text },
            Some(ReplyClass::InternalError) => Error::Internal { command, code, text },
            // Success codes never get here; reserved codes were rejected by
            // the parser.
            Some(ReplyClass::Success | ReplyClass::EscapedData) | None => {
                Error::Protocol { command, reason: format!("unexpected reply code {code}") }
            }
        }
    }

    /// Send and require a success (0 or 1) reply; return its text.
    fn simple(&mut self, command: &Command, word: &str, args: &[&str], sensitive: bool) -> Result<String> {
        let reply = self.transact(command, word, args, sensitive)?;
        if reply.is_success() {
            Ok(reply.text)
        } else {
            Err(Self::error_for(command, reply))
        }
    }

    /// Parse a `true`/`false` reply strictly.
    fn parse_bool(command: &Command, text: &str) -> Result<bool> {
        match text {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(Error::Protocol {
                command: command.clone(),
                reason: format!("expected true or false, got {}", shorten(other)),
            }),
        }
    }

    /// Send an arbitrary command and return the parsed reply whatever its
    /// code (only transport failures, EOF and unparseable/reserved replies
    /// are errors). An escape hatch for commands this crate has no method
    /// for, such as `PREVIOUS_MODULE`. Errors name only `word`, never the
    /// arguments; the reply text is logged.
    pub fn command(&mut self, word: &str, args: &[&str]) -> Result<Reply> {
        let command = Command::bare(&word.to_ascii_uppercase());
        Self::check_name(&command, "command word", word)?;
        self.transact(&command, word, args, false)
    }

    // ----------------------------------------------------------------
    // Commands

    /// `VERSION number`: tell the frontend which protocol version this
    /// client speaks (normally [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION),
    /// `2.0`). Returns the frontend's protocol version. Code 30 (major
    /// version too low or too high) is [`Error::VersionBad`].
    pub fn version(&mut self, version: &str) -> Result<String> {
        let command = Command::about("VERSION", version);
        Self::check_name(&command, "version", version)?;
        let reply = self.transact(&command, "VERSION", &[version], false)?;
        match reply.code {
            0 | 1 => Ok(reply.text),
            30 => Err(Error::VersionBad { command, text: reply.text }),
            _ => Err(Self::error_for(&command, reply)),
        }
    }

    /// `CAPB capabilities…`: announce this client's capabilities (replacing
    /// any earlier list) and return the frontend's (e.g. `multiselect`,
    /// `escape`, `backup`, `progresscancel`).
    ///
    /// The `escape` capability is in effect afterwards exactly when it was
    /// both requested here and listed in the reply; from then on arguments
    /// are escaped and code-1 replies unescaped (module docs, "Escaping").
    pub fn capb(&mut self, capabilities: &[&str]) -> Result<Vec<String>> {
        let command = Command::bare("CAPB");
        for cap in capabilities {
            Self::check_name(&command, "capability", cap)?;
        }
        let text = self.simple(&command, "CAPB", capabilities, false)?;
        let theirs: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        let wanted = capabilities.contains(&"escape");
        self.escape = wanted && theirs.iter().any(|c| c == "escape");
        if wanted && !self.escape {
            log::debug!("debconf: frontend did not offer the escape capability");
        }
        Ok(theirs)
    }

    /// `TITLE string`: set the title of the frontend's dialogs.
    pub fn title(&mut self, title: &str) -> Result<()> {
        let command = Command::bare("TITLE");
        self.simple(&command, "TITLE", &[title], false).map(drop)
    }

    /// `SETTITLE question`: set the title to the question's (translated)
    /// description.
    pub fn settitle(&mut self, question: &str) -> Result<()> {
        let command = Command::about("SETTITLE", question);
        Self::check_name(&command, "question", question)?;
        self.simple(&command, "SETTITLE", &[question], false).map(drop)
    }

    /// `INPUT priority question`: queue a question for the next `GO`.
    /// Code 30 ("question skipped") is [`Input::Skipped`], not an error.
    pub fn input(&mut self, priority: Priority, question: &str) -> Result<Input> {
        let command = Command::about("INPUT", question);
        Self::check_name(&command, "question", question)?;
        let reply = self.transact(&command, "INPUT", &[priority.as_str(), question], false)?;
        match reply.code {
            0 | 1 => Ok(Input::WillAsk),
            30 => Ok(Input::Skipped),
            _ => Err(Self::error_for(&command, reply)),
        }
    }

    /// `GO`: show the queued questions and store the answers. Code 30 is
    /// [`Go::Backup`] (the user pressed "back"; only with `CAPB backup`).
    pub fn go(&mut self) -> Result<Go> {
        let command = Command::bare("GO");
        let reply = self.transact(&command, "GO", &[], false)?;
        match reply.code {
            0 | 1 => Ok(Go::Continue),
            30 => Ok(Go::Backup),
            _ => Err(Self::error_for(&command, reply)),
        }
    }

    /// `GET question`: the question's value, verbatim (an unset value
    /// yields the template default, possibly the empty string). See
    /// [`is_true`] and [`Debconf::get_true`] for booleans.
    pub fn get(&mut self, question: &str) -> Result<String> {
        let command = Command::about("GET", question);
        Self::check_name(&command, "question", question)?;
        self.simple(&command, "GET", &[question], true)
    }

    /// `GET question`, then [`is_true`]: `Ok(true)` only when the value is
    /// exactly `true`.
    pub fn get_true(&mut self, question: &str) -> Result<bool> {
        self.get(question).map(|v| is_true(&v))
    }

    /// `SET question value`: set the question's value.
    ///
    /// Without the `escape` capability the frontend collapses runs of
    /// whitespace to one space and drops leading/trailing whitespace, and a
    /// newline is refused with [`Error::InvalidArgument`].
    pub fn set(&mut self, question: &str, value: &str) -> Result<()> {
        let command = Command::about("SET", question);
        Self::check_name(&command, "question", question)?;
        self.simple(&command, "SET", &[question, value], false).map(drop)
    }

    /// `RESET question`: value back to the template default and the `seen`
    /// flag to `false`.
    pub fn reset(&mut self, question: &str) -> Result<()> {
        let command = Command::about("RESET", question);
        Self::check_name(&command, "question", question)?;
        self.simple(&command, "RESET", &[question], false).map(drop)
    }

    /// `FSET question flag value`: set a flag (usually `seen` to `true` or
    /// `false`).
    pub fn fset(&mut self, question: &str, flag: &str, value: &str) -> Result<()> {
        let command = Command::about("FSET", question);
        Self::check_name(&command, "question", question)?;
        Self::check_name(&command, "flag", flag)?;
        self.simple(&command, "FSET", &[question, flag, value], false).map(drop)
    }

    /// `FGET question flag`: a flag's value, verbatim (`true`/`false`).
    pub fn fget(&mut self, question: &str, flag: &str) -> Result<String> {
        let command = Command::about("FGET", question);
        Self::check_name(&command, "question", question)?;
        Self::check_name(&command, "flag", flag)?;
        self.simple(&command, "FGET", &[question, flag], false)
    }

    /// `SUBST question key value`: set `${key}` in the question's
    /// description and choices.
    pub fn subst(&mut self, question: &str, key: &str, value: &str) -> Result<()> {
        let command = Command::about("SUBST", question);
        Self::check_name(&command, "question", question)?;
        Self::check_name(&command, "key", key)?;
        self.simple(&command, "SUBST", &[question, key, value], false).map(drop)
    }

    /// `METAGET question field`: a template field of the question
    /// (`description`, `extended_description`, `default`, `type`,
    /// `choices`, `owners`, …), verbatim.
    pub fn metaget(&mut self, question: &str, field: &str) -> Result<String> {
        let command = Command::about("METAGET", question);
        Self::check_name(&command, "question", question)?;
        Self::check_name(&command, "field", field)?;
        self.simple(&command, "METAGET", &[question, field], true)
    }

    /// `REGISTER template question`: create `question` using `template`,
    /// owned by the running package.
    pub fn register(&mut self, template: &str, question: &str) -> Result<()> {
        let command = Command::about("REGISTER", question);
        Self::check_name(&command, "template", template)?;
        Self::check_name(&command, "question", question)?;
        self.simple(&command, "REGISTER", &[template, question], false).map(drop)
    }

    /// `UNREGISTER question`: drop the running package's ownership of the
    /// question.
    pub fn unregister(&mut self, question: &str) -> Result<()> {
        let command = Command::about("UNREGISTER", question);
        Self::check_name(&command, "question", question)?;
        self.simple(&command, "UNREGISTER", &[question], false).map(drop)
    }

    /// `EXIST question`: whether the question exists (reply must be exactly
    /// `true` or `false`, anything else is [`Error::Protocol`]).
    pub fn exist(&mut self, question: &str) -> Result<bool> {
        let command = Command::about("EXIST", question);
        Self::check_name(&command, "question", question)?;
        let text = self.simple(&command, "EXIST", &[question], false)?;
        Self::parse_bool(&command, &text)
    }

    /// `CLEAR`: forget the questions queued with `INPUT`.
    pub fn clear(&mut self) -> Result<()> {
        let command = Command::bare("CLEAR");
        self.simple(&command, "CLEAR", &[], false).map(drop)
    }

    /// `BEGINBLOCK`: start a block of questions shown together (a no-op in
    /// debconf's frontends).
    pub fn beginblock(&mut self) -> Result<()> {
        let command = Command::bare("BEGINBLOCK");
        self.simple(&command, "BEGINBLOCK", &[], false).map(drop)
    }

    /// `ENDBLOCK`: end a block started with [`Debconf::beginblock`].
    pub fn endblock(&mut self) -> Result<()> {
        let command = Command::bare("ENDBLOCK");
        self.simple(&command, "ENDBLOCK", &[], false).map(drop)
    }

    /// `PROGRESS subcommand …`. Code 30 is [`Progress::Cancelled`].
    pub fn progress(&mut self, subcommand: ProgressCommand<'_>) -> Result<Progress> {
        let (min, max, num);
        let (command, args): (Command, Vec<&str>) = match subcommand {
            ProgressCommand::Start { min: lo, max: hi, question } => {
                let c = Command::about("PROGRESS START", question);
                Self::check_name(&c, "question", question)?;
                min = lo.to_string();
                max = hi.to_string();
                (c, vec!["START", &min, &max, question])
            }
            ProgressCommand::Set(v) => {
                num = v.to_string();
                (Command::bare("PROGRESS SET"), vec!["SET", &num])
            }
            ProgressCommand::Step(v) => {
                num = v.to_string();
                (Command::bare("PROGRESS STEP"), vec!["STEP", &num])
            }
            ProgressCommand::Info(question) => {
                let c = Command::about("PROGRESS INFO", question);
                Self::check_name(&c, "question", question)?;
                (c, vec!["INFO", question])
            }
            ProgressCommand::Stop => (Command::bare("PROGRESS STOP"), vec!["STOP"]),
        };
        let reply = self.transact(&command, "PROGRESS", &args, false)?;
        match reply.code {
            0 | 1 => Ok(Progress::Ok),
            30 => Ok(Progress::Cancelled),
            _ => Err(Self::error_for(&command, reply)),
        }
    }

    /// `X_LOADTEMPLATEFILE path [owner]`: load a templates file into the
    /// database, owned by `owner` (default: the running package).
    pub fn x_loadtemplatefile(&mut self, path: &Path, owner: Option<&str>) -> Result<()> {
        let path_str = path.to_str();
        let command = Command::about(
            "X_LOADTEMPLATEFILE",
            &path_str.map_or_else(|| path.display().to_string(), str::to_owned),
        );
        let path_str = path_str.ok_or_else(|| Error::InvalidArgument {
            command: command.clone(),
            reason: "template file path is not valid UTF-8".to_owned(),
        })?;
        if path_str.is_empty() || (!self.escape && path_str.chars().any(char::is_whitespace)) {
            return Err(Error::InvalidArgument {
                command,
                reason: "template file path is empty or contains whitespace \
                         (whitespace needs the escape capability)"
                    .to_owned(),
            });
        }
        let mut args = vec![path_str];
        if let Some(owner) = owner {
            Self::check_name(&command, "owner", owner)?;
            args.push(owner);
        }
        self.simple(&command, "X_LOADTEMPLATEFILE", &args, false).map(drop)
    }

    /// `PURGE`: remove the running package's ownership of all its questions
    /// (for `postrm purge`).
    pub fn purge(&mut self) -> Result<()> {
        let command = Command::bare("PURGE");
        self.simple(&command, "PURGE", &[], false).map(drop)
    }

    /// `STOP`: tell the frontend this program is done talking. No reply is
    /// read (the frontend sends none); every later command fails with
    /// [`Error::Stopped`]. Send it before starting a daemon that would keep
    /// the command pipe open.
    pub fn stop(&mut self) -> Result<()> {
        let command = Command::bare("STOP");
        self.send_line(&command, "STOP\n")?;
        self.stopped = true;
        Ok(())
    }

    /// `INFO [question]`: show the question's description as an out-of-band
    /// informative message; `None` clears it.
    pub fn info(&mut self, question: Option<&str>) -> Result<()> {
        match question {
            Some(q) => {
                let command = Command::about("INFO", q);
                Self::check_name(&command, "question", q)?;
                self.simple(&command, "INFO", &[q], false).map(drop)
            }
            None => {
                let command = Command::bare("INFO");
                self.simple(&command, "INFO", &[], false).map(drop)
            }
        }
    }

    /// `DATA template item value`: create a template (the first item must be
    /// `type`) or set one of its fields.
    ///
    /// debconf unescapes `\n`, `\"` and `\\` in DATA values itself, so
    /// `value` is sent with `\` → `\\` and newline → `\n` first (on top of
    /// the `escape` capability's encoding, when in effect); multi-line
    /// values therefore work with or without `escape`.
    pub fn data(&mut self, template: &str, item: &str, value: &str) -> Result<()> {
        let command = Command::about("DATA", template);
        Self::check_name(&command, "template", template)?;
        Self::check_name(&command, "item", item)?;
        let value = value.replace('\\', "\\\\").replace('\n', "\\n");
        self.simple(&command, "DATA", &[template, item, &value], false).map(drop)
    }

    /// `VISIBLE priority question`: whether the question would be shown
    /// at this priority (reply must be exactly `true` or `false`).
    pub fn visible(&mut self, priority: Priority, question: &str) -> Result<bool> {
        let command = Command::about("VISIBLE", question);
        Self::check_name(&command, "question", question)?;
        let text = self.simple(&command, "VISIBLE", &[priority.as_str(), question], false)?;
        Self::parse_bool(&command, &text)
    }
}

#[cfg(test)]
mod tests;
