//! The `escape` capability's encoding (debconf-devel(7), "CAPB"; debconf's
//! `Debconf::ConfModule::unescape_split` and `debconf-escape(1)`).

/// Whitespace characters that debconf's `unescape_split` splits arguments
/// on (Perl `\s` on a byte string: space, tab, newline, vertical tab, form
/// feed, carriage return).
fn is_split_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c')
}

/// Escape one command argument for a frontend that negotiated the `escape`
/// capability.
///
/// `\` becomes `\\`, a newline becomes `\n`, and every whitespace character
/// is preceded by a backslash so the frontend does not split the argument
/// there (`\X` is unescaped to `X`). Everything else is sent as is.
pub fn escape_arg(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 8);
    for c in arg.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if is_split_whitespace(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Unescape the text of a code-1 ("escaped data") reply.
///
/// `\n` becomes a newline and `\X` becomes `X` for any other character `X`
/// (so `\\` becomes `\`); a lone trailing backslash is kept. This is what
/// `debconf-escape -u` and `Debconf::Client::ConfModule` do.
pub fn unescape_reply(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_plain_word_unchanged() {
        assert_eq!(escape_arg("demo/removev1"), "demo/removev1");
    }

    #[test]
    fn escape_backslash_newline_space() {
        assert_eq!(escape_arg(r"a\b"), r"a\\b");
        assert_eq!(escape_arg("a\nb"), r"a\nb");
        assert_eq!(escape_arg("a b"), r"a\ b");
        assert_eq!(escape_arg("a\tb"), "a\\\tb");
        assert_eq!(escape_arg(" lead  trail "), r"\ lead\ \ trail\ ");
        // A literal backslash followed by n must not become a newline.
        assert_eq!(escape_arg(r"\n"), r"\\n");
    }

    #[test]
    fn unescape_inverse_of_escape_for_reply_escaping() {
        // The frontend escapes replies with only \ -> \\ and newline -> \n.
        let frontend_escape = |s: &str| s.replace('\\', "\\\\").replace('\n', "\\n");
        for s in ["", "plain", "two words", "a\nb", r"back\slash", "\\n literal", "x\\"] {
            assert_eq!(unescape_reply(&frontend_escape(s)), s, "{s:?}");
        }
    }

    #[test]
    fn unescape_other_escapes_and_trailing_backslash() {
        assert_eq!(unescape_reply(r"\a\ b"), "a b");
        assert_eq!(unescape_reply("end\\"), "end\\");
        assert_eq!(unescape_reply(r"l1\nl2\\n"), "l1\nl2\\n");
    }
}
