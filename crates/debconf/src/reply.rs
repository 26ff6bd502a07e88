//! Parsing of reply lines: `<code>[ <text>]` (debconf specification,
//! "Return codes").

use crate::error::{Command, Error, Result};
use crate::escape::unescape_reply;

/// How a reply code is classified by the debconf specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyClass {
    /// Code 0.
    Success,
    /// Code 1: success, the text is escaped (only after `CAPB escape`).
    EscapedData,
    /// Codes 10–19.
    BadParams,
    /// Codes 20–29.
    SyntaxError,
    /// Codes 30–99: meaning depends on the command (code 30 is "question
    /// skipped" for `INPUT`, "back up" for `GO`, "cancelled" for `PROGRESS`,
    /// "version too low/high" for `VERSION`).
    CommandSpecific,
    /// Codes 100–109.
    InternalError,
}

impl ReplyClass {
    /// Classify a numeric code; `None` for codes the specification reserves
    /// (2–9, 110–255), which a frontend must not send.
    pub fn of(code: u8) -> Option<ReplyClass> {
        match code {
            0 => Some(ReplyClass::Success),
            1 => Some(ReplyClass::EscapedData),
            10..=19 => Some(ReplyClass::BadParams),
            20..=29 => Some(ReplyClass::SyntaxError),
            30..=99 => Some(ReplyClass::CommandSpecific),
            100..=109 => Some(ReplyClass::InternalError),
            _ => None,
        }
    }
}

/// One parsed reply from the frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The numeric code.
    pub code: u8,
    /// The text after the code and the first whitespace character; already
    /// unescaped when `code` is 1.
    pub text: String,
}

impl Reply {
    /// The class of [`Reply::code`].
    pub fn class(&self) -> ReplyClass {
        // `parse` only builds replies with non-reserved codes.
        ReplyClass::of(self.code).unwrap_or(ReplyClass::InternalError)
    }

    /// Whether the code is 0 or 1.
    pub fn is_success(&self) -> bool {
        self.code <= 1
    }

    /// Parse one reply line (without its trailing newline). `command` is
    /// only used for error messages.
    pub(crate) fn parse(line: &str, command: &Command) -> Result<Reply> {
        let (code_str, text) = match line.find([' ', '\t']) {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, ""),
        };
        let protocol = |reason: String| Error::Protocol { command: command.clone(), reason };
        if code_str.is_empty() || !code_str.bytes().all(|b| b.is_ascii_digit()) {
            return Err(protocol(format!("reply does not start with a numeric code: {}", shorten(line))));
        }
        let code: u8 = code_str
            .parse()
            .map_err(|_| protocol(format!("reply code out of range: {}", shorten(code_str))))?;
        if ReplyClass::of(code).is_none() {
            return Err(protocol(format!("reply uses reserved code {code}: {}", shorten(line))));
        }
        let text = if code == 1 { unescape_reply(text) } else { text.to_owned() };
        Ok(Reply { code, text })
    }
}

/// A bounded, debug-quoted rendering of an unexpected line for error
/// messages.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 120;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Command {
        Command::about("GET", "demo/q")
    }

    #[test]
    fn parses_code_and_text() {
        let r = Reply::parse("0 question will be asked", &cmd()).unwrap();
        assert_eq!(r.code, 0);
        assert_eq!(r.text, "question will be asked");
        assert_eq!(r.class(), ReplyClass::Success);
    }

    #[test]
    fn code_only_and_empty_text() {
        assert_eq!(Reply::parse("0", &cmd()).unwrap().text, "");
        assert_eq!(Reply::parse("0 ", &cmd()).unwrap().text, "");
    }

    #[test]
    fn splits_at_first_whitespace_only() {
        let r = Reply::parse("0  two  spaces\tand tab ", &cmd()).unwrap();
        assert_eq!(r.text, " two  spaces\tand tab ");
        let r = Reply::parse("10\tx", &cmd()).unwrap();
        assert_eq!((r.code, r.text.as_str()), (10, "x"));
    }

    #[test]
    fn escaped_data_is_unescaped() {
        let r = Reply::parse(r"1 a\nb\\c d", &cmd()).unwrap();
        assert_eq!(r.code, 1);
        assert!(r.is_success());
        assert_eq!(r.text, "a\nb\\c d");
    }

    #[test]
    fn classes() {
        for (code, class) in [
            (0, ReplyClass::Success),
            (1, ReplyClass::EscapedData),
            (10, ReplyClass::BadParams),
            (19, ReplyClass::BadParams),
            (20, ReplyClass::SyntaxError),
            (29, ReplyClass::SyntaxError),
            (30, ReplyClass::CommandSpecific),
            (99, ReplyClass::CommandSpecific),
            (100, ReplyClass::InternalError),
            (109, ReplyClass::InternalError),
        ] {
            assert_eq!(ReplyClass::of(code), Some(class), "{code}");
        }
        for code in [2, 9, 110, 255] {
            assert_eq!(ReplyClass::of(code), None, "{code}");
        }
    }

    #[test]
    fn garbage_is_protocol_error() {
        for line in ["", "hello, a stray line", "-1 x", "0x1 y", "256 big", "5 reserved", "110 reserved"] {
            let e = Reply::parse(line, &cmd()).unwrap_err();
            assert!(matches!(e, Error::Protocol { .. }), "{line:?}: {e}");
        }
    }
}
