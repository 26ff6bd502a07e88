//! The real `config`, `preinst` and `postinst` programs under Debian's real
//! debconf frontend, with a private debconf database (never the host's),
//! against seeded LAVA instances in throwaway PostgreSQL clusters.
//!
//! Each scenario builds a fake `DPKG_ROOT` holding the instance's
//! `/etc/lava-server` files and media, and a `tmp.ci`-like directory with
//! the scripts and the templates, as dpkg lays them out before unpacking.

#![allow(clippy::print_stderr)]

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use lava_v1_testkit::cluster::LAVA_PASSWORD;
use lava_v1_testkit::{Cluster, Instance, Seed};

const TEMPLATES: &str = include_str!("../../../debian/lava-server.templates");
const CONFIG: &str = include_str!("../../../debian/lava-server.config");
const OLD: &str = "2017.10-1";
const NEW: &str = "2017.12-1";

/// Environment variables of the caller that must not leak into the
/// scenario (a developer's own debconf session, for one).
const SCRUB: &[&str] = &[
    "DEBIAN_HAS_FRONTEND",
    "DEBCONF_REDIR",
    "DEBCONF_PACKAGE",
    "DEBIAN_FRONTEND",
    "DEBIAN_PRIORITY",
    "DEBCONF_SYSTEMRC",
    "DPKG_ROOT",
    "DPKG_MAINTSCRIPT_NAME",
    "DPKG_MAINTSCRIPT_PACKAGE",
    "DPKG_FRONTEND_LOCKED",
    "DEBCONF_DEBUG",
    "RUST_LOG",
    lava_v1_gate::preinst::FOUND_ENV,
];

struct Scenario<'c> {
    inst: Instance<'c>,
    dir: tempfile::TempDir,
}

