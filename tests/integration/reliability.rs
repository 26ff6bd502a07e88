//! Database faults injected through real PostgreSQL: the backend
//! terminated mid-transaction, the server stopped before and during the
//! drop, a statement_timeout, a role without the rights.  Each must end in
//! a clear error, a non-zero exit, nothing changed, and a rerun that
//! completes once the cause is gone.

use lava_v1_testkit::cluster::{LAVA_PASSWORD, LAVA_ROLE};
use lava_v1_testkit::{Cluster, Instance, Seed};

use crate::util::*;

#[test]
fn backend_terminated_mid_transaction() {
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let before = snapshot(&inst);
    let paused = start_resumable(&inst, &["drop", "--yes"], "after-column");
    let killed: i64 = inst
        .admin()
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND application_name = 'lava-v1') x",
            &[&inst.db_name],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    paused.resume();
    let (status, err) = paused.finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("was interrupted") && err.contains("nothing was changed"), "{err}");
    assert!(!err.contains(LAVA_PASSWORD));
    assert_eq!(before, snapshot(&inst));
    assert_success(&run(&inst, &["drop", "--yes"]));
    assert!(snapshot(&inst).tables.is_empty());
}

#[test]
fn server_stopped_before_and_during_the_drop() {
    let cluster = Cluster::start();
    let inst = live(&cluster, Seed { media: false, ..Seed::default() });
    let before = snapshot(&inst);

    cluster.stop();
    let out = run(&inst, &["drop", "--yes"]);
    assert_failure(&out, 1);
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    cluster.start_server();
    assert_eq!(before, snapshot(&inst));

    let paused = start_resumable(&inst, &["drop", "--yes"], "after-tables");
    cluster.stop();
    paused.resume();
    let (status, err) = paused.finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("was interrupted"), "{err}");
    cluster.start_server();
    assert_eq!(before, snapshot(&inst));
    assert_success(&run(&inst, &["drop", "--yes"]));
    assert!(snapshot(&inst).tables.is_empty());
}

/// A second role for `inst`'s database, and an instance.conf using it.
fn use_role(inst: &Instance<'_>, role: &str, setup: &str) {
    let mut admin = inst.cluster.client("postgres");
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                 CREATE ROLE {role} LOGIN PASSWORD '{LAVA_PASSWORD}'; END IF; END $$; {setup}"
        ))
        .unwrap();
    let conf = std::fs::read_to_string(&inst.paths.instance_conf).unwrap();
    std::fs::write(
        &inst.paths.instance_conf,
        conf.replace(&format!("LAVA_DB_USER=\"{LAVA_ROLE}\""), &format!("LAVA_DB_USER=\"{role}\"")),
    )
    .unwrap();
}

#[test]
fn a_statement_timeout_cancels_cleanly() {
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let role = format!("lava_slow_{}", inst.db_name);
    use_role(
        &inst,
        &role,
        &format!("GRANT {LAVA_ROLE} TO {role}; ALTER ROLE {role} SET statement_timeout = '50ms'"),
    );
    let before = snapshot(&inst);
    // Another session holds a V1 table: the LOCK waits past the 50 ms
    // statement_timeout long before the 10 s lock_timeout.
    let mut other = inst.admin();
    let mut tx = other.transaction().unwrap();
    tx.batch_execute("SELECT count(*) FROM dashboard_app_testrun").unwrap();
    let out = run(&inst, &["drop", "--yes"]);
    tx.rollback().unwrap();
    assert_failure(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("canceled") && err.contains("nothing was changed"), "{err}");
    assert_eq!(before, snapshot(&inst));
    inst.cluster
        .client("postgres")
        .batch_execute(&format!("ALTER ROLE {role} RESET statement_timeout"))
        .unwrap();
    assert_success(&run(&inst, &["drop", "--yes"]));
}

