//! Unit tests over a scripted in-memory frontend: canned reply lines in, a
//! byte buffer capturing the commands out.

use std::io::{self, Cursor, Write};
use std::path::Path;

use super::*;

type Fake = Debconf<Cursor<Vec<u8>>, Vec<u8>>;

/// A client whose frontend will answer with `replies` (one per line).
fn fake(replies: &str) -> Fake {
    Debconf::new(Cursor::new(replies.as_bytes().to_vec()), Vec::new())
}

/// A client that already negotiated `CAPB escape`.
fn fake_escaped(replies: &str) -> Fake {
    let mut dc = fake(&format!("0 multiselect escape\n{replies}"));
    dc.capb(&["escape"]).unwrap();
    assert!(dc.escape_enabled());
    dc
}

/// What was sent (minus the initial CAPB if `skip_capb`) and the replies
/// not consumed.
fn finish(dc: Fake, skip_capb: bool) -> (String, String) {
    let (reader, writer) = dc.into_inner();
    let pos = usize::try_from(reader.position()).unwrap();
    let unread = String::from_utf8(reader.into_inner()[pos..].to_vec()).unwrap();
    let mut sent = String::from_utf8(writer).unwrap();
    if skip_capb {
        assert!(sent.starts_with("CAPB escape\n"), "{sent:?}");
        sent = sent["CAPB escape\n".len()..].to_owned();
    }
    (sent, unread)
}

#[test]
fn version_and_capb() {
    let mut dc = fake("0 2.0\n0 multiselect escape backup\n");
    assert_eq!(dc.version(crate::PROTOCOL_VERSION).unwrap(), "2.0");
    let caps = dc.capb(&["backup", "escape"]).unwrap();
    assert_eq!(caps, ["multiselect", "escape", "backup"]);
    assert!(dc.escape_enabled());
    let (sent, unread) = finish(dc, false);
    assert_eq!(sent, "VERSION 2.0\nCAPB backup escape\n");
    assert_eq!(unread, "");
}

#[test]
fn version_bad_is_typed_error() {
    let mut dc = fake("30 Version too low (1.0)\n");
    let e = dc.version("1.0").unwrap_err();
    assert!(matches!(&e, Error::VersionBad { text, .. } if text == "Version too low (1.0)"), "{e}");
    assert_eq!(e.code(), Some(30));
}

#[test]
fn capb_escape_needs_both_sides() {
    // Requested but not offered.
    let mut dc = fake("0 multiselect\n");
    dc.capb(&["escape"]).unwrap();
    assert!(!dc.escape_enabled());
    // Offered but not requested: a new CAPB replaces the list, so escape
    // goes off again.
    let mut dc = fake_escaped("0 multiselect escape\n");
    dc.capb(&["backup"]).unwrap();
    assert!(!dc.escape_enabled());
    let (sent, _) = finish(dc, true);
    assert_eq!(sent, "CAPB backup\n");
}

#[test]
fn multi_word_value_without_escape_is_sent_verbatim() {
    let mut dc = fake("0 value set\n0 title\n");
    dc.set("demo/q", "two words  and more").unwrap();
    dc.title("LAVA server setup").unwrap();
    let (sent, _) = finish(dc, false);
    assert_eq!(sent, "SET demo/q two words  and more\nTITLE LAVA server setup\n");
}

#[test]
fn newline_without_escape_is_refused_before_sending() {
    let mut dc = fake("0 value set\n");
    let e = dc.set("demo/q", "line1\nSTOP").unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    assert!(!e.to_string().contains("line1"), "no value in errors: {e}");
    let (sent, unread) = finish(dc, false);
    assert_eq!(sent, "");
    assert_eq!(unread, "0 value set\n", "no reply consumed");
}

#[test]
fn escape_capability_escapes_backslash_newline_and_spaces() {
    let mut dc = fake_escaped("0 value set\n0 value set\n0\n");
    dc.set("demo/q", "a\\b c\nd").unwrap();
    dc.set("demo/q", "  lead and trail\t").unwrap();
    dc.subst("demo/q", "path", "/srv/my dir").unwrap();
    let (sent, unread) = finish(dc, true);
    assert_eq!(
        sent,
        "SET demo/q a\\\\b\\ c\\nd\n\
         SET demo/q \\ \\ lead\\ and\\ trail\\\t\n\
         SUBST demo/q path /srv/my\\ dir\n"
    );
    assert_eq!(unread, "");
}