impl<'c> Scenario<'c> {
    fn new(cluster: &'c Cluster, seed: Seed) -> Scenario<'c> {
        // A live instance: devices online, V1 and V2 jobs running.
        let inst = Instance::new(cluster, seed);
        let dir = tempfile::Builder::new().prefix("lava-v1-gate.").tempdir().unwrap();
        let root = dir.path().join("root");
        let etc = root.join("etc/lava-server");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::copy(&inst.paths.instance_conf, etc.join("instance.conf")).unwrap();
        std::fs::write(
            etc.join("settings.conf"),
            "{\"MEDIA_ROOT\": \"/var/lib/lava-server/default/media\"}\n",
        )
        .unwrap();
        let media = root.join("var/lib/lava-server/default/media");
        std::fs::create_dir_all(media.parent().unwrap()).unwrap();
        std::fs::rename(inst.media_root(), &media).unwrap();

        let tmpci = dir.path().join("tmp.ci");
        std::fs::create_dir_all(&tmpci).unwrap();
        for (script, bin) in [
            ("preinst", lava_v1_testkit::program("lava-server-preinst")),
            ("postinst", lava_v1_testkit::program("lava-server-postinst")),
        ] {
            std::fs::copy(bin, tmpci.join(script)).unwrap();
        }
        // The package's config is a shell script (debhelper fills in
        // nothing at its token).
        std::fs::write(tmpci.join("config"), CONFIG.replace("#DEBHELPER#\n", "")).unwrap();
        std::fs::set_permissions(
            tmpci.join("config"),
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
        )
        .unwrap();
        // What po2debconf makes of the template without translations.
        std::fs::write(tmpci.join("templates"), TEMPLATES.replace("_Description:", "Description:")).unwrap();

        // A private debconf database.  Under DPKG_ROOT debconf reads its
        // configuration and databases below the root, so they live there.
        let db = root.join("debconf-test");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::write(
            db.join("debconf.conf"),
            "Config: configdb\nTemplates: templatedb\n\n\
             Name: configdb\nDriver: File\nMode: 600\nFilename: /debconf-test/config.dat\n\n\
             Name: templatedb\nDriver: File\nMode: 600\nFilename: /debconf-test/templates.dat\n",
        )
        .unwrap();
        let s = Scenario { inst, dir };
        // Templates are loaded by dpkg-preconfigure or the frontend in real
        // life; load them once so every script can be run alone.
        let out = s
            .debconf_tool("debconf-communicate")
            .arg("lava-server")
            .stdin_text(&format!("X_LOADTEMPLATEFILE {}\n", s.tmpci().join("templates").display()));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        s
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn tmpci(&self) -> PathBuf {
        self.dir.path().join("tmp.ci")
    }

    fn state(&self) -> PathBuf {
        self.root().join("var/lib/lava-server/v1-removal")
    }

    fn env(&self, cmd: &mut Command) {
        for v in SCRUB {
            cmd.env_remove(v);
        }
        cmd.env("DEBCONF_SYSTEMRC", "/debconf-test/debconf.conf")
            .env("DEBCONF_PACKAGE", "lava-server")
            .env("DPKG_ROOT", self.root())
            .env("DPKG_MAINTSCRIPT_PACKAGE", "lava-server")
            .env("HOME", self.dir.path());
    }

    fn debconf_tool(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        self.env(&mut cmd);
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    }

    fn preseed(&self, value: &str) {
        let out = self
            .debconf_tool("debconf-set-selections")
            .stdin_text(&format!("lava-server lava-server/removev1 boolean {value}\n"));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs a maintainer script as dpkg would (no frontend running yet).
    fn script(&self, script: &str, args: &[&str], frontend: &str) -> Output {
        self.script_env(script, args, frontend, &[])
    }

    /// [`Scenario::script`] with more environment variables.
    fn script_env(&self, script: &str, args: &[&str], frontend: &str, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(self.tmpci().join(script));
        self.env(&mut cmd);
        cmd.args(args).env("DEBIAN_FRONTEND", frontend).env("DPKG_MAINTSCRIPT_NAME", script);
        cmd.envs(env.iter().copied());
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        check_no_secret(&out);
        out
    }

    /// The question's value and seen flag in the private config.dat.
    fn question(&self) -> (Option<String>, bool) {
        let text = std::fs::read_to_string(self.root().join("debconf-test/config.dat")).unwrap_or_default();
        let Some(stanza) = text.split("\n\n").find(|s| s.contains("Name: lava-server/removev1")) else {
            return (None, false);
        };
        let value = stanza.lines().find_map(|l| l.strip_prefix("Value:")).map(|v| v.trim().to_owned());
        let seen = stanza.lines().any(|l| l.starts_with("Flags:") && l.contains("seen"));
        (value, seen)
    }

    fn decision(&self) -> Option<String> {
        std::fs::read_to_string(self.state().join("decision")).ok()
    }

    fn journal(&self) -> String {
        std::fs::read_to_string(self.state().join("journal.log")).unwrap_or_default()
    }

    fn v1_tables(&self) -> i64 {
        self.inst.v1_table_count()
    }

    fn fingerprint(&self) -> lava_v1_core::fingerprint::Fingerprint {
        lava_v1_core::fingerprint::v2(&mut self.inst.admin()).unwrap()
    }
}

trait StdinText {
    fn stdin_text(&mut self, text: &str) -> Output;
}

impl StdinText for Command {
    fn stdin_text(&mut self, text: &str) -> Output {
        let mut child =
            self.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}

fn check_no_secret(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(LAVA_PASSWORD), "the password leaked");
    }
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn assert_code(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
}

fn seeded() -> Seed {
    Seed::default()
}

#[test]
fn preseeded_true_upgrades_and_drops() {
    let s = Scenario::new(Cluster::shared(), seeded());
    let before = s.fingerprint();
    let results: i64 =
        s.inst.admin().query_one("SELECT count(*) FROM dashboard_app_testresult", &[]).unwrap().get(0);
    s.preseed("true");
    let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
    assert_code(&out, 0);
    // Outside the maintenance window: a warning naming what runs, not a
    // failure.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not in the maintenance window") && err.contains("(V1, running)"), "{err}");
    let decision = s.decision().expect("decision recorded");
    assert!(decision.contains("answer=remove") && decision.contains("old_version=2017.10-1"), "{decision}");
    assert_eq!(s.v1_tables(), 45, "the preinst never acts");
    let out = s.script("postinst", &["configure", OLD], "noninteractive");
    assert_code(&out, 0);
    assert_eq!(s.v1_tables(), 0);
    assert_eq!(before.diff(&s.fingerprint()), Vec::<String>::new());
    // The backup was taken first, verified, and its path printed.
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let backups = s.root().join("var/backups/lava-server");
    let made: Vec<_> = std::fs::read_dir(&backups).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(made.len(), 1, "{made:?}");
    // It holds the V1 media of the target system, under DPKG_ROOT, not a
    // tree at the same path on the host.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(made[0].join("manifest.json")).unwrap()).unwrap();
    let media_root = s.root().join("var/lib/lava-server/default/media");
    assert_eq!(manifest["media_root"].as_str(), Some(media_root.to_str().unwrap()), "{manifest}");
    assert!(err.contains(&made[0].display().to_string()) && err.contains("verified"), "{err}");
    assert!(err.contains("lava-server: warning: this instance is not in the maintenance window"), "{err}");
    let journal = s.journal();
    assert!(journal.contains("postinst: configure 2017.10-1: warning: this instance is not"), "{journal}");
    assert!(
        journal.contains("preinst: upgrade 2017.10-1 -> 2017.12-1: lava-server/removev1 = true"),
        "{journal}"
    );
    assert!(journal.contains("postinst: configure 2017.10-1: done"), "{journal}");
    // How long the admin's downtime was, step by step.
    assert!(journal.contains("postinst: backup verified: ") && journal.contains(" s)"), "{journal}");
    assert!(journal.contains("; configure took "), "{journal}");
    assert!(!journal.contains(LAVA_PASSWORD));
    // The readable copy of the V1 results, in the backup's directory,
    // named in the final message, timed on a journal line of its own, and
    // holding the results the database had before the drop.
    let exports: Vec<_> = std::fs::read_dir(&made[0])
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".sqlite"))
        .collect();
    assert_eq!(exports.len(), 1, "{exports:?}");
    assert!(err.contains(&exports[0].display().to_string()), "{err}");
    let export_line = journal.lines().find(|l| l.contains("postinst: export checked: ")).expect(&journal);
    assert!(
        export_line.contains(&exports[0].display().to_string()) && export_line.contains(" s)"),
        "{export_line}"
    );
    assert!(journal.contains("; the drop took "), "{journal}");
    let conn = rusqlite::Connection::open_with_flags(&exports[0], rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let exported: i64 = conn.query_row("SELECT count(*) FROM v1_results", [], |r| r.get(0)).unwrap();
    assert_eq!(exported, results);
    let media: i64 = conn.query_row("SELECT count(*) FROM media_bundle", [], |r| r.get(0)).unwrap();
    assert!(media > 0, "the media under DPKG_ROOT were read");
    // A retry of the postinst (dpkg --configure -a) finds nothing to do.
    assert_code(&s.script("postinst", &["configure", OLD], "noninteractive"), 0);
}

#[test]
fn preseeded_false_aborts_every_time_and_never_resets_the_answer() {
    let s = Scenario::new(Cluster::shared(), seeded());
    let before = s.fingerprint();
    s.preseed("false");
    assert_eq!(s.question(), (Some("false".into()), true));
    for attempt in 1..=2 {
        let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
        assert_code(&out, 1);
        let err = String::from_utf8_lossy(&out.stderr);
        if attempt == 1 {
            eprintln!("what the admin sees:\n{err}");
        }
        assert!(err.contains("apt-mark hold lava-server"), "{err}");
        assert!(
            err.contains("echo \"lava-server lava-server/removev1 boolean true\" | debconf-set-selections"),
            "{err}"
        );
        assert!(err.contains("Nothing was deleted") && err.contains("\"false\""), "{err}");
        assert_eq!(s.decision(), None);
        // The value stays false; only the seen flag is cleared so an
        // interactive admin is asked again.
        assert_eq!(s.question(), (Some("false".into()), false), "attempt {attempt}");
    }
    assert_eq!(s.v1_tables(), 45);
    assert_eq!(before.diff(&s.fingerprint()), Vec::<String>::new());
    assert!(s.journal().contains("upgrade stopped, nothing deleted"));
}

#[test]
fn unseen_noninteractive_aborts_again_and_again() {
    let s = Scenario::new(Cluster::shared(), seeded());
    for _ in 0..2 {
        let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
        assert_code(&out, 1);
        assert!(String::from_utf8_lossy(&out.stderr).contains("apt-mark hold lava-server"));
        let (value, _) = s.question();
        assert_ne!(value.as_deref(), Some("true"));
    }
    assert_eq!(s.v1_tables(), 45);
}

#[test]
fn stdin_at_eof_aborts() {
    // The teletype frontend reading end-of-file: debconf stores an empty
    // value and marks it seen.
    let s = Scenario::new(Cluster::shared(), seeded());
    for _ in 0..2 {
        let out = s.script("preinst", &["upgrade", OLD, NEW], "teletype");
        assert_code(&out, 1);
    }
    assert_eq!(s.v1_tables(), 45);
    assert_eq!(s.decision(), None);
}

/// Runs the preinst under the readline frontend on a pseudo-terminal,
/// answers `answer` at the prompt, returns the exit status and the
/// transcript.
fn interactive(s: &Scenario<'_>, answer: &str) -> (i32, String) {
    let cmdline = format!("{} upgrade {OLD} {NEW}", s.tmpci().join("preinst").display());
    let mut env = Command::new("env");
    s.env(&mut env);
    env.env("DEBIAN_FRONTEND", "readline").env("TERM", "dumb");
    let t = lava_v1_testkit::pty::answer_on_a_terminal(
        &env,
        &cmdline,
        "Remove V1 data from database?",
        answer,
        Duration::from_secs(60),
    );
    (t.code, t.text)
}

#[test]
fn readline_frontend_no_aborts_and_yes_proceeds() {
    let s = Scenario::new(Cluster::shared(), seeded());
    let (rc, transcript) = interactive(&s, "no");
    assert_eq!(rc, 1, "{transcript}");
    assert!(transcript.contains("permanently DELETED"), "{transcript}");
    assert!(transcript.contains("Found: 45 V1 tables holding"), "{transcript}");
    assert_eq!(s.decision(), None);
    // Asked again at the next attempt; this time yes.
    let (rc, transcript) = interactive(&s, "yes");
    assert_eq!(rc, 0, "{transcript}");
    assert!(s.decision().unwrap().contains("answer=remove"));
    assert_eq!(s.v1_tables(), 45);
}

#[test]
fn no_v1_data_is_never_asked_and_never_blocked() {
    let s = Scenario::new(Cluster::shared(), Seed { scale: 0, media: false, django110_names: false });
    let before = s.fingerprint();
    let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
    assert_code(&out, 0);
    assert_eq!(s.question(), (None, false), "never asked");
    assert!(s.decision().unwrap().contains("answer=no-v1-data"));
    assert_code(&s.script("postinst", &["configure", OLD], "noninteractive"), 0);
    assert_eq!(s.v1_tables(), 0, "the empty V1 tables go as LAVA's migrations would");
    assert_eq!(before.diff(&s.fingerprint()), Vec::<String>::new());
}

#[test]
fn fresh_install_and_upgrade_from_2017_12_are_never_asked() {
    let s = Scenario::new(Cluster::shared(), seeded());
    for (script, args) in [
        ("preinst", &["install"][..]),
        ("postinst", &["configure", ""][..]),
        ("config", &["configure", ""][..]),
        ("preinst", &["upgrade", "2017.12-1", "2017.12-2"][..]),
        ("config", &["configure", "2017.12-1"][..]),
        ("postinst", &["configure", "2017.12-1"][..]),
        ("preinst", &["upgrade", "2018.2-1", "2018.4-1"][..]),
    ] {
        let out = s.script(script, args, "noninteractive");
        assert_code(&out, 0);
    }
    assert_eq!(s.question(), (None, false));
    assert_eq!(s.decision(), None);
    assert_eq!(s.v1_tables(), 45);
}

#[test]
fn config_asks_only_what_the_preinst_found_and_is_idempotent() {
    let s = Scenario::new(Cluster::shared(), seeded());
    let before = s.fingerprint();
    let debug = [("DEBCONF_DEBUG", "developer")];
    // As dpkg-preconfigure, the postinst or dpkg-reconfigure run it:
    // nothing to ask (it cannot look at the database itself).
    let out = s.script_env("config", &["configure", OLD], "noninteractive", &debug);
    assert_code(&out, 0);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("INPUT"), "{}", text(&out));
    // As the frontend the preinst started runs it: asks, with the details.
    let found = [
        ("DEBCONF_DEBUG", "developer"),
        (lava_v1_gate::preinst::FOUND_ENV, "Found: 45 V1 tables holding 9 rows."),
    ];
    s.preseed("true");
    for _ in 0..3 {
        let out = s.script_env("config", &["configure", OLD], "noninteractive", &found);
        assert_code(&out, 0);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("INPUT high lava-server/removev1"), "{err}");
        // Once the removal is agreed: the backup, and the readable copy.
        assert!(err.contains("INPUT medium lava-server/backupv1"), "{err}");
        assert!(err.contains("INPUT medium lava-server/exportv1"), "{err}");
        assert!(
            err.contains("SUBST lava-server/removev1 details Found: 45 V1 tables holding 9 rows."),
            "{err}"
        );
    }
    assert_eq!(s.question(), (Some("true".into()), true));
    assert_eq!(s.decision(), None, "config never records or acts");
    assert_eq!(s.v1_tables(), 45);
    assert_eq!(before.diff(&s.fingerprint()), Vec::<String>::new());
}

