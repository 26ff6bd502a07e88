//! A client for the debconf *confmodule* protocol, version 2.0.
//!
//! This crate lets a Rust program run from a Debian maintainer script (or as a
//! maintainer script) talk to debconf the way `/usr/share/debconf/confmodule`
//! does for shell scripts and `Debconf::Client::ConfModule` does for Perl.
//! The protocol is described in the *debconf specification* (the
//! `debconf_specification` document of the debian-policy package, "Debian
//! Configuration Management Specification") and in `debconf-devel(7)`; the
//! behaviour implemented here follows debconf 1.5's `Debconf::ConfModule`
//! (the frontend side) and its shell and Perl client libraries.
//!
//! # Start-up
//!
//! [`Debconf::connect`] / [`Debconf::from_env_or_exec`] mirror the shell
//! confmodule:
//!
//! 1. If `DEBIAN_HAS_FRONTEND` is empty or unset, no frontend is running: the
//!    process sets `PERL_DL_NONLAZY=1` and *execs*
//!    `/usr/share/debconf/frontend <argv0> <args…>` (or
//!    `/usr/lib/cdebconf/debconf …` when `DEBCONF_USE_CDEBCONF` is non-empty),
//!    which starts this program again with `DEBIAN_HAS_FRONTEND=1`.
//! 2. If `DEBCONF_REDIR` is empty or unset, fd 1 (the command pipe) is
//!    duplicated to fd 3, fd 1 is pointed at stderr (fd 5 under cdebconf) and
//!    `DEBCONF_REDIR=1` is exported, so stray output on stdout — from this
//!    program or from its children — cannot desynchronise the protocol.
//! 3. Commands are written to fd 3, replies are read from fd 0.  Fd 3 is
//!    marked close-on-exec: no program this process starts (nor a daemon
//!    it leaves behind) keeps the frontend's command pipe open.
//!
//! ```no_run
//! use lava_v1_debconf::{is_true, Debconf, Go, Priority, PROTOCOL_VERSION};
//!
//! # fn main() -> lava_v1_debconf::Result<()> {
//! let mut dc = Debconf::connect()?; // may exec the frontend
//! dc.version(PROTOCOL_VERSION)?;
//! dc.capb(&["escape"])?;
//! dc.input(Priority::High, "example/question")?; // WillAsk or Skipped
//! if dc.go()? == Go::Continue && is_true(&dc.get("example/question")?) {
//!     // …
//! }
//! dc.stop()?;
//! # Ok(())
//! # }
//! ```
//!
//! For tests, [`Debconf::new`] speaks the protocol over any
//! [`BufRead`](std::io::BufRead) / [`Write`](std::io::Write) pair.
//!
//! # Commands and replies
//!
//! Every protocol command has a method named after it in lower case
//! ([`Debconf::get`], [`Debconf::x_loadtemplatefile`], …). Each method writes
//! one line, flushes, and reads exactly one reply line (except
//! [`Debconf::stop`], which reads nothing). Replies are `<code>[ <text>]`:
//!
//! | code | meaning | result |
//! |---|---|---|
//! | 0 | success | `Ok` |
//! | 1 | success, escaped data | `Ok`, text unescaped |
//! | 10–19 | bad parameters | [`Error::BadParams`] |
//! | 20–29 | syntax error | [`Error::Syntax`] |
//! | 30 | context dependent | [`Input::Skipped`], [`Go::Backup`], [`Progress::Cancelled`], [`Error::VersionBad`] |
//! | 30–99 | command specific failure | [`Error::CommandFailed`] |
//! | 100–109 | frontend internal error | [`Error::Internal`] |
//! | anything else | protocol error | [`Error::Protocol`] |
//!
//! # Escaping
//!
//! Without the `escape` capability, arguments are split by the frontend on
//! runs of whitespace and re-joined with single spaces, and a newline would
//! end the command early (this crate refuses such arguments with
//! [`Error::InvalidArgument`]). After [`Debconf::capb`] negotiated `escape`,
//! arguments are sent with `\` → `\\`, newline → `\n` and whitespace → `\`
//! followed by the whitespace character, so values survive byte for byte; and
//! code-1 replies are unescaped (`\n` → newline, `\X` → `X`).
//!
//! # Logging
//!
//! The crate never writes to stdout. It logs each command word, question name
//! and reply code with [`log::debug!`]; values sent with `SET`/`SUBST`/`DATA`
//! and values received from `GET`/`METAGET` are never logged.

mod client;
mod error;
mod escape;
mod reply;
mod startup;
mod sys;

pub use client::{is_true, Debconf, Go, Input, Priority, Progress, ProgressCommand};
pub use error::{Command, Error, Result};
pub use escape::{escape_arg, unescape_reply};
pub use reply::{Reply, ReplyClass};
pub use startup::{FrontendPaths, StdDebconf, PROTOCOL_VERSION};