#[test]
fn multi_line_value_round_trip_with_escape() {
    // The frontend answers GET with code 1 and its own escaping.
    let mut dc = fake_escaped("0 value set\n1 line 1\\nline\\\\2\\n\n");
    let value = "line 1\nline\\2\n";
    dc.set("demo/q", value).unwrap();
    assert_eq!(dc.get("demo/q").unwrap(), value);
    let (sent, _) = finish(dc, true);
    assert_eq!(sent, "SET demo/q line\\ 1\\nline\\\\2\\n\nGET demo/q\n");
}

#[test]
fn code_1_is_unescaped_even_for_plain_values() {
    let mut dc = fake_escaped("1 Dialog\n1 boolean\n");
    assert_eq!(dc.get("debconf/frontend").unwrap(), "Dialog");
    assert_eq!(dc.metaget("demo/q", "type").unwrap(), "boolean");
}

#[test]
fn get_returns_raw_text_and_is_true_is_strict() {
    let mut dc = fake("0 true\n0\n0 True\n0 true \n0 false\n");
    assert_eq!(dc.get("demo/q").unwrap(), "true");
    assert_eq!(dc.get("demo/q").unwrap(), "");
    assert!(!dc.get_true("demo/q").unwrap());
    assert_eq!(dc.get("demo/q").unwrap(), "true ");
    assert!(!dc.get_true("demo/q").unwrap());
    assert!(is_true("true"));
    for v in ["", "True", "TRUE", "yes", "1", " true", "true "] {
        assert!(!is_true(v), "{v:?}");
    }
}

#[test]
fn reads_exactly_one_reply_line_per_command() {
    let mut dc = fake("0 a\n0 b\n0 c\n");
    assert_eq!(dc.get("demo/a").unwrap(), "a");
    assert_eq!(dc.get("demo/b").unwrap(), "b");
    let (sent, unread) = finish(dc, false);
    assert_eq!(sent, "GET demo/a\nGET demo/b\n");
    assert_eq!(unread, "0 c\n");
}

/// A predicate on an error.
type ErrCheck = fn(&Error) -> bool;