#[test]
fn a_role_without_the_rights_is_refused_before_anything() {
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let role = format!("lava_reader_{}", inst.db_name);
    use_role(&inst, &role, &format!("GRANT CONNECT ON DATABASE {db} TO {role};", db = inst.db_name));
    inst.admin().batch_execute(&format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")).unwrap();
    let before = snapshot(&inst);
    let out = run(&inst, &["drop", "--yes"]);
    assert_failure(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("missing right: ownership of"), "{err}");
    assert!(err.contains(&format!("connected as {role}")), "{err}");
    assert!(err.contains("INSERT on django_migrations"), "{err}");
    assert_eq!(before, snapshot(&inst));
}

#[test]
fn a_wrong_password_stops_every_command_before_anything_and_is_never_shown() {
    let inst = live(Cluster::shared(), Seed::default());
    let before = lava_v1_testkit::world::World::read(&mut inst.admin());
    let media_before = lava_v1_testkit::hostile::listing(&inst.media_root());
    let conf = std::fs::read_to_string(&inst.paths.instance_conf).unwrap();
    let wrong = "Wr0ng-but-secret";
    std::fs::write(&inst.paths.instance_conf, conf.replace(LAVA_PASSWORD, wrong)).unwrap();
    let backups = inst.dir.path().join("backups");
    let backup_args = ["backup", "--backup-dir", backups.to_str().unwrap()];
    let commands: [&[&str]; 5] =
        [&["drop", "--yes"], &["jobs", "rm", "--v1"], &["files", "rm"], &backup_args, &["status"]];
    for args in commands {
        let out = run(&inst, args);
        let err = stderr(&out);
        assert_failure(&out, 1);
        assert!(
            err.contains("cannot connect")
                && err.contains("password authentication failed")
                && err.contains("LAVA_DB_"),
            "{args:?}: {err}"
        );
        for secret in [wrong, LAVA_PASSWORD] {
            assert!(
                !err.contains(secret) && !stdout(&out).contains(secret),
                "{args:?} shows a password: {err}"
            );
        }
    }
    // A bug report taken now says why, and holds no password; nor does
    // anything else in the state directory.
    let out = run(&inst, &["report"]);
    assert_success(&out);
    let report = std::fs::read_to_string(stdout(&out).lines().next().unwrap().trim()).unwrap();
    assert!(
        report.contains("password authentication failed") && report.contains("LAVA_DB_PASSWORD=********"),
        "{report}"
    );
    for e in walk_files(&inst.paths.state_dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&e).unwrap()).into_owned();
        assert!(!text.contains(wrong) && !text.contains(LAVA_PASSWORD), "{} holds a password", e.display());
    }
    assert_eq!(lava_v1_testkit::world::World::read(&mut inst.admin()).diff(&before), Vec::<String>::new());
    assert_eq!(lava_v1_testkit::hostile::listing(&inst.media_root()), media_before);
    assert!(
        !backups.exists() || std::fs::read_dir(&backups).unwrap().next().is_none(),
        "a backup was started"
    );

    // With the password put right, the same commands complete.
    std::fs::write(&inst.paths.instance_conf, conf).unwrap();
    for args in [&backup_args[..], &["drop", "--yes"], &["jobs", "rm", "--v1"], &["files", "rm"]] {
        assert_success(&run(&inst, args));
    }
    assert!(snapshot(&inst).tables.is_empty());
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// What an admin reads for the two failures met most: every line once,
/// the hint last, nothing else (logs quiet).
#[test]
fn errors_are_told_once_with_the_hint_last() {
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let quiet = |args: &[&str]| {
        let out = command(&inst).env("RUST_LOG", "error").args(args).output().unwrap();
        assert_no_secret(&out);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let target = format!(
        "database `{}` on 127.0.0.1:{} as `{}`",
        inst.db_name,
        inst.cluster.port,
        lava_v1_testkit::cluster::LAVA_ROLE
    );

    // Another session holds a lock the drop needs.
    let mut other = inst.admin();
    let mut tx = other.transaction().unwrap();
    tx.batch_execute("SELECT count(*) FROM dashboard_app_testrun").unwrap();
    let (code, err) = quiet(&["drop", "--yes", "--lock-timeout", "1"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        "lava-v1: error: timed out after 1000ms waiting for a lock on LAVA's tables; another session is using them\n\
         \n\
         hint: stop the LAVA services (lava-master, lava-server-gunicorn, lava-publisher, apache2) or wait for \
         the other session, then run the same command again; nothing was changed\n"
    );
    tx.rollback().unwrap();

    // A wrong password.
    let conf = std::fs::read_to_string(&inst.paths.instance_conf).unwrap();
    std::fs::write(&inst.paths.instance_conf, conf.replace(LAVA_PASSWORD, "Wr0ng-but-secret")).unwrap();
    let (code, err) = quiet(&["status"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!(
            "lava-v1: error: cannot connect to the {target}\n  \
             caused by: db error\n  \
             caused by: FATAL: password authentication failed for user \"{role}\"\n\
             \n\
             hint: check that PostgreSQL is running and that LAVA_DB_* in instance.conf are right\n",
            role = lava_v1_testkit::cluster::LAVA_ROLE
        )
    );
}
