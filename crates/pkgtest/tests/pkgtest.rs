//! lava-server 2017.12-1 through real apt, dpkg and debconf in a Debian 12
//! chroot: every path of the upgrade from a stand-in lava-server
//! 2017.10-1 whose database is a seeded 2017.10 instance with V1 data and
//! media; and the package itself (lintian, translations, manual page).
//!
//! Each scenario prints its wall time (`--nocapture` shows it; scripts/test
//! runs this binary that way).  A failed scenario names its transcript.

#![allow(clippy::print_stderr, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lava_v1_pkgtest::debs::{self, INIT_SCRIPTS, MEDIA_ROOT, NEW_VERSION, OLD_VERSION};
use lava_v1_pkgtest::inspect::{self, Question};
use lava_v1_pkgtest::{unavailable, Chroot, Timer};
use lava_v1_testkit::cluster::LAVA_PASSWORD;
use lava_v1_testkit::{Cluster, Instance, Seed};

const QUESTION: &str = "lava-server/removev1";
const STATE_DIR: &str = "/var/lib/lava-server/v1-removal";
const MODIFIED: &str = "/etc/init.d/lava-slave";
const LOCAL_CHANGE: &str = "# changed by the admin\n";

/// Skips (saying so in the output) where the chroot tests cannot run;
/// fails instead under `LAVA_V1_NO_SKIP=1` (scripts/test as root).
macro_rules! require_root {
    ($name:expr) => {
        if lava_v1_testkit::cannot_run(&format!("pkgtest {}", $name), unavailable()).is_some() {
            return;
        }
    };
}

/// A chroot with lava-server 2017.10-1 installed over a seeded instance.
struct Upgrade<'c> {
    // Declared first: dropped (unmounted, deleted) before the database.
    chroot: Chroot,
    inst: Instance<'c>,
    _debs: tempfile::TempDir,
    new_deb: String,
}

fn with_v1() -> Seed {
    Seed { scale: 1, media: true, django110_names: false }
}

fn without_v1() -> Seed {
    Seed { scale: 0, media: false, django110_names: false }
}