#[test]
fn every_policy_call_form() {
    let s = Scenario::new(Cluster::shared(), Seed { scale: 1, media: false, django110_names: false });
    for (script, args, code) in [
        ("postinst", &["abort-upgrade", NEW][..], 0),
        ("postinst", &["abort-remove"][..], 0),
        ("postinst", &["abort-remove", "in-favour", "lava-foo", "1.0"][..], 0),
        ("postinst", &["abort-deconfigure", "in-favour", "lava-foo", "1.0"][..], 0),
        (
            "postinst",
            &["abort-deconfigure", "in-favour", "lava-foo", "1.0", "removing", "lava-bar", "2.0"][..],
            0,
        ),
        ("postinst", &["triggered", "/usr/share/foo"][..], 0),
        ("preinst", &["abort-upgrade", NEW][..], 0),
        ("postinst", &[][..], 1),
        ("postinst", &["frobnicate"][..], 1),
        ("postinst", &["configure", "not a version!"][..], 1),
        ("preinst", &["upgrade"][..], 1),
        ("preinst", &["upgrade", OLD, NEW, "extra"][..], 1),
        ("config", &["fly", "away"][..], 1),
    ] {
        let out = s.script(script, args, "noninteractive");
        assert_code(&out, code);
        if code == 1 {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("lava-server") && err.contains("error"), "{script} {args:?}: {err}");
        }
    }
    assert_eq!(s.v1_tables(), 45);
}

