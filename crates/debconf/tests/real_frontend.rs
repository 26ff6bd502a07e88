//! Runs the `debconf-probe` test program under Debian's real debconf
//! frontend (`/usr/share/debconf/frontend`, debconf 1.5) with a private
//! database: `DEBCONF_SYSTEMRC` points at a temporary `debconf.conf` whose
//! File drivers live in a temporary directory, so `/var/cache/debconf` is
//! never read or written.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FRONTEND: &str = "/usr/share/debconf/frontend";
const PROBE: &str = env!("CARGO_BIN_EXE_debconf-probe");

const TEMPLATES: &str = "\
Template: probe/bool
Type: boolean
Default: true
Description: Remove the V1 data?
 First extended line.
 .
 Second paragraph.

Template: probe/string
Type: string
Default: def  ault
Description: Pick a value for ${thing}
 Some text about ${thing}.

Template: probe/progress
Type: text
Description: Working on the probe
";

/// Variables that would make the frontend use another database, another
/// frontend or another priority than the test wants.
const SCRUB: &[&str] = &[
    "DEBIAN_HAS_FRONTEND",
    "DEBCONF_REDIR",
    "DEBCONF_USE_CDEBCONF",
    "DEBCONF_DB_REPLACE",
    "DEBCONF_DB_OVERRIDE",
    "DEBCONF_DB_FALLBACK",
    "DEBCONF_FRONTEND",
    "DEBCONF_PRIORITY",
    "DEBIAN_PRIORITY",
    "DEBCONF_NONINTERACTIVE_SEEN",
    "DEBCONF_DEBUG",
    "DEBCONF_SYSTEMRC",
    "DPKG_ROOT",
    "DEBCONF_PROBE_FRONTEND",
    "DEBCONF_PROBE_CDEBCONF",
];

/// A temporary directory holding a private debconf database, removed on
/// drop.
struct PrivateDb {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl PrivateDb {
    fn new(name: &str) -> PrivateDb {
        let tmp =
            tempfile::Builder::new().prefix(&format!("lava-v1-debconf-test-{name}.")).tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let conf = format!(
            "Config: configdb\nTemplates: templatedb\n\n\
             Name: configdb\nDriver: File\nMode: 600\nFilename: {d}/config.dat\n\n\
             Name: templatedb\nDriver: File\nMode: 600\nFilename: {d}/templates.dat\n",
            d = dir.display()
        );
        fs::write(dir.join("debconf.conf"), conf).unwrap();
        fs::write(dir.join("probe.templates"), TEMPLATES).unwrap();
        PrivateDb { _tmp: tmp, dir }
    }

    fn templates(&self) -> PathBuf {
        self.dir.join("probe.templates")
    }

    /// A command with the private database and the noninteractive
    /// frontend configured.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for var in SCRUB {
            cmd.env_remove(var);
        }
        cmd.env("DEBCONF_SYSTEMRC", self.dir.join("debconf.conf"))
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("DEBCONF_PACKAGE", "lava-v1-probe")
            .env("HOME", &self.dir);
        cmd
    }

    fn config_dat(&self) -> String {
        fs::read_to_string(self.dir.join("config.dat")).unwrap_or_default()
    }

    fn write_script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

fn have_debconf() -> bool {
    Path::new(FRONTEND).exists()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The probe execs the frontend itself (no DEBIAN_HAS_FRONTEND), the
/// frontend runs it again, and it exercises every command.
fn run_probe(mode: &str) {
    if !have_debconf() {
        panic!("{FRONTEND} missing: install debconf to run this test");
    }
    let db = PrivateDb::new(mode);
    let out = db.command(PROBE).arg(mode).arg(db.templates()).output().unwrap();
    assert_success(&format!("probe {mode}"), &out);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("probe: all checks passed"), "{stderr}");
    // Stray stdout of the program and of its child went to stderr, not into
    // the command pipe (the probe's checks would have failed) nor to the
    // frontend's stdout.
    for tag in ["after connect", "between commands", "after STOP"] {
        assert!(stderr.contains(&format!("stray line on stdout ({tag})")), "{stderr}");
        assert!(stderr.contains(&format!("child stray stdout ({tag})")), "{stderr}");
    }
    assert!(!stdout.contains("stray"), "stray output on the frontend's stdout: {stdout}");
    // The database is the private one and was saved after STOP.
    let config = db.config_dat();
    let stanza = config
        .split("\n\n")
        .find(|s| s.starts_with("Name: probe/bool\n"))
        .unwrap_or_else(|| panic!("probe/bool not saved in the private DB:\n{config}"));
    assert!(stanza.contains("\nValue: false\n"), "{stanza}");
    assert!(stanza.contains("lava-v1-probe"), "owner: {stanza}");
}