impl<'c> Upgrade<'c> {
    fn new(name: &str, cluster: &'c Cluster, seed: Seed) -> Upgrade<'c> {
        let chroot = Chroot::new(name);
        // A live instance, as production has: devices idle, running and
        // reserved, V1 and V2 jobs submitted, running and canceling.  No
        // scenario here declares a maintenance window: the upgrade never
        // requires one.
        let inst = Instance::new(cluster, Seed { media: false, ..seed });
        let debs_dir = tempfile::Builder::new().prefix("lava-v1-pkgtest.").tempdir().expect("temp dir");
        // instance.conf exactly as testkit writes it for this database:
        // TCP on loopback, password authentication.
        let conf_dir = debs_dir.path().join("conf");
        lava_v1_testkit::instance::write_config(&conf_dir, cluster, &inst.db_name);
        let instance_conf = std::fs::read_to_string(conf_dir.join("instance.conf")).expect("instance.conf");
        let old = debs::stand_in(debs_dir.path(), &instance_conf);
        let new = debs::package();
        let new_deb = format!("/srv/debs/{}", new.file_name().expect("a file name").to_string_lossy());
        chroot.copy_in(&old, &format!("/srv/debs/lava-server_{OLD_VERSION}_all.deb"));
        chroot.copy_in(new, &new_deb);
        let u = Upgrade { chroot, inst, _debs: debs_dir, new_deb };
        u.sh(&format!("dpkg -i /srv/debs/lava-server_{OLD_VERSION}_all.deb"), &[]).expect_ok();
        u.expect_status("ii", OLD_VERSION);
        if seed.media && seed.scale > 0 {
            lava_v1_testkit::instance::write_media(&mut u.inst.admin(), &u.chroot.path(MEDIA_ROOT));
        }
        // The admin changed one init script: it must survive as .dpkg-bak.
        let mut f = std::fs::OpenOptions::new().append(true).open(u.chroot.path(MODIFIED)).expect("open");
        f.write_all(LOCAL_CHANGE.as_bytes()).expect("change an init script");
        u
    }

    /// Runs a command in the chroot; the password never shows.
    fn sh(&self, script: &str, env: &[(&str, &str)]) -> lava_v1_pkgtest::chroot::Run {
        let run = self.chroot.sh(script, env);
        assert!(!run.out.contains(LAVA_PASSWORD), "the password leaked in `{script}`:\n{}", run.out);
        run
    }

    fn preseed(&self, value: &str) {
        self.sh(&format!("echo 'lava-server {QUESTION} boolean {value}' | debconf-set-selections"), &[])
            .expect_ok();
    }

    /// `apt-get install ./lava-server_2017.12-1_*.deb`.
    fn apt_install(&self, env: &[(&str, &str)]) -> lava_v1_pkgtest::chroot::Run {
        self.sh(&format!("apt-get install -y {}", self.new_deb), env)
    }

    #[track_caller]
    fn expect_status(&self, abbrev: &str, version: &str) {
        let st = inspect::dpkg_status(&self.chroot, "lava-server");
        assert_eq!((st.abbrev.as_str(), st.version.as_str()), (abbrev, version), "{st:?}");
    }

    fn v1_tables(&self) -> i64 {
        self.inst.v1_table_count()
    }

    /// Every V1 table with its row count.
    fn v1_rows(&self) -> Vec<(String, i64)> {
        let mut admin = self.inst.admin();
        lava_v1_testkit::world::v1_table_names(&mut admin)
            .into_iter()
            .map(|t| {
                let n: i64 =
                    admin.query_one(&format!("SELECT count(*) FROM {t}"), &[]).expect("count").get(0);
                (t, n)
            })
            .collect()
    }

    fn fingerprint(&self) -> lava_v1_core::fingerprint::Fingerprint {
        lava_v1_core::fingerprint::v2(&mut self.inst.admin()).expect("fingerprint")
    }

    fn media(&self) -> inspect::Tree {
        inspect::snapshot(&self.chroot, &[MEDIA_ROOT], &[])
    }

    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.chroot.path(path)).ok()
    }

    fn journal(&self) -> String {
        self.read(&format!("{STATE_DIR}/journal.log")).unwrap_or_default()
    }

    fn decision(&self) -> Option<String> {
        self.read(&format!("{STATE_DIR}/decision"))
    }

    fn question(&self) -> Option<Question> {
        inspect::question(&self.chroot, QUESTION)
    }

    /// The init scripts are exactly as 2017.10 left them (one changed by
    /// the admin), with no helper leftovers.
    #[track_caller]
    fn expect_init_scripts_untouched(&self) {
        for path in INIT_SCRIPTS {
            let name = path.rsplit('/').next().unwrap();
            let mut want = debs::init_script(name);
            if *path == MODIFIED {
                want.push_str(LOCAL_CHANGE);
            }
            assert_eq!(self.read(path).as_deref(), Some(want.as_str()), "{path}");
            for suffix in [".dpkg-remove", ".dpkg-backup", ".dpkg-bak"] {
                assert!(!self.chroot.path(&format!("{path}{suffix}")).exists(), "{path}{suffix}");
            }
        }
    }

    /// The upgrade is complete: the new version configured, no V1 table
    /// left, the V2 data as `before`, the init scripts handled.
    #[track_caller]
    fn expect_upgraded_from(&self, before: &lava_v1_core::fingerprint::Fingerprint) {
        self.expect_status("ii", NEW_VERSION);
        assert_eq!(self.v1_tables(), 0);
        assert_eq!(before.diff(&self.fingerprint()), Vec::<String>::new(), "V2 data changed");
        self.expect_init_scripts_removed();
    }

    /// The init scripts are gone, the changed one kept as .dpkg-bak.
    #[track_caller]
    fn expect_init_scripts_removed(&self) {
        for path in INIT_SCRIPTS {
            assert!(!self.chroot.path(path).exists(), "{path} is still there");
            for suffix in [".dpkg-remove", ".dpkg-backup"] {
                assert!(!self.chroot.path(&format!("{path}{suffix}")).exists(), "{path}{suffix}");
            }
            let bak = self.read(&format!("{path}.dpkg-bak"));
            if *path == MODIFIED {
                assert!(bak.is_some_and(|b| b.ends_with(LOCAL_CHANGE)), "{path}.dpkg-bak keeps the change");
            } else {
                assert_eq!(bak, None, "{path} was unchanged: removed, not kept");
            }
        }
    }
}

/// Where apt and dpkg write on an aborted run anyway, and our journal
/// (which records the abort): excluded from "nothing changed on disk".
const VOLATILE: &[&str] = &["/var/lib/lava-server/v1-removal", "/var/lib/dpkg", "/var/cache/debconf"];

fn disk(u: &Upgrade<'_>) -> inspect::Tree {
    inspect::snapshot(&u.chroot, &["/etc", "/usr", "/var/lib/lava-server"], VOLATILE)
}

// ---------------------------------------------------------------------------
// 1. Preseeded true, noninteractive: the upgrade.