#[test]
fn unreachable_database_asks_and_says_why() {
    let s = Scenario::new(Cluster::shared(), seeded());
    let conf = s.root().join("etc/lava-server/instance.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let port = s.inst.cluster.port.to_string();
    std::fs::write(&conf, text.replace(&format!("LAVA_DB_PORT=\"{port}\""), "LAVA_DB_PORT=\"1\"")).unwrap();
    let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
    assert_code(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not be checked"), "{err}");
}

#[test]
fn drop_failure_leaves_everything_and_a_rerun_completes() {
    // Its own cluster: this test stops the server.
    let cluster = Cluster::start();
    let s = Scenario::new(&cluster, Seed { scale: 1, media: false, django110_names: false });
    let before = s.fingerprint();
    s.preseed("true");
    assert_code(&s.script("preinst", &["upgrade", OLD, NEW], "noninteractive"), 0);
    cluster.stop();
    let out = s.script("postinst", &["configure", OLD], "noninteractive");
    assert_code(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no data was removed"), "{err}");
    assert!(err.contains("dpkg --configure -a"), "{err}");
    assert!(err.contains(&s.state().join("journal.log").display().to_string()), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    assert!(!err.contains("manage migrate`\n") || err.contains("Do not run"), "{err}");
    cluster.start_server();
    assert_eq!(s.v1_tables(), 45);
    assert_eq!(before.diff(&s.fingerprint()), Vec::<String>::new());
    assert!(s.journal().contains("FAILED, nothing removed"));
    // After fixing the cause: dpkg --configure -a runs the postinst again.
    assert_code(&s.script("postinst", &["configure", OLD], "noninteractive"), 0);
    assert_eq!(s.v1_tables(), 0);
    assert_eq!(before.diff(&s.fingerprint()), Vec::<String>::new());
}

#[test]
fn postinst_without_a_decision_refuses_to_drop_v1_rows() {
    let s = Scenario::new(Cluster::shared(), seeded());
    let out = s.script("postinst", &["configure", OLD], "noninteractive");
    assert_code(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lava-v1 drop --yes") && err.contains("dpkg --configure -a"), "{err}");
    assert_eq!(s.v1_tables(), 45);
}

/// What must be left exactly as it was when the preinst stops: the
/// database (V1 and V2), and nothing recorded as decided.
#[track_caller]
fn expect_stopped_before_unpacking(s: &Scenario<'_>, out: &Output, cause: &str) {
    assert_code(out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stopped before anything was unpacked or changed"), "{err}");
    assert!(err.contains(cause), "{cause}: {err}");
    assert!(err.contains("is kept, so it is not asked again"), "{err}");
    assert_eq!(s.decision(), None, "no decision recorded");
    // The answer is not lost: still true, still seen.
    assert_eq!(s.question(), (Some("true".into()), true));
    assert!(s.journal().contains("stopped before unpacking"), "{}", s.journal());
}

#[test]
fn preinst_stops_before_unpacking_whatever_would_make_the_drop_fail() {
    let s = Scenario::new(Cluster::shared(), seeded());
    let before = s.fingerprint();
    let rows = lava_v1_testkit::world::all_rows(&mut s.inst.admin());
    s.preseed("true");
    let mut admin = s.inst.admin();

    // The connecting role does not own a V1 table.
    admin.batch_execute("ALTER TABLE dashboard_app_bundle OWNER TO postgres").unwrap();
    let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
    expect_stopped_before_unpacking(&s, &out, "ownership of dashboard_app_bundle (owned by postgres");
    admin.batch_execute("ALTER TABLE dashboard_app_bundle OWNER TO lavaserver").unwrap();

    // A view of the admin's reads a V1 table.
    admin.batch_execute("CREATE VIEW my_bundle_report AS SELECT id FROM dashboard_app_bundle").unwrap();
    let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
    expect_stopped_before_unpacking(&s, &out, "view my_bundle_report");
    admin.batch_execute("DROP VIEW my_bundle_report").unwrap();

    // The state directory cannot be written (a file where it should be).
    std::fs::create_dir_all(s.state().parent().unwrap()).unwrap();
    let journal = s.state().with_extension("moved");
    if s.state().exists() {
        std::fs::rename(s.state(), &journal).unwrap();
    }
    std::fs::write(s.state(), "not a directory").unwrap();
    let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
    assert_code(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stopped before anything was unpacked") && err.contains("v1-removal"), "{err}");
    std::fs::remove_file(s.state()).unwrap();
    if journal.exists() {
        std::fs::rename(&journal, s.state()).unwrap();
    }

    // The database cannot be reached with instance.conf's settings.
    let conf = s.root().join("etc/lava-server/instance.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let port = s.inst.cluster.port.to_string();
    std::fs::write(&conf, text.replace(&format!("LAVA_DB_PORT=\"{port}\""), "LAVA_DB_PORT=\"1\"")).unwrap();
    let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
    expect_stopped_before_unpacking(&s, &out, "cannot connect");
    std::fs::write(&conf, text).unwrap();

    // Nothing changed by any of these; fixed, the rerun goes through
    // without asking.
    assert_eq!(before.diff(&s.fingerprint()), Vec::<String>::new());
    assert_eq!(
        lava_v1_testkit::world::differing(&rows, &lava_v1_testkit::world::all_rows(&mut admin)),
        Vec::<String>::new()
    );
    assert!(!s.root().join("var/backups/lava-server").exists(), "no backup before the checks pass");
    let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
    assert_code(&out, 0);
    assert!(s.decision().unwrap().contains("answer=remove"));
    assert_code(&s.script("postinst", &["configure", OLD], "noninteractive"), 0);
    assert_eq!(s.v1_tables(), 0);
}

#[test]
fn postinst_outside_a_maintenance_window_warns_and_completes() {
    let s = Scenario::new(Cluster::shared(), seeded());
    s.inst.enter_maintenance_window();
    s.preseed("true");
    let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
    assert_code(&out, 0);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"), "in the window: no warning");
    // Between the preinst and the postinst a job starts running and a
    // device comes back online.
    s.inst
        .admin()
        .batch_execute(
            "UPDATE lava_scheduler_app_testjob SET status = 1 WHERE id = (SELECT min(id) FROM lava_scheduler_app_testjob WHERE NOT is_pipeline);
             UPDATE lava_scheduler_app_device SET status = 1 WHERE hostname = 'dev-2'",
        )
        .unwrap();
    let before = s.fingerprint();
    let out = s.script("postinst", &["configure", OLD], "noninteractive");
    assert_code(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not in the maintenance window") && err.contains("device dev-2 (idle)"), "{err}");
    assert_eq!(s.v1_tables(), 0);
    assert_eq!(before.diff(&s.fingerprint()), Vec::<String>::new());
}

#[test]
fn hostile_names_cannot_answer_the_question() {
    // A media root and a device name carrying debconf protocol commands.
    let s = Scenario::new(Cluster::shared(), seeded());
    let evil = "/var/lib/lava-server/default/media\nSET lava-server/removev1 true\r\nGO";
    let settings = serde_json::json!({ "MEDIA_ROOT": evil }).to_string();
    std::fs::write(s.root().join("etc/lava-server/settings.conf"), settings).unwrap();
    let target = s.root().join(evil.trim_start_matches('/'));
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::rename(s.root().join("var/lib/lava-server/default/media"), &target).unwrap();
    s.inst
        .admin()
        .batch_execute(
            "CREATE TEMP TABLE d AS SELECT * FROM lava_scheduler_app_device WHERE hostname = 'dev-1';
             UPDATE d SET hostname = E'dev-0\nSET lava-server/removev1 true\r\nGO\n', status = 1,
                          current_job_id = NULL, last_health_report_job_id = NULL;
             INSERT INTO lava_scheduler_app_device SELECT * FROM d",
        )
        .unwrap();
    for _ in 0..2 {
        let out = s.script_env(
            "preinst",
            &["upgrade", OLD, NEW],
            "noninteractive",
            &[("DEBCONF_DEBUG", "developer")],
        );
        assert_code(&out, 1);
        let (value, _) = s.question();
        assert_ne!(value.as_deref(), Some("true"), "the question was answered by a name");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.lines().any(|l| l.contains("<-- SET lava-server/removev1 true")), "{err}");
    }
    assert_eq!(s.v1_tables(), 45);
}

#[test]
fn a_failed_postinst_puts_up_the_holding_page_until_the_admin_removes_it() {
    use lava_v1_holdpage as holdpage;
    use lava_v1_testkit::apache::{self, Apache};

    let s = Scenario::new(Cluster::shared(), seeded());
    let a = Apache::start();
    assert_eq!(a.get("/").status, 200);
    // The instance's Apache configuration, as seen under DPKG_ROOT.
    std::fs::create_dir_all(s.root().join("etc")).unwrap();
    std::os::unix::fs::symlink(a.root(), s.root().join("etc/apache2")).unwrap();
    s.preseed("true");
    assert_code(&s.script("preinst", &["upgrade", OLD, NEW], "noninteractive"), 0);
    // The drop fails on what the preinst could not foresee: a V1 table
    // changed owner after it ran.
    s.inst.admin().batch_execute("ALTER TABLE dashboard_app_bundle OWNER TO postgres").unwrap();
    let out = s.script("postinst", &["configure", OLD], "noninteractive");
    assert_code(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holding page (HTTP 503)") && err.contains("lava-v1 maintenance off"), "{err}");
    let page = a.wait_for("/scheduler/", 503);
    assert!(page.header("retry-after").is_some(), "{:?}", page.headers);
    assert!(s.journal().contains("holding page replaces"));

    // Fixed; the rerun completes and leaves the page up for the admin.
    s.inst.admin().batch_execute("ALTER TABLE dashboard_app_bundle OWNER TO lavaserver").unwrap();
    assert_code(&s.script("postinst", &["configure", OLD], "noninteractive"), 0);
    assert_eq!(s.v1_tables(), 0);
    assert_eq!(a.get("/").status, 503);
    let options = holdpage::Options {
        apache_root: s.root().join("etc/apache2"),
        apachectl: apache::apachectl(),
        page_dir: s.root().join("var/lib/lava-server/maintenance"),
        state_dir: s.state(),
        ..holdpage::Options::default()
    };
    holdpage::off(&options).unwrap();
    assert_eq!(a.wait_for("/", 200).status, 200);
}

#[test]
fn an_admin_with_a_backup_can_skip_ours() {
    let s = Scenario::new(Cluster::shared(), seeded());
    s.preseed("true");
    let out = s
        .debconf_tool("debconf-set-selections")
        .stdin_text("lava-server lava-server/backupv1 boolean false\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_code(&s.script("preinst", &["upgrade", OLD, NEW], "noninteractive"), 0);
    assert!(s.decision().unwrap().contains("backup=no"));
    assert!(s.decision().unwrap().contains("export=yes"));
    let out = s.script("postinst", &["configure", OLD], "noninteractive");
    assert_code(&out, 0);
    assert_eq!(s.v1_tables(), 0);
    assert!(s.journal().contains("backup skipped, as the admin chose"), "{}", s.journal());
    // No backup directory: the readable copy goes under
    // /var/backups/lava-server itself, mode 0600.
    let made: Vec<_> = std::fs::read_dir(s.root().join("var/backups/lava-server"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    let name = made[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("lava-v1-results-") && name.ends_with(".sqlite"), "{name}");
    let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::mode(
        &std::fs::metadata(&made[0]).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&made[0].display().to_string()));
}

#[test]
fn an_admin_can_skip_the_readable_copy_too() {
    let s = Scenario::new(Cluster::shared(), seeded());
    s.preseed("true");
    let out = s.debconf_tool("debconf-set-selections").stdin_text(
        "lava-server lava-server/backupv1 boolean false\nlava-server lava-server/exportv1 boolean false\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_code(&s.script("preinst", &["upgrade", OLD, NEW], "noninteractive"), 0);
    assert!(s.decision().unwrap().contains("export=no"));
    assert_code(&s.script("postinst", &["configure", OLD], "noninteractive"), 0);
    assert_eq!(s.v1_tables(), 0);
    assert!(!s.root().join("var/backups/lava-server").exists());
    assert!(s.journal().contains("export of the V1 results skipped, as the admin chose"), "{}", s.journal());
}

/// What an admin reads when the debconf frontend goes away: the error and
/// its cause, each once, exactly.
#[test]
fn a_closed_debconf_pipe_is_reported_once_and_exactly() {
    let s = Scenario::new(Cluster::shared(), seeded());
    // fd 3 (the confmodule's command channel) is a pipe nobody reads.
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let mut cmd = Command::new("sh");
    s.env(&mut cmd);
    cmd.arg("-c")
        .arg(format!("exec 3>&{fd} {fd}>&-; exec \"$0\" upgrade {OLD} {NEW}", fd = write.as_raw_fd()))
        .arg(s.tmpci().join("preinst"))
        .env("DEBIAN_HAS_FRONTEND", "1")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("DPKG_MAINTSCRIPT_NAME", "preinst")
        .stdin(Stdio::null());
    let out = cmd.output().unwrap();
    drop(write);
    assert_code(&out, 1);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lava-server preinst: error: debconf VERSION 2.0: the frontend closed the reply pipe (end of file) \
         before answering; is a debconf frontend running?\n"
    );
    assert_eq!(s.v1_tables(), 45);
}

#[test]
fn preinst_stops_before_unpacking_when_the_backup_would_not_fit() {
    if lava_v1_testkit::needs_root("preinst_stops… backup would not fit (mounts a tmpfs)") {
        return;
    }
    let s = Scenario::new(Cluster::shared(), seeded());
    let before = s.fingerprint();
    s.preseed("true");
    let mnt = lava_v1_testkit::paused::Tmpfs::mount("64k");
    std::fs::create_dir_all(s.root().join("var/backups")).unwrap();
    std::os::unix::fs::symlink(mnt.path(), s.root().join("var/backups/lava-server")).unwrap();
    let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
    expect_stopped_before_unpacking(
        &s,
        &out,
        "not enough free space for the backup and the readable copy of the V1 results",
    );
    assert_eq!(std::fs::read_dir(mnt.path()).unwrap().count(), 0, "nothing written");
    assert_eq!(before.diff(&s.fingerprint()), Vec::<String>::new());
    // An admin who has a backup already may skip ours: the readable copy
    // still needs room.
    let out = s
        .debconf_tool("debconf-set-selections")
        .stdin_text("lava-server lava-server/backupv1 boolean false\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.script("preinst", &["upgrade", OLD, NEW], "noninteractive");
    expect_stopped_before_unpacking(
        &s,
        &out,
        "not enough free space for the readable copy of the V1 results",
    );
    // Without either, no room is needed, and the upgrade goes on.
    let out = s
        .debconf_tool("debconf-set-selections")
        .stdin_text("lava-server lava-server/exportv1 boolean false\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_code(&s.script("preinst", &["upgrade", OLD, NEW], "noninteractive"), 0);
}
