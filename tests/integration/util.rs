//! Shared helpers: running the binary against an instance, reading the
//! database's shape.

use std::process::{Command, Output};

use lava_v1_testkit::cluster::LAVA_PASSWORD;
use lava_v1_testkit::Instance;

/// `lava-v1` with the instance's paths as global options.
pub(crate) fn command(inst: &Instance<'_>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lava-v1"));
    c.arg("--instance-conf")
        .arg(&inst.paths.instance_conf)
        .arg("--settings-conf")
        .arg(&inst.paths.settings_conf)
        .arg("--state-dir")
        .arg(&inst.paths.state_dir)
        .env_remove("LAVA_V1_FAULT_PAUSE")
        .env("RUST_LOG", "info");
    c
}

/// Runs `lava-v1 <args>` and checks that the password never shows.
pub(crate) fn run(inst: &Instance<'_>, args: &[&str]) -> Output {
    let out = command(inst).args(args).output().expect("run lava-v1");
    assert_no_secret(&out);
    out
}

pub(crate) fn assert_no_secret(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains(LAVA_PASSWORD), "the password leaked:\n{text}");
    }
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
pub(crate) fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "lava-v1 failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

#[track_caller]
pub(crate) fn assert_failure(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "unexpected exit status:\nstdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Every dashboard_app table with its row count.
pub(crate) fn dashboard_tables(client: &mut postgres::Client) -> Vec<(String, i64)> {
    let names: Vec<String> = client
        .query(
            "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND relname LIKE 'dashboard\\_app\\_%' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    names
        .into_iter()
        .map(|n| {
            let c: i64 = client.query_one(&format!("SELECT count(*) FROM {n}"), &[]).unwrap().get(0);
            (n, c)
        })
        .collect()
}

pub(crate) fn has_bundle_column(client: &mut postgres::Client) -> bool {
    client
        .query_one(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'lava_scheduler_app_testjob'::regclass
             AND attname = 'results_bundle_id' AND NOT attisdropped",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0)
        == 1
}

/// `(app, name)` rows of the two drop migrations, with duplicates.
pub(crate) fn drop_migration_rows(client: &mut postgres::Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT app::text, name::text FROM django_migrations
             WHERE (app = 'lava_scheduler_app' AND name LIKE '0029%') OR (app = 'dashboard_app' AND name LIKE '0023%')
             ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

pub(crate) fn matviews(client: &mut postgres::Client) -> Vec<String> {
    client
        .query("SELECT matviewname::text FROM pg_matviews ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The whole database as before: V1 tables with counts, the column, the
/// migration rows, the views and the V2 fingerprint.
#[derive(Debug, PartialEq)]
pub(crate) struct Snapshot {
    pub(crate) tables: Vec<(String, i64)>,
    pub(crate) column: bool,
    pub(crate) rows: Vec<(String, String)>,
    pub(crate) views: Vec<String>,
    pub(crate) fingerprint: lava_v1_core::fingerprint::Fingerprint,
}

pub(crate) fn snapshot(inst: &Instance<'_>) -> Snapshot {
    let mut c = inst.admin();
    Snapshot {
        tables: dashboard_tables(&mut c),
        column: has_bundle_column(&mut c),
        rows: drop_migration_rows(&mut c),
        views: matviews(&mut c),
        fingerprint: lava_v1_core::fingerprint::v2(&mut c).unwrap(),
    }
}