#[test]
fn s1_preseeded_true_upgrades() {
    require_root!("1 preseeded true");
    let _t = Timer::start("1 preseeded true: apt upgrades, V1 tables dropped");
    let u = Upgrade::new("s1", Cluster::shared(), with_v1());
    let before = u.fingerprint();
    let results: i64 =
        u.inst.admin().query_one("SELECT count(*) FROM dashboard_app_testresult", &[]).expect("count").get(0);
    let media = u.media();
    assert_eq!(u.v1_tables(), 45);
    u.preseed("true");
    let run = u.apt_install(&[("DEBIAN_FRONTEND", "noninteractive")]);
    run.expect_ok().expect_output("Preconfiguring packages");
    run.expect_output(&format!("Obsolete conffile {MODIFIED} has been modified by you"));
    // The maintenance window is advice: warned about, with what runs.
    run.expect_output("lava-server: warning: this instance is not in the maintenance window")
        .expect_output("(V1, running)")
        .expect_output("(reserved)");
    u.expect_status("ii", NEW_VERSION);
    assert_eq!(u.v1_tables(), 0);
    assert_eq!(before.diff(&u.fingerprint()), Vec::<String>::new(), "V2 data changed");
    assert_eq!(inspect::diff(&media, &u.media()), Vec::<String>::new(), "the media tree changed");
    u.expect_init_scripts_removed();
    assert!(u.decision().is_some_and(|d| d.contains("answer=remove")));
    let journal = u.journal();
    assert!(journal.contains(&format!("postinst: configure {OLD_VERSION}: done")), "{journal}");
    assert!(
        journal.contains("preinst: warning: this instance is not in the maintenance window"),
        "{journal}"
    );
    assert!(!journal.contains(LAVA_PASSWORD));
    assert_eq!(u.question(), Some(Question { value: Some("true".into()), seen: true }));
    // The backup's directory holds the readable copy of the V1 results
    // (lava-server/exportv1 defaults to true), named in apt's output and
    // timed on a journal line of its own; its v1_results are the results
    // the database had before the drop.
    let backups: Vec<PathBuf> = std::fs::read_dir(u.chroot.path("/var/backups/lava-server"))
        .expect("the backups")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let exports: Vec<PathBuf> = std::fs::read_dir(&backups[0])
        .expect("the backup")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".sqlite"))
        .collect();
    assert_eq!(exports.len(), 1, "{exports:?}");
    let name = exports[0].file_name().expect("a name").to_string_lossy().into_owned();
    run.expect_output(&name);
    assert!(
        journal.lines().any(|l| l.contains("postinst: export checked: ") && l.contains(&name)),
        "{journal}"
    );
    let conn = rusqlite::Connection::open_with_flags(&exports[0], rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the export");
    let exported: i64 = conn.query_row("SELECT count(*) FROM v1_results", [], |r| r.get(0)).expect("count");
    assert_eq!(exported, results);
    let media: i64 = conn.query_row("SELECT count(*) FROM media_bundle", [], |r| r.get(0)).expect("count");
    assert!(media > 0, "no V1 media in the export");
    // The packaged lava-v1 works in place and sees nothing left.
    u.sh("lava-v1 status", &[]).expect_ok();
}

// 1b. A failure after the preinst (a file conflict while unpacking): dpkg
// unwinds through our postrm, which puts the conffiles back.

#[test]
fn s1b_unpack_failure_puts_everything_back() {
    require_root!("1b unpack failure");
    let _t = Timer::start("1b unpack failure after yes: conffiles restored, then upgrade");
    let u = Upgrade::new("s1b", Cluster::shared(), with_v1());
    let before = u.fingerprint();
    let dir = tempfile::tempdir().unwrap();
    u.chroot.copy_in(&debs::blocker(dir.path()), "/srv/debs/lava-blocker_1_all.deb");
    u.sh("dpkg -i /srv/debs/lava-blocker_1_all.deb", &[]).expect_ok();
    u.preseed("true");
    let run = u.apt_install(&[("DEBIAN_FRONTEND", "noninteractive")]);
    run.expect_code(100).expect_output("trying to overwrite '/usr/sbin/lava-v1'");
    u.expect_status("ii", OLD_VERSION);
    u.expect_init_scripts_untouched();
    assert_eq!(u.decision(), None, "the aborted attempt's decision is forgotten");
    assert_eq!(u.v1_tables(), 45);
    assert_eq!(before.diff(&u.fingerprint()), Vec::<String>::new());
    // Once the conflict is gone, the same upgrade goes through.
    u.sh("dpkg -r lava-blocker", &[]).expect_ok();
    u.apt_install(&[("DEBIAN_FRONTEND", "noninteractive")]).expect_ok();
    u.expect_status("ii", NEW_VERSION);
    u.expect_init_scripts_removed();
    assert_eq!(u.v1_tables(), 0);
}

// ---------------------------------------------------------------------------
// 2. Preseeded false: apt fails, nothing changes; then the hold.

#[test]
fn s2_preseeded_false_stops_and_hold_keeps_2017_10() {
    require_root!("2 preseeded false");
    let _t = Timer::start("2 preseeded false: apt fails, nothing changed; apt-mark hold");
    let u = Upgrade::new("s2", Cluster::shared(), with_v1());
    let before = u.fingerprint();
    let rows = u.v1_rows();
    let media = u.media();
    u.preseed("false");
    let files = disk(&u);
    let run = u.apt_install(&[("DEBIAN_FRONTEND", "noninteractive")]);
    run.expect_code(100)
        .expect_output("apt-mark hold lava-server")
        .expect_output("Nothing was deleted")
        .expect_output("pre-installation script subprocess returned error exit status 1");
    u.expect_status("ii", OLD_VERSION);
    assert_eq!(u.v1_rows(), rows, "V1 data changed");
    assert_eq!(before.diff(&u.fingerprint()), Vec::<String>::new(), "V2 data changed");
    assert_eq!(inspect::diff(&files, &disk(&u)), Vec::<String>::new(), "files changed");
    assert_eq!(inspect::diff(&media, &u.media()), Vec::<String>::new(), "the media tree changed");
    u.expect_init_scripts_untouched();
    assert_eq!(u.decision(), None);
    assert!(u.journal().contains("upgrade stopped, nothing deleted"));
    // Never reset to a destructive default: still "false", asked again.
    assert_eq!(u.question(), Some(Question { value: Some("false".into()), seen: false }));

    // What the message says to do, then a repository offering 2017.12-1.
    u.sh("apt-mark hold lava-server", &[]).expect_ok();
    u.sh(
        &format!(
            "mkdir -p /srv/repo && cp {} /srv/repo/ && cd /srv/repo && apt-ftparchive packages . > Packages \
             && apt-ftparchive release . > Release \
             && echo 'deb [trusted=yes] file:/srv/repo ./' > /etc/apt/sources.list.d/local.list \
             && apt-get update",
            u.new_deb
        ),
        &[],
    )
    .expect_ok();
    u.sh("apt-cache policy lava-server", &[]).expect_output(&format!("Candidate: {NEW_VERSION}"));
    let run = u.sh("apt-get upgrade -y", &[("DEBIAN_FRONTEND", "noninteractive")]);
    run.expect_ok().expect_output("kept back");
    let st = inspect::dpkg_status(&u.chroot, "lava-server");
    assert_eq!(
        (st.abbrev.as_str(), st.version.as_str(), st.status.as_str()),
        ("hi", OLD_VERSION, "hold ok installed")
    );
    assert_eq!(u.v1_rows(), rows);
}

