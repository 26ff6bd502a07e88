//! `debconf-probe`: a test program for `tests/real_frontend.rs`.
//!
//! It talks to a real debconf frontend through `lava_v1_debconf` and checks
//! the replies; it is not part of the library API and is not installed by
//! the Debian package.
//!
//! Usage: `debconf-probe MODE [ARGS…]`, where MODE is
//!
//! - `escape TEMPLATES` / `plain TEMPLATES`: start (exec) the frontend if
//!   needed, negotiate (or not) the `escape` capability, load TEMPLATES and
//!   exercise the commands; deliberately writes stray lines to stdout (its
//!   own and a child's) that must not reach the protocol.
//! - `child`: run under a shell confmodule that already set up fd 3: SET
//!   `probe/string` to `set by the child` and exit without STOP.
//!
//! Both check that a child process it starts holds no descriptor of the
//! debconf command pipe.
//! - `exec-only`: like the first mode's start-up, with the frontend paths
//!   taken from `DEBCONF_PROBE_FRONTEND` / `DEBCONF_PROBE_CDEBCONF` (used to
//!   test the exec step with a fake frontend).
//!
//! Exits 0 when every check passed; otherwise prints `probe FAIL: …` on
//! stderr and exits 1.

use std::env;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{self, ExitCode};

use lava_v1_debconf::{
    Debconf, Error, FrontendPaths, Go, Input, Priority, Progress, ProgressCommand, StdDebconf,
    PROTOCOL_VERSION,
};

type Check<T> = Result<T, String>;

/// Compare and describe.
fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Check<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

/// Turn a library error into a check failure.
fn dc<T>(what: &str, r: lava_v1_debconf::Result<T>) -> Check<T> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// Output that deliberately goes to stdout: after the confmodule start-up
/// it must land on stderr, not in the command pipe.
#[allow(clippy::print_stdout)] // the point of this function
fn stray_stdout(tag: &str) -> Check<()> {
    println!("stray line on stdout ({tag}): GO");
    println!("STOP");
    std::io::stdout().flush().map_err(|e| format!("flush stdout: {e}"))?;
    let status = process::Command::new("sh")
        .arg("-c")
        .arg(format!("echo 'child stray stdout ({tag})'"))
        .status()
        .map_err(|e| format!("spawn sh: {e}"))?;
    expect_eq("child status", status.success(), true)
}

