//! How every program of the project tells an admin about an error: the
//! error, each of its causes once, and what to do next (the hint) last.
//! The CLI, the maintainer scripts and the bug report all print through
//! [`render`]; journals and debconf text use [`one_line`].

/// An error that may say what the admin should do next.
pub trait Hinted: std::error::Error {
    /// What to do next, if there is something to say.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// The error for people, ending with a newline:
///
/// ```text
/// {program}: error: {the error}
///   caused by: {its cause}
///   caused by: {the cause's cause}
///
/// hint: {what to do}
/// ```
///
/// A cause whose text the line before already holds (a wrapper that
/// repeats its source) is not printed again.
pub fn render(program: &str, e: &dyn Hinted) -> String {
    let mut out = format!("{program}: error: {e}\n");
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !last.contains(&text) {
            out.push_str(&format!("  caused by: {text}\n"));
        }
        last = text;
        source = cause.source();
    }
    if let Some(hint) = e.hint() {
        out.push_str(&format!("\nhint: {hint}\n"));
    }
    out
}

/// The error and its causes on one line (`error: cause: cause`), each
/// once, newlines replaced: for the journal and debconf text.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut last = text.clone();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !last.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        last = c;
        source = cause.source();
    }
    text.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner: broken pipe")]
    struct Inner(#[source] std::io::Error);

    impl Hinted for Outer {
        fn hint(&self) -> Option<String> {
            Some("do this".into())
        }
    }

    #[test]
    fn each_line_once_and_the_hint_last() {
        let e = Outer(Inner(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe")));
        assert_eq!(
            render("prog", &e),
            "prog: error: outer\n  caused by: inner: broken pipe\n\nhint: do this\n"
        );
        assert_eq!(one_line(&e), "outer: inner: broken pipe");
    }
}