// ---------------------------------------------------------------------------
// 3. Never answered, noninteractive: stops, every time.

#[test]
fn s3_unseen_noninteractive_stops_every_time() {
    require_root!("3 unseen noninteractive");
    let _t = Timer::start("3 unseen, noninteractive: stops, twice");
    let u = Upgrade::new("s3", Cluster::shared(), with_v1());
    let before = u.fingerprint();
    let rows = u.v1_rows();
    for attempt in 1..=2 {
        let run = u.apt_install(&[("DEBIAN_FRONTEND", "noninteractive"), ("DEBCONF_DEBUG", "developer")]);
        // The config script did ask (dpkg-preconfigure), the frontend
        // could not show it, the preinst stopped.
        run.expect_code(100)
            .expect_output(&format!("INPUT high {QUESTION}"))
            .expect_output("apt-mark hold lava-server");
        u.expect_status("ii", OLD_VERSION);
        let q = u.question().expect("the question is known");
        assert_ne!(q.value.as_deref(), Some("true"), "attempt {attempt}");
    }
    assert_eq!(u.v1_rows(), rows);
    assert_eq!(before.diff(&u.fingerprint()), Vec::<String>::new());
    u.expect_init_scripts_untouched();
}

// ---------------------------------------------------------------------------
// 4. Interactive (readline frontend on a pseudo-terminal).

/// Runs apt on a pseudo-terminal with the readline frontend, answers
/// `answer` at the prompt; returns apt's exit status and the transcript.
fn interactive(u: &Upgrade<'_>, answer: &str) -> (i32, String) {
    let chroot_cmd = format!(
        "chroot {} /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb \
         DEBIAN_FRONTEND=readline apt-get install -y {}",
        u.chroot.dir().display(),
        u.new_deb
    );
    let mut env = Command::new("env");
    env.env("TERM", "dumb");
    let t = lava_v1_testkit::pty::answer_on_a_terminal(
        &env,
        &chroot_cmd,
        "Remove V1 data from database? [yes/no]",
        answer,
        Duration::from_secs(180),
    );
    let run = lava_v1_pkgtest::chroot::Run {
        cmd: format!("(pty, answers {answer}) apt-get install"),
        code: t.code,
        out: t.text.clone(),
    };
    u.chroot.record(&run, &[("DEBIAN_FRONTEND", "readline")]);
    assert!(!t.text.contains(LAVA_PASSWORD), "the password leaked");
    (t.code, t.text)
}

#[test]
fn s4_interactive_no_stops_and_yes_upgrades() {
    require_root!("4 interactive");
    let _t = Timer::start("4 readline on a pty: no stops, yes upgrades");
    let mut u = Upgrade::new("s4", Cluster::shared(), with_v1());
    u.chroot.mount_pts();
    let before = u.fingerprint();
    let (rc, transcript) = interactive(&u, "no");
    assert_eq!(rc, 100, "{transcript}");
    assert!(transcript.contains("permanently DELETED"), "{transcript}");
    assert!(transcript.contains("Found: 45 V1 tables holding"), "{transcript}");
    assert!(transcript.contains("apt-mark hold lava-server"), "{transcript}");
    u.expect_status("ii", OLD_VERSION);
    assert_eq!(u.v1_tables(), 45);
    u.expect_init_scripts_untouched();
    // Asked again at the next attempt; yes this time.
    let (rc, transcript) = interactive(&u, "yes");
    assert_eq!(rc, 0, "{transcript}");
    u.expect_upgraded_from(&before);
}

// ---------------------------------------------------------------------------
// 5. The drop fails: half-configured, nothing lost, `dpkg --configure -a`
// completes once the cause is gone.