#[test]
fn every_reply_code_class() {
    let cases: &[(&str, ErrCheck)] = &[
        ("10 demo/q doesn't exist", |e| matches!(e, Error::BadParams { code: 10, .. })),
        ("19 x", |e| matches!(e, Error::BadParams { code: 19, .. })),
        ("20 Incorrect number of arguments", |e| matches!(e, Error::Syntax { code: 20, .. })),
        ("29 x", |e| matches!(e, Error::Syntax { code: 29, .. })),
        ("30 what", |e| matches!(e, Error::CommandFailed { code: 30, .. })),
        ("31 x", |e| matches!(e, Error::CommandFailed { code: 31, .. })),
        ("99 x", |e| matches!(e, Error::CommandFailed { code: 99, .. })),
        ("100 Substitution failed", |e| matches!(e, Error::Internal { code: 100, .. })),
        ("109 x", |e| matches!(e, Error::Internal { code: 109, .. })),
        ("2 reserved", |e| matches!(e, Error::Protocol { .. })),
        ("9 reserved", |e| matches!(e, Error::Protocol { .. })),
        ("110 reserved", |e| matches!(e, Error::Protocol { .. })),
        ("255 reserved", |e| matches!(e, Error::Protocol { .. })),
        ("256 out of range", |e| matches!(e, Error::Protocol { .. })),
    ];
    for (line, check) in cases {
        let mut dc = fake(&format!("{line}\n"));
        let e = dc.set("demo/q", "s3cret-value").unwrap_err();
        assert!(check(&e), "{line}: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains("SET demo/q"), "{msg}");
        assert!(!msg.contains("s3cret"), "value leaked into error: {msg}");
        assert_eq!(e.command(), Some(&Command::about("SET", "demo/q")));
        if let Some(text) = e.frontend_text() {
            assert!(line.ends_with(text), "{line}: {text}");
        }
    }
}

#[test]
fn success_codes_0_and_1_for_plain_commands() {
    let mut dc = fake("0 value set\n1 value\\ set\n");
    dc.set("demo/q", "x").unwrap();
    dc.set("demo/q", "y").unwrap();
}

#[test]
fn input_will_ask_skipped_and_errors() {
    let mut dc = fake(
        "0 question will be asked\n30 question skipped\n10 \"demo/x\" doesn't exist\n\
         20 \"bogus\" is not a valid priority\n",
    );
    assert_eq!(dc.input(Priority::High, "demo/q").unwrap(), Input::WillAsk);
    assert_eq!(dc.input(Priority::Critical, "demo/q").unwrap(), Input::Skipped);
    let e = dc.input(Priority::Low, "demo/x").unwrap_err();
    assert!(matches!(&e, Error::BadParams { text, .. } if text.contains("doesn't exist")), "{e}");
    let e = dc.input(Priority::Medium, "demo/q").unwrap_err();
    assert!(matches!(e, Error::Syntax { .. }), "{e}");
    let (sent, _) = finish(dc, false);
    assert_eq!(sent, "INPUT high demo/q\nINPUT critical demo/q\nINPUT low demo/x\nINPUT medium demo/q\n");
}

#[test]
fn go_continue_and_backup() {
    let mut dc = fake("0 ok\n30 backup\n");
    assert_eq!(dc.go().unwrap(), Go::Continue);
    assert_eq!(dc.go().unwrap(), Go::Backup);
    let (sent, _) = finish(dc, false);
    assert_eq!(sent, "GO\nGO\n");
}

#[test]
fn progress_subcommands_and_cancel() {
    let mut dc = fake("0 OK\n0 OK\n30 CANCELED\n0 OK\n0 OK\n20 min (5) > max (1)\n");
    let start = ProgressCommand::Start { min: 0, max: 10, question: "demo/progress" };
    assert_eq!(dc.progress(start).unwrap(), Progress::Ok);
    assert_eq!(dc.progress(ProgressCommand::Set(3)).unwrap(), Progress::Ok);
    assert_eq!(dc.progress(ProgressCommand::Step(1)).unwrap(), Progress::Cancelled);
    assert_eq!(dc.progress(ProgressCommand::Info("demo/info")).unwrap(), Progress::Ok);
    assert_eq!(dc.progress(ProgressCommand::Stop).unwrap(), Progress::Ok);
    let bad = ProgressCommand::Start { min: 5, max: 1, question: "demo/progress" };
    let e = dc.progress(bad).unwrap_err();
    assert!(matches!(e, Error::Syntax { .. }), "{e}");
    assert_eq!(e.command().unwrap().to_string(), "PROGRESS START demo/progress");
    let (sent, _) = finish(dc, false);
    assert_eq!(
        sent,
        "PROGRESS START 0 10 demo/progress\nPROGRESS SET 3\nPROGRESS STEP 1\n\
         PROGRESS INFO demo/info\nPROGRESS STOP\nPROGRESS START 5 1 demo/progress\n"
    );
}

#[test]
fn stop_sends_and_reads_nothing() {
    let mut dc = fake("0 this must not be read\n");
    dc.stop().unwrap();
    let e = dc.get("demo/q").unwrap_err();
    assert!(matches!(e, Error::Stopped { .. }), "{e}");
    let (sent, unread) = finish(dc, false);
    assert_eq!(sent, "STOP\n");
    assert_eq!(unread, "0 this must not be read\n");
}

#[test]
fn eof_is_a_clear_error() {
    let mut dc = fake("");
    let e = dc.get("demo/q").unwrap_err();
    assert!(matches!(e, Error::Eof { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("GET demo/q") && msg.contains("end of file"), "{msg}");
}

#[test]
fn garbage_reply_is_protocol_error() {
    for line in ["hello, a stray line\n", "\n", "OK\n", "0x0 z\n", " 0 leading space\n"] {
        let mut dc = fake(line);
        let e = dc.go().unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{line:?}: {e}");
        assert!(e.to_string().contains("GO"), "{e}");
    }
    let mut dc = Debconf::new(Cursor::new(b"0 \xff\xfe\n".to_vec()), Vec::new());
    assert!(matches!(dc.get("demo/q").unwrap_err(), Error::Protocol { .. }));
}

#[test]
fn last_reply_without_newline_is_accepted() {
    let mut dc = fake("0 value");
    assert_eq!(dc.get("demo/q").unwrap(), "value");
}

#[test]
fn exist_and_visible_parse_true_false_strictly() {
    let mut dc = fake("0 true\n0 false\n0 maybe\n0 true\n0 false\n");
    assert!(dc.exist("demo/q").unwrap());
    assert!(!dc.exist("demo/nope").unwrap());
    assert!(matches!(dc.exist("demo/q").unwrap_err(), Error::Protocol { .. }));
    assert!(dc.visible(Priority::High, "demo/q").unwrap());
    assert!(!dc.visible(Priority::Low, "demo/q").unwrap());
    let (sent, _) = finish(dc, false);
    assert_eq!(
        sent,
        "EXIST demo/q\nEXIST demo/nope\nEXIST demo/q\nVISIBLE high demo/q\nVISIBLE low demo/q\n"
    );
}

#[test]
fn wire_format_of_the_simple_commands() {
    let mut dc = fake(&"0\n".repeat(16));
    dc.settitle("demo/title").unwrap();
    dc.reset("demo/q").unwrap();
    dc.fset("demo/q", "seen", "false").unwrap();
    assert_eq!(dc.fget("demo/q", "seen").unwrap(), "");
    dc.subst("demo/q", "count", "3 jobs").unwrap();
    dc.register("demo/template", "demo/q2").unwrap();
    dc.unregister("demo/q2").unwrap();
    dc.clear().unwrap();
    dc.beginblock().unwrap();
    dc.endblock().unwrap();
    dc.x_loadtemplatefile(Path::new("/tmp/t.templates"), None).unwrap();
    dc.x_loadtemplatefile(Path::new("/tmp/t.templates"), Some("lava-server")).unwrap();
    dc.purge().unwrap();
    dc.info(Some("demo/info")).unwrap();
    dc.info(None).unwrap();
    dc.data("demo/new", "description", "first\nsecond \\ third").unwrap();
    let (sent, unread) = finish(dc, false);
    assert_eq!(
        sent,
        "SETTITLE demo/title\nRESET demo/q\nFSET demo/q seen false\nFGET demo/q seen\n\
         SUBST demo/q count 3 jobs\nREGISTER demo/template demo/q2\nUNREGISTER demo/q2\n\
         CLEAR\nBEGINBLOCK\nENDBLOCK\nX_LOADTEMPLATEFILE /tmp/t.templates\n\
         X_LOADTEMPLATEFILE /tmp/t.templates lava-server\nPURGE\nINFO demo/info\nINFO\n\
         DATA demo/new description first\\nsecond \\\\ third\n"
    );
    assert_eq!(unread, "");
}

#[test]
fn data_with_escape_is_escaped_twice() {
    let mut dc = fake_escaped("0\n");
    dc.data("demo/new", "description", "a b\nc").unwrap();
    let (sent, _) = finish(dc, true);
    // DATA's own escaping (newline -> \n), then the capability's
    // (\ -> \\, space -> "\ ").
    assert_eq!(sent, "DATA demo/new description a\\ b\\\\nc\n");
}

#[test]
fn template_path_with_space_needs_escape() {
    let mut dc = fake("0\n");
    let e = dc.x_loadtemplatefile(Path::new("/tmp/my dir/t"), None).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    let mut dc = fake_escaped("0\n");
    dc.x_loadtemplatefile(Path::new("/tmp/my dir/t"), None).unwrap();
    let (sent, _) = finish(dc, true);
    assert_eq!(sent, "X_LOADTEMPLATEFILE /tmp/my\\ dir/t\n");
}

#[test]
fn question_names_must_be_single_words() {
    for name in ["", "demo/a b", "demo/a\nGO", "demo\t"] {
        let mut dc = fake("0 x\n");
        let e = dc.get(name).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{name:?}: {e}");
        let (sent, unread) = finish(dc, false);
        assert_eq!((sent.as_str(), unread.as_str()), ("", "0 x\n"));
    }
}

#[test]
fn raw_command_returns_any_code() {
    let mut dc = fake("30 question skipped\n0 ok\n");
    let r = dc.command("INPUT", &["high", "demo/q"]).unwrap();
    assert_eq!((r.code, r.text.as_str()), (30, "question skipped"));
    assert_eq!(r.class(), crate::ReplyClass::CommandSpecific);
    let r = dc.command("PREVIOUS_MODULE", &[]).unwrap();
    assert!(r.is_success());
}

/// A writer whose writes fail, like a closed command pipe.
struct BrokenPipe;

impl Write for BrokenPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_failure_is_io_error() {
    let mut dc = Debconf::new(Cursor::new(b"0 ok\n".to_vec()), BrokenPipe);
    let e = dc.go().unwrap_err();
    assert!(matches!(&e, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe));
}

/// A writer that records how many flushes happened after the last write.
#[derive(Default)]
struct FlushCheck {
    data: Vec<u8>,
    unflushed: bool,
}

impl Write for FlushCheck {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.unflushed = true;
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.unflushed = false;
        Ok(())
    }
}

#[test]
fn every_line_is_flushed() {
    let mut dc = Debconf::new(Cursor::new(b"0 ok\n".to_vec()), FlushCheck::default());
    dc.go().unwrap();
    dc.stop().unwrap();
    let (_, w) = dc.into_inner();
    assert!(!w.unflushed);
    assert_eq!(w.data, b"GO\nSTOP\n");
}