/// A child process holds no descriptor of the debconf command pipe (fd 3):
/// a daemon started from a maintainer script would keep it open.
fn pipe_not_inherited(tag: &str) -> Check<()> {
    let pipe = std::fs::read_link("/proc/self/fd/3").map_err(|e| format!("readlink fd 3: {e}"))?;
    let out = process::Command::new("sh")
        .arg("-c")
        .arg(r#"for f in /proc/$$/fd/*; do echo "${f##*/} $(readlink "$f")"; done"#)
        .output()
        .map_err(|e| format!("spawn sh: {e}"))?;
    let listing = String::from_utf8_lossy(&out.stdout);
    let pipe = pipe.to_string_lossy();
    match listing.lines().find(|l| l.split_once(' ').is_some_and(|(_, target)| target == pipe)) {
        Some(l) => Err(format!("a child holds the debconf command pipe {pipe} ({tag}): fd {l}")),
        None => Ok(()),
    }
}

/// The full exercise of the commands against a real frontend.
fn exercise(mode: &str, templates: &Path) -> Check<()> {
    let escape = mode == "escape";
    let mut d: StdDebconf = dc("connect", Debconf::connect())?;
    stray_stdout("after connect")?;
    pipe_not_inherited("after connect")?;

    expect_eq("VERSION", dc("VERSION", d.version(PROTOCOL_VERSION))?, "2.0".to_owned())?;
    match d.version("1.0") {
        Err(Error::VersionBad { text, .. }) if text.contains("too low") => {}
        other => return Err(format!("VERSION 1.0: {other:?}")),
    }
    let caps: &[&str] = if escape { &["escape"] } else { &[] };
    let theirs = dc("CAPB", d.capb(caps))?;
    expect_eq("frontend offers escape", theirs.iter().any(|c| c == "escape"), true)?;
    expect_eq("escape enabled", d.escape_enabled(), escape)?;

    dc("X_LOADTEMPLATEFILE", d.x_loadtemplatefile(templates, None))?;
    match d.x_loadtemplatefile(Path::new("/nonexistent/probe.templates"), None) {
        Err(Error::BadParams { code: 10, .. }) => {}
        other => return Err(format!("X_LOADTEMPLATEFILE missing file: {other:?}")),
    }
    expect_eq("EXIST probe/bool", dc("EXIST", d.exist("probe/bool"))?, true)?;
    expect_eq("EXIST probe/missing", dc("EXIST", d.exist("probe/missing"))?, false)?;

    // Defaults and template fields.
    expect_eq("GET probe/bool", dc("GET", d.get("probe/bool"))?, "true".to_owned())?;
    expect_eq("get_true probe/bool", dc("GET", d.get_true("probe/bool"))?, true)?;
    expect_eq("METAGET type", dc("METAGET", d.metaget("probe/bool", "type"))?, "boolean".into())?;
    expect_eq("METAGET default", dc("METAGET", d.metaget("probe/bool", "default"))?, "true".into())?;
    expect_eq(
        "METAGET description",
        dc("METAGET", d.metaget("probe/bool", "description"))?,
        "Remove the V1 data?".to_owned(),
    )?;
    let ext = dc("METAGET", d.metaget("probe/bool", "extended_description"))?;
    if !ext.starts_with("First extended line.") {
        return Err(format!("METAGET extended_description: {ext:?}"));
    }
    if escape && !ext.contains('\n') {
        return Err(format!("multi-line extended_description lost its newline: {ext:?}"));
    }
    match d.metaget("probe/missing", "description") {
        Err(Error::BadParams { .. }) => {}
        other => return Err(format!("METAGET missing question: {other:?}")),
    }

    // INPUT under the noninteractive frontend: skipped, not an error.
    expect_eq("INPUT high", dc("INPUT", d.input(Priority::High, "probe/bool"))?, Input::Skipped)?;
    match d.input(Priority::Critical, "probe/missing") {
        Err(Error::BadParams { .. }) => {}
        other => return Err(format!("INPUT missing question: {other:?}")),
    }
    expect_eq("GO", dc("GO", d.go())?, Go::Continue)?;
    expect_eq("GET after GO", dc("GET", d.get("probe/bool"))?, "true".to_owned())?;

    // SET/GET round trips.
    dc("SET", d.set("probe/string", "multi  word value"))?;
    let want = if escape { "multi  word value" } else { "multi word value" };
    expect_eq("GET multi-word", dc("GET", d.get("probe/string"))?, want.to_owned())?;
    if escape {
        let tricky = " line 1\nline\\2 with  spaces\n\\n literal ";
        dc("SET", d.set("probe/string", tricky))?;
        expect_eq("GET multi-line", dc("GET", d.get("probe/string"))?, tricky.to_owned())?;
    } else {
        match d.set("probe/string", "two\nlines") {
            Err(Error::InvalidArgument { .. }) => {}
            other => return Err(format!("SET newline without escape: {other:?}")),
        }
    }
    stray_stdout("between commands")?;
    dc("SET", d.set("probe/string", "after stray"))?;
    expect_eq("GET after stray", dc("GET", d.get("probe/string"))?, "after stray".into())?;
    dc("SET", d.set("probe/string", ""))?;
    expect_eq("GET empty", dc("GET", d.get("probe/string"))?, String::new())?;
    match d.set("probe/missing", "x") {
        Err(Error::BadParams { .. }) => {}
        other => return Err(format!("SET missing question: {other:?}")),
    }

    // SUBST fills ${thing} in the description.
    dc("SUBST", d.subst("probe/string", "thing", "the V1  data"))?;
    let want = if escape { "Pick a value for the V1  data" } else { "Pick a value for the V1 data" };
    expect_eq("SUBST", dc("METAGET", d.metaget("probe/string", "description"))?, want.into())?;

    // Flags.
    dc("FSET", d.fset("probe/bool", "seen", "true"))?;
    expect_eq("FGET seen", dc("FGET", d.fget("probe/bool", "seen"))?, "true".into())?;
    expect_eq("INPUT seen", dc("INPUT", d.input(Priority::Critical, "probe/bool"))?, Input::Skipped)?;
    dc("RESET", d.reset("probe/bool"))?;
    expect_eq("FGET after RESET", dc("FGET", d.fget("probe/bool", "seen"))?, "false".into())?;
    dc("SET", d.set("probe/string", "changed"))?;
    dc("RESET", d.reset("probe/string"))?;
    expect_eq("GET after RESET", dc("GET", d.get("probe/string"))?, "def  ault".into())?;

    // Progress, titles, blocks, info.
    let start = ProgressCommand::Start { min: 0, max: 10, question: "probe/progress" };
    expect_eq("PROGRESS START", dc("PROGRESS", d.progress(start))?, Progress::Ok)?;
    expect_eq("PROGRESS SET", dc("PROGRESS", d.progress(ProgressCommand::Set(5)))?, Progress::Ok)?;
    expect_eq("PROGRESS STEP", dc("PROGRESS", d.progress(ProgressCommand::Step(1)))?, Progress::Ok)?;
    let info = ProgressCommand::Info("probe/progress");
    expect_eq("PROGRESS INFO", dc("PROGRESS", d.progress(info))?, Progress::Ok)?;
    expect_eq("PROGRESS STOP", dc("PROGRESS", d.progress(ProgressCommand::Stop))?, Progress::Ok)?;
    let bad = ProgressCommand::Start { min: 5, max: 1, question: "probe/progress" };
    match d.progress(bad) {
        Err(Error::Syntax { .. }) => {}
        other => return Err(format!("PROGRESS START min>max: {other:?}")),
    }
    dc("TITLE", d.title("LAVA probe title"))?;
    dc("SETTITLE", d.settitle("probe/bool"))?;
    dc("INFO", d.info(Some("probe/progress")))?;
    dc("INFO", d.info(None))?;
    dc("BEGINBLOCK", d.beginblock())?;
    dc("ENDBLOCK", d.endblock())?;
    dc("CLEAR", d.clear())?;
    dc("VISIBLE", d.visible(Priority::Critical, "probe/bool"))?;

    // REGISTER / UNREGISTER / DATA.
    dc("REGISTER", d.register("probe/string", "probe/alias"))?;
    expect_eq("EXIST alias", dc("EXIST", d.exist("probe/alias"))?, true)?;
    expect_eq("GET alias", dc("GET", d.get("probe/alias"))?, "def  ault".into())?;
    dc("UNREGISTER", d.unregister("probe/alias"))?;
    // DATA: debconf 1.5 stores the non-type fields only when it can
    // convert their charset (Text::Iconv and a locale charmap), which a
    // minimal system may lack; only the type is checked here, the wire
    // format of multi-line values is covered by the unit tests.
    dc("DATA", d.data("probe/dyn", "type", "string"))?;
    dc("DATA", d.data("probe/dyn", "description", "Dynamic  one"))?;
    dc("DATA", d.data("probe/dyn", "extended_description", "line a\nline \\b"))?;
    match d.data("probe/dyn", "type", "boolean") {
        Err(Error::BadParams { .. }) => {}
        other => return Err(format!("DATA type twice: {other:?}")),
    }
    dc("REGISTER", d.register("probe/dyn", "probe/dynq"))?;
    expect_eq("DATA type", dc("METAGET", d.metaget("probe/dynq", "type"))?, "string".into())?;

    // Unknown command through the raw escape hatch.
    let r = dc("FROB", d.command("FROB", &["x"]))?;
    expect_eq("FROB code", r.code, 20)?;

    // The value the test reads back from the private database.
    dc("SET", d.set("probe/bool", "false"))?;
    dc("STOP", d.stop())?;
    match d.get("probe/bool") {
        Err(Error::Stopped { .. }) => {}
        other => return Err(format!("GET after STOP: {other:?}")),
    }
    stray_stdout("after STOP")?;
    Ok(())
}

/// Run under a shell confmodule that already owns fd 3.
fn child() -> Check<()> {
    let mut d = dc("connect", Debconf::connect())?;
    stray_stdout("child")?;
    pipe_not_inherited("child")?;
    expect_eq("child GET", dc("GET", d.get("probe/bool"))?, "true".into())?;
    dc("SET", d.set("probe/string", "set by the child"))?;
    Ok(())
}

/// Only the start-up, with overridable frontend paths.
fn exec_only() -> Check<()> {
    let path = |var: &str| env::var_os(var).map(PathBuf::from);
    let defaults = FrontendPaths::default();
    let paths = FrontendPaths {
        debconf: path("DEBCONF_PROBE_FRONTEND").unwrap_or(defaults.debconf),
        cdebconf: path("DEBCONF_PROBE_CDEBCONF").unwrap_or(defaults.cdebconf),
    };
    let mut d = dc("connect", Debconf::from_env_or_exec(env::args_os(), &paths))?;
    dc("STOP", d.stop())
}

#[allow(clippy::print_stderr)] // diagnostics of a test program
fn main() -> ExitCode {
    let args: Vec<String> = env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some(mode @ ("escape" | "plain")) => match args.get(2) {
            Some(t) => exercise(mode, Path::new(t)),
            None => Err("usage: debconf-probe escape|plain TEMPLATES".to_owned()),
        },
        Some("child") => child(),
        Some("exec-only") => exec_only(),
        _ => Err("usage: debconf-probe escape|plain|child|exec-only …".to_owned()),
    };
    match result {
        Ok(()) => {
            eprintln!("probe: all checks passed ({})", args[1..].join(" "));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("probe FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}