#[test]
fn s5a_lock_held_then_configure_completes() {
    require_root!("5a lock held");
    let _t = Timer::start("5a drop fails on held locks: iF, then dpkg --configure -a");
    let u = Upgrade::new("s5a", Cluster::shared(), with_v1());
    let before = u.fingerprint();
    let rows = u.v1_rows();
    u.preseed("true");
    // A session reading a V1 table (as a running LAVA would) holds a lock
    // the drop needs; the drop gives up after its lock timeout.
    let mut reader = u.inst.admin();
    let mut tx = reader.transaction().expect("begin");
    tx.query_one("SELECT count(*) FROM dashboard_app_bundle", &[]).expect("read a V1 table");
    let run = u.apt_install(&[("DEBIAN_FRONTEND", "noninteractive")]);
    run.expect_code(100)
        .expect_output("waiting for a lock")
        .expect_output("no data was removed")
        .expect_output("dpkg --configure -a")
        .expect_output("post-installation script subprocess returned error exit status 1");
    u.expect_status("iF", NEW_VERSION);
    tx.commit().expect("release the lock");
    drop(reader);
    assert_eq!(u.v1_rows(), rows);
    assert_eq!(before.diff(&u.fingerprint()), Vec::<String>::new());
    assert!(u.journal().contains("FAILED, nothing removed"));

    // Second cause: another run holds the state directory's lock.
    let lock_path = u.chroot.path(&format!("{STATE_DIR}/lock"));
    let lock = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&lock_path).unwrap();
    let lock =
        nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock).expect("take the lock");
    let run = u.sh("dpkg --configure -a", &[("DEBIAN_FRONTEND", "noninteractive")]);
    run.expect_code(1).expect_output("is working on this instance").expect_output("dpkg --configure -a");
    u.expect_status("iF", NEW_VERSION);
    assert_eq!(u.v1_rows(), rows);
    drop(lock);

    u.sh("dpkg --configure -a", &[("DEBIAN_FRONTEND", "noninteractive")]).expect_ok();
    u.expect_upgraded_from(&before);
}

#[test]
fn s5b_database_stopped_after_preinst_then_configure_completes() {
    require_root!("5b database stopped");
    let _t = Timer::start("5b database stopped after the preinst: iF, then dpkg --configure -a");
    // Its own cluster: this test stops the server.
    let cluster = Cluster::start();
    let u = Upgrade::new("s5b", &cluster, with_v1());
    let before = u.fingerprint();
    let rows = u.v1_rows();
    u.preseed("true");
    // dpkg without apt: the preinst starts the debconf frontend itself.
    u.sh(&format!("dpkg --unpack {}", u.new_deb), &[("DEBIAN_FRONTEND", "noninteractive")]).expect_ok();
    u.expect_status("iU", NEW_VERSION);
    cluster.stop();
    let run = u.sh("dpkg --configure lava-server", &[("DEBIAN_FRONTEND", "noninteractive")]);
    run.expect_code(1)
        .expect_output("cannot connect")
        .expect_output("no data was removed")
        .expect_output("dpkg --configure -a");
    u.expect_status("iF", NEW_VERSION);
    cluster.start_server();
    assert_eq!(u.v1_rows(), rows);
    assert_eq!(before.diff(&u.fingerprint()), Vec::<String>::new());
    u.sh("dpkg --configure -a", &[("DEBIAN_FRONTEND", "noninteractive")]).expect_ok();
    u.expect_upgraded_from(&before);
}

// ---------------------------------------------------------------------------
// 5c. What would make the drop fail and can be known before dpkg unpacks
// anything stops the upgrade in the preinst: 2017.10-1 stays configured,
// nothing changes, and the rerun after the fix goes through unasked.

#[test]
fn s5c_preinst_checks_stop_the_upgrade_before_unpacking() {
    require_root!("5c preinst checks");
    let _t = Timer::start("5c not owner / admin view / database down: preinst stops, rerun completes");
    let u = Upgrade::new("s5c", Cluster::shared(), with_v1());
    let before = u.fingerprint();
    let rows = u.v1_rows();
    let media = u.media();
    let mut admin = u.inst.admin();
    u.preseed("true");
    let files = disk(&u);
    let stopped = |run: &lava_v1_pkgtest::chroot::Run, cause: &str, files: &inspect::Tree| {
        run.expect_code(100)
            .expect_output("stopped before anything was unpacked or changed")
            .expect_output(cause)
            .expect_output("pre-installation script subprocess returned error exit status 1");
        u.expect_status("ii", OLD_VERSION);
        assert_eq!(u.v1_rows(), rows, "V1 data changed ({cause})");
        assert_eq!(before.diff(&u.fingerprint()), Vec::<String>::new(), "V2 data changed ({cause})");
        assert_eq!(inspect::diff(files, &disk(&u)), Vec::<String>::new(), "files changed ({cause})");
        assert_eq!(inspect::diff(&media, &u.media()), Vec::<String>::new(), "media changed ({cause})");
        u.expect_init_scripts_untouched();
        assert_eq!(u.question(), Some(Question { value: Some("true".into()), seen: true }), "{cause}");
    };
    let noninteractive = [("DEBIAN_FRONTEND", "noninteractive")];

    // The connecting role does not own the V1 tables.
    admin.batch_execute("ALTER TABLE dashboard_app_bundle OWNER TO postgres").unwrap();
    stopped(&u.apt_install(&noninteractive), "ownership of dashboard_app_bundle", &files);
    admin.batch_execute("ALTER TABLE dashboard_app_bundle OWNER TO lavaserver").unwrap();

    // A view of the admin's reads a V1 table.
    admin.batch_execute("CREATE VIEW lab_report AS SELECT id FROM dashboard_app_testrun").unwrap();
    let snapshot = u.fingerprint();
    stopped_with(&u, &u.apt_install(&noninteractive), "view lab_report", &snapshot);
    admin.batch_execute("DROP VIEW lab_report").unwrap();

    // The database cannot be reached with instance.conf's settings.
    let conf = "/etc/lava-server/instance.conf";
    let text = u.read(conf).expect("instance.conf");
    let port = u.inst.cluster.port.to_string();
    std::fs::write(
        u.chroot.path(conf),
        text.replace(&format!("LAVA_DB_PORT=\"{port}\""), "LAVA_DB_PORT=\"1\""),
    )
    .unwrap();
    let edited = disk(&u);
    stopped(&u.apt_install(&noninteractive), "cannot connect", &edited);
    std::fs::write(u.chroot.path(conf), &text).unwrap();

    // Fixed: the same command completes, without asking again.
    let run = u.apt_install(&[("DEBIAN_FRONTEND", "noninteractive"), ("DEBCONF_DEBUG", "developer")]);
    run.expect_ok();
    u.expect_upgraded_from(&before);
}