#[test]
fn real_frontend_with_escape() {
    run_probe("escape");
}

#[test]
fn real_frontend_without_escape() {
    run_probe("plain");
}

/// A shell maintainer script that sourced the confmodule starts the Rust
/// program as a child: the child must use the inherited fd 3 and leave the
/// parent in sync.
#[test]
fn rust_child_of_a_shell_confmodule() {
    if !have_debconf() {
        panic!("{FRONTEND} missing: install debconf to run this test");
    }
    let db = PrivateDb::new("child");
    let script = db.write_script(
        "parent.sh",
        "#!/bin/sh\n\
         set -e\n\
         . /usr/share/debconf/confmodule\n\
         db_version 2.0\n\
         db_x_loadtemplatefile \"$1\"\n\
         \"$2\" child\n\
         db_get probe/string\n\
         [ \"$RET\" = 'set by the child' ] || { echo \"parent FAIL: $RET\" >&2; exit 3; }\n\
         db_get probe/bool\n\
         echo \"parent ok: $RET\" >&2\n",
    );
    let out = db.command(&script).arg(db.templates()).arg(PROBE).output().unwrap();
    assert_success("parent.sh", &out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("probe: all checks passed (child)"), "{stderr}");
    assert!(stderr.contains("parent ok: true"), "{stderr}");
    assert!(stderr.contains("child stray stdout (child)"), "{stderr}");
    assert!(!text(&out.stdout).contains("stray"), "{}", text(&out.stdout));
    assert!(db.config_dat().contains("Value: set by the child"));
}

/// The exec step uses the frontend path given through the API, sets
/// PERL_DL_NONLAZY=1 and passes argv[0] as given plus all arguments; with
/// DEBCONF_USE_CDEBCONF it picks the cdebconf path.
#[test]
fn exec_step_with_fake_frontends() {
    let db = PrivateDb::new("exec");
    let record = "#!/bin/sh\n\
                  { echo \"FRONTEND=$FAKE_NAME NONLAZY=$PERL_DL_NONLAZY\"; \
                  for a in \"$@\"; do echo \"ARG=$a\"; done; } > \"$FAKE_OUT\"\n";
    let fake = db.write_script("fake-frontend", record);
    let fake_c = db.write_script("fake-cdebconf", record);
    let out_file = db.dir.join("fake.out");

    let run = |cdebconf: bool, argv0: Option<&str>| {
        let _ = fs::remove_file(&out_file);
        let mut cmd = db.command(PROBE);
        if let Some(a) = argv0 {
            cmd.arg0(a);
        }
        cmd.args(["exec-only", "extra", "two words"])
            .env("DEBCONF_PROBE_FRONTEND", &fake)
            .env("DEBCONF_PROBE_CDEBCONF", &fake_c)
            .env("FAKE_OUT", &out_file)
            .env_remove("PERL_DL_NONLAZY");
        if cdebconf {
            cmd.env("DEBCONF_USE_CDEBCONF", "1").env("FAKE_NAME", "cdebconf");
        } else {
            cmd.env("FAKE_NAME", "debconf");
        }
        let out = cmd.output().unwrap();
        assert_success("probe exec-only", &out);
        fs::read_to_string(&out_file).unwrap()
    };

    assert_eq!(
        run(false, None),
        format!("FRONTEND=debconf NONLAZY=1\nARG={PROBE}\nARG=exec-only\nARG=extra\nARG=two words\n")
    );
    assert_eq!(
        run(true, Some("/var/lib/dpkg/info/lava-server.postinst")),
        "FRONTEND=cdebconf NONLAZY=1\nARG=/var/lib/dpkg/info/lava-server.postinst\n\
         ARG=exec-only\nARG=extra\nARG=two words\n"
    );
}

/// A frontend that cannot be executed is reported, not ignored.
#[test]
fn missing_frontend_is_an_exec_error() {
    let db = PrivateDb::new("missing");
    let out = db
        .command(PROBE)
        .arg("exec-only")
        .env("DEBCONF_PROBE_FRONTEND", db.dir.join("no-such-frontend"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("probe FAIL: connect: cannot exec the debconf frontend"), "{stderr}");
}