/// [`s5c`]'s check where the admin's own object is part of the database.
#[track_caller]
fn stopped_with(
    u: &Upgrade<'_>,
    run: &lava_v1_pkgtest::chroot::Run,
    cause: &str,
    snapshot: &lava_v1_core::fingerprint::Fingerprint,
) {
    run.expect_code(100)
        .expect_output("stopped before anything was unpacked or changed")
        .expect_output(cause);
    u.expect_status("ii", OLD_VERSION);
    assert_eq!(u.v1_tables(), 45);
    assert_eq!(snapshot.diff(&u.fingerprint()), Vec::<String>::new(), "changed ({cause})");
    u.expect_init_scripts_untouched();
}

// ---------------------------------------------------------------------------
// 6. Nothing to ask about.

#[test]
fn s6a_no_v1_data_is_never_asked() {
    require_root!("6a no V1 data");
    let _t = Timer::start("6a no V1 data: never asked, upgrades");
    let u = Upgrade::new("s6a", Cluster::shared(), without_v1());
    let before = u.fingerprint();
    let run = u.apt_install(&[("DEBIAN_FRONTEND", "noninteractive"), ("DEBCONF_DEBUG", "developer")]);
    run.expect_ok();
    assert!(!run.out.contains(&format!("INPUT high {QUESTION}")), "asked:\n{}", run.out);
    u.expect_status("ii", NEW_VERSION);
    assert_eq!(u.v1_tables(), 0, "the empty V1 tables go, as LAVA's migrations would drop them");
    assert_eq!(before.diff(&u.fingerprint()), Vec::<String>::new());
    assert!(u.decision().is_some_and(|d| d.contains("answer=no-v1-data")));
    assert!(u.question().is_none_or(|q| !q.seen), "{:?}", u.question());
    u.expect_init_scripts_removed();
}

#[test]
fn s6b_fresh_install_is_never_asked() {
    require_root!("6b fresh install");
    let _t = Timer::start("6b fresh install: never asked");
    let c = Chroot::new("s6b");
    let new = debs::package();
    let inside = format!("/srv/debs/{}", new.file_name().unwrap().to_string_lossy());
    c.copy_in(new, &inside);
    let run = c.sh(
        &format!("apt-get install -y {inside}"),
        &[("DEBIAN_FRONTEND", "noninteractive"), ("DEBCONF_DEBUG", "developer")],
    );
    run.expect_ok().expect_output("Preconfiguring packages");
    assert!(!run.out.contains(&format!("INPUT high {QUESTION}")), "asked:\n{}", run.out);
    assert_eq!(inspect::dpkg_status(&c, "lava-server").abbrev, "ii");
    assert!(!c.path(STATE_DIR).exists(), "no V1 removal on a fresh install");
    c.sh("lava-v1 --version && test -e /usr/share/man/man8/lava-v1.8.gz", &[]).expect_ok();
}

// ---------------------------------------------------------------------------
// 7. Remove and purge after the upgrade: nothing of LAVA's data is touched;
// purge leaves nothing of ours.

#[test]
fn s7_remove_and_purge_keep_data_and_leave_nothing_of_ours() {
    require_root!("7 purge");
    let _t = Timer::start("7 remove and purge after the upgrade");
    let u = Upgrade::new("s7", Cluster::shared(), with_v1());
    u.preseed("true");
    u.apt_install(&[("DEBIAN_FRONTEND", "noninteractive")]).expect_ok();
    u.expect_status("ii", NEW_VERSION);
    let db = u.fingerprint();
    let tables = u.v1_tables();
    let media = u.media();
    assert!(!media.is_empty());
    // Backups the postinst took are the admin's data, like the media.
    let backups = inspect::snapshot(&u.chroot, &["/var/backups/lava-server"], &[]);

    u.sh("apt-get remove -y lava-server", &[("DEBIAN_FRONTEND", "noninteractive")]).expect_ok();
    u.expect_status("rc", NEW_VERSION);
    assert_eq!(db.diff(&u.fingerprint()), Vec::<String>::new(), "remove touched the database");
    assert_eq!(u.v1_tables(), tables);
    assert_eq!(inspect::diff(&media, &u.media()), Vec::<String>::new(), "remove touched the media");
    assert!(u.chroot.path(&format!("{STATE_DIR}/journal.log")).exists(), "remove keeps the journal");

    u.sh("apt-get purge -y lava-server", &[("DEBIAN_FRONTEND", "noninteractive")]).expect_ok();
    let st = inspect::dpkg_status(&u.chroot, "lava-server");
    assert!(st.abbrev == "un" || st.abbrev == "pn", "{st:?}");
    assert_eq!(db.diff(&u.fingerprint()), Vec::<String>::new(), "purge touched the database");
    assert_eq!(u.v1_tables(), tables);
    assert_eq!(inspect::diff(&media, &u.media()), Vec::<String>::new(), "purge touched the media");
    let after = inspect::snapshot(&u.chroot, &["/var/backups/lava-server"], &[]);
    assert_eq!(inspect::diff(&backups, &after), Vec::<String>::new(), "purge touched the backups");
    for f in inspect::deb_files(debs::package()) {
        assert!(!u.chroot.path(&f).exists(), "{f} is left after purge");
    }
    for path in INIT_SCRIPTS {
        for suffix in ["", ".dpkg-bak", ".dpkg-remove", ".dpkg-backup"] {
            assert!(!u.chroot.path(&format!("{path}{suffix}")).exists(), "{path}{suffix} left after purge");
        }
    }
    assert!(!u.chroot.path(STATE_DIR).exists(), "{STATE_DIR} left after purge");
    assert!(!u.chroot.path("/usr/libexec/lava-server").exists());
    assert_eq!(u.question(), None, "the question is left in config.dat");
    assert!(!inspect::has_template(&u.chroot, QUESTION), "the template is left in templates.dat");
    assert!(u.chroot.path(MEDIA_ROOT).is_dir());
}

// ---------------------------------------------------------------------------
// The package itself.

fn control_file(deb: &Path, name: &str) -> Vec<u8> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("dpkg-deb --ctrl-tarfile '{}' | tar -xOf - ./{name}", deb.display()))
        .output()
        .expect("read the control area");
    assert!(out.status.success(), "no {name} in the control area");
    out.stdout
}

#[test]
fn package_lintian_is_clean() {
    let _t = Timer::start("package: lintian");
    let deb = debs::package();
    let out = Command::new("lintian")
        .args(["--fail-on", "error,warning", "--tag-display-limit", "0"])
        .arg(deb)
        .output()
        .expect("run lintian (package lintian)");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "pkgtest: lintian {}: {}",
        deb.display(),
        if text.trim().is_empty() { "no tags" } else { &text }
    );
    assert!(out.status.success(), "lintian: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    let tags: Vec<&str> = text.lines().filter(|l| l.starts_with("E: ") || l.starts_with("W: ")).collect();
    assert!(tags.is_empty(), "{tags:?}");
}

#[test]
fn package_maintainer_scripts_and_control() {
    let deb = debs::package();
    assert!(control_file(deb, "preinst").starts_with(b"\x7fELF"), "the preinst is the compiled program");
    // Everything apt-extracttemplates extracts must be text (it stops at a
    // NUL byte).
    for file in ["config", "templates"] {
        assert!(!control_file(deb, file).contains(&0), "{file} holds a NUL byte");
    }
    let config = String::from_utf8(control_file(deb, "config")).unwrap();
    assert!(
        config.contains(". /usr/share/debconf/confmodule")
            && config.contains("db_input high lava-server/removev1")
    );
    for script in ["config", "postinst", "postrm", "prerm"] {
        let text = String::from_utf8(control_file(deb, script)).unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{script}");
        assert!(!text.contains("#DEBHELPER#"), "{script}: token not replaced");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(script);
        std::fs::write(&path, &text).unwrap();
        assert!(Command::new("sh").arg("-n").arg(&path).status().unwrap().success(), "{script}: syntax");
    }
    let postinst = String::from_utf8(control_file(deb, "postinst")).unwrap();
    assert!(postinst.contains(". /usr/share/debconf/confmodule"));
    assert!(postinst.contains("/usr/libexec/lava-server/lava-server-postinst \"$@\""));
    for (script, n) in [("postinst", 5), ("postrm", 5), ("prerm", 5)] {
        let text = String::from_utf8(control_file(deb, script)).unwrap();
        let calls = text
            .lines()
            .filter(|l| l.starts_with("dpkg-maintscript-helper rm_conffile /etc/init.d/lava-"))
            .count();
        assert_eq!(calls, n, "{script}");
        assert!(text
            .lines()
            .filter(|l| l.starts_with("dpkg-maintscript-helper"))
            .all(|l| l.contains(" lava-server -- ")));
    }
    let postrm = String::from_utf8(control_file(deb, "postrm")).unwrap();
    assert!(postrm.contains("db_purge"));
    for word in ["psql", "dropdb", "DROP ", "pg_", "media", "/var/backups"] {
        assert!(
            !postrm.lines().filter(|l| !l.trim_start().starts_with('#')).any(|l| l.contains(word)),
            "postrm: {word}"
        );
    }
    // The only thing it deletes is its own state directory.
    for line in postrm.lines().map(str::trim).filter(|l| l.starts_with("rm ")) {
        assert!(
            line == "rm -rf \"$state_dir\"" || line == "rm -f \"$state_dir/decision\"",
            "postrm deletes more than its state: {line}"
        );
    }
    assert!(postrm.contains("state_dir=\"${DPKG_ROOT:-}/var/lib/lava-server/v1-removal\""));
    let control = String::from_utf8(control_file(deb, "control")).unwrap();
    assert!(control.contains(&format!("Version: {NEW_VERSION}\n")), "{control}");
    assert!(!control.contains("Architecture: all"), "{control}");
    let pre = control.lines().find(|l| l.starts_with("Pre-Depends:")).unwrap_or_default();
    assert!(pre.contains("libc6") && pre.contains("debconf"), "{control}");
    // SQLite is Debian's library, a dependency of the programs that use it
    // (dh_shlibdeps), never of the preinst, which runs before any
    // dependency is unpacked.
    let depends = control.lines().find(|l| l.starts_with("Depends:")).unwrap_or_default();
    assert!(depends.contains("libsqlite3-0"), "{control}");
    assert!(!pre.contains("sqlite"), "{control}");
    let dir = tempfile::tempdir().unwrap();
    let preinst = dir.path().join("preinst");
    std::fs::write(&preinst, control_file(deb, "preinst")).unwrap();
    let out = Command::new("readelf").arg("-d").arg(&preinst).output().expect("run readelf");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
    assert!(!needed.is_empty(), "{dynamic}");
    for line in needed {
        assert!(
            ["libc.so.6", "libgcc_s.so.1", "libm.so.6", "ld-linux"].iter().any(|l| line.contains(l)),
            "the preinst needs more than libc and libgcc_s: {line}"
        );
    }
}

/// The question, word for word as the upstream page words it.
#[test]
fn package_templates_word_the_question_as_upstream_and_are_translated() {
    let deb = debs::package();
    let templates = String::from_utf8(control_file(deb, "templates")).unwrap();
    let english = templates.split("\nDescription-").next().unwrap();
    let flat = english.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(
            "Description: Remove V1 data from database? \
             If you continue this upgrade, all V1 test data will be permanently DELETED. . \
             V2 test data will not be affected. If you have remaining V1 test data that you care about, \
             make sure it is backed up before you continue here."
        ),
        "{templates}"
    );
    assert!(english.contains("Type: boolean\nDefault: false\n"), "{templates}");
    for lang in ["de", "fr", "es"] {
        let field = format!("\nDescription-{lang}.UTF-8: ");
        let at =
            templates.find(&field).unwrap_or_else(|| panic!("no {lang} translation merged:\n{templates}"));
        let short = templates[at + field.len()..].lines().next().unwrap();
        assert!(short.ends_with('?'), "{lang}: {short}");
    }
}

#[test]
fn package_templates_pot_is_what_debconf_updatepo_makes() {
    let root = lava_v1_pkgtest::workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("debian");
    let status = Command::new("cp").arg("-a").arg(root.join("debian")).arg(&copy).status().unwrap();
    assert!(status.success());
    let out = Command::new("debconf-updatepo")
        .current_dir(&copy)
        .output()
        .expect("run debconf-updatepo (po-debconf)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        Command::new("diff").arg("-ru").arg(root.join("debian/po")).arg(copy.join("po")).output().unwrap();
    assert!(
        out.status.success(),
        "debian/po is not current; run debconf-updatepo:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for lang in ["de", "fr", "es"] {
        let out = Command::new("msgfmt")
            .args(["--check", "--statistics", "-o", "/dev/null"])
            .arg(root.join(format!("debian/po/{lang}.po")))
            .output()
            .unwrap();
        let stats = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stats.contains("untranslated") && !stats.contains("fuzzy"),
            "{lang}: {stats}"
        );
    }
}

/// Every command of the packaged lava-v1 is in the packaged manual page.
#[test]
fn package_manual_page_documents_every_command() {
    let deb = debs::package();
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()).status().unwrap();
    assert!(status.success());
    let out = Command::new(dir.path().join("usr/sbin/lava-v1")).arg("--help").output().expect("run lava-v1");
    let help = String::from_utf8_lossy(&out.stdout);
    let commands: Vec<&str> = help
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands: section")
        .lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.contains(&"drop"), "{help}");
    let page = std::fs::read_to_string(lava_v1_pkgtest::workspace_root().join("debian/lava-v1.8")).unwrap();
    let headings: Vec<&str> = page.split(".TP\n").skip(1).filter_map(|s| s.lines().next()).collect();
    for c in commands {
        assert!(
            headings.iter().any(|h| h.replace('"', " ").split_whitespace().any(|w| w == c)),
            "lava-v1 {c} is not in debian/lava-v1.8"
        );
    }
}

/// A check of the harness's own safety net.
#[test]
fn harness_unmounts_before_deleting_a_tree() {
    require_root!("harness");
    let work = lava_v1_pkgtest::chroot::work_dir();
    std::fs::create_dir_all(&work).unwrap();
    let dir = tempfile::Builder::new().prefix("mounted.").tempdir_in(&work).unwrap();
    let proc_dir = dir.path().join("proc");
    std::fs::create_dir(&proc_dir).unwrap();
    assert!(Command::new("mount").args(["-t", "proc", "proc"]).arg(&proc_dir).status().unwrap().success());
    assert_eq!(lava_v1_pkgtest::chroot::mounts_under(dir.path()), vec![PathBuf::from(&proc_dir)]);
    // remove_tree unmounts first, then deletes.
    lava_v1_pkgtest::chroot::remove_tree(dir.path());
    assert!(lava_v1_pkgtest::chroot::mounts_under(dir.path()).is_empty());
    assert!(!dir.path().exists());
}
