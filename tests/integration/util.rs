//! Shared helpers: running the binary against an instance, reading the
//! database's shape.

use std::process::{Command, Output};

use lava_v1_testkit::cluster::LAVA_PASSWORD;
use lava_v1_testkit::Instance;

/// A seeded instance as production has one: devices idle, running and
/// reserved, V1 and V2 jobs submitted, running and canceling (no
/// maintenance window: the tests that need one enter it themselves).
pub(crate) fn live(cluster: &lava_v1_testkit::Cluster, seed: lava_v1_testkit::Seed) -> Instance<'_> {
    Instance::new(cluster, seed)
}

/// `lava-v1` with the instance's paths as global options.
pub(crate) fn command(inst: &Instance<'_>) -> Command {
    let mut c = inst.lava_v1(&lava_v1_testkit::program("lava-v1"));
    c.env_remove("LAVA_V1_FAULT_PAUSE").env("RUST_LOG", "info");
    c
}

/// Runs `lava-v1 <args>` and checks that the password never shows.
pub(crate) fn run(inst: &Instance<'_>, args: &[&str]) -> Output {
    let out = command(inst).args(args).output().expect("run lava-v1");
    assert_no_secret(&out);
    out
}

/// Runs `lava-v1 <args>` in a private mount namespace in which each
/// `(source, target)` directory is bind-mounted: the mounts vanish with the
/// process whatever happens, and the host never sees them.  Root needs
/// only the mount namespace; anyone else a user namespace too.
pub(crate) fn run_with_bind_mounts(
    inst: &Instance<'_>,
    mounts: &[(&std::path::Path, &std::path::Path)],
    args: &[&str],
) -> Output {
    let mut base = command(inst);
    base.args(args);
    let mut c = Command::new("unshare");
    if !nix::unistd::geteuid().is_root() {
        c.arg("--map-root-user");
    }
    c.args(["--mount", "--propagation", "private", "sh", "-ec"]);
    c.arg(r#"n=$1; shift; while [ "$n" -gt 0 ]; do mount --bind "$1" "$2"; shift 2; n=$((n-1)); done; exec "$@""#);
    c.arg("sh").arg(mounts.len().to_string());
    for (source, target) in mounts {
        c.arg(source).arg(target);
    }
    c.arg(base.get_program()).args(base.get_args());
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = c.output().expect("run lava-v1 under unshare");
    assert_no_secret(&out);
    out
}

/// Runs a removal (`args`, with `--json`) with `mounts` in place; checks
/// that it failed leaving exactly `point`, as a mount point, and returns
/// its report.
#[track_caller]
pub(crate) fn removal_leaving_only_a_mount_point(
    inst: &Instance<'_>,
    mounts: &[(&std::path::Path, &std::path::Path)],
    args: &[&str],
    point: &std::path::Path,
) -> serde_json::Value {
    let out = run_with_bind_mounts(inst, mounts, args);
    assert_failure(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the JSON report");
    let left = v["left"].as_array().expect("left");
    assert_eq!(left.len(), 1, "{v}");
    assert_eq!(left[0]["path"], point.display().to_string());
    assert!(left[0]["reason"].as_str().unwrap_or_default().contains("mount point"), "{v}");
    v
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
    lava_v1_testkit::world::v1_table_names(client)
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

/// Marks the seed's unfinished V1 jobs (submitted, running, canceling) as
/// canceled, as an admin would before removing V1 jobs.
pub(crate) fn finish_v1_jobs(client: &mut postgres::Client) {
    client
        .batch_execute(
            "UPDATE lava_scheduler_app_testjob
             SET status = 4, end_time = coalesce(end_time, submit_time + INTERVAL '40 minutes')
             WHERE NOT is_pipeline AND status IN (0, 1, 5)",
        )
        .unwrap();
}

pub(crate) use lava_v1_testkit::world::{all_rows, differing};

pub(crate) use lava_v1_testkit::instance::testjob_fks;

/// Starts `lava-v1 <args>` paused at the fault point `point`; returns
/// once it is there.
pub(crate) fn start_paused_at(inst: &Instance<'_>, args: &[&str], point: &str) -> std::process::Child {
    spawn_paused(inst, args, point, None).0
}

/// A run paused at a fault point, resumed by [`Paused::resume`].
pub(crate) struct Paused {
    pub(crate) child: std::process::Child,
    resume: std::path::PathBuf,
    stderr: std::thread::JoinHandle<String>,
}

impl Paused {
    /// Lets the run go on.
    pub(crate) fn resume(&self) {
        std::fs::write(&self.resume, "").expect("create the resume file");
    }

    /// Waits for the end of the run: its exit status and all of its stderr.
    pub(crate) fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("wait for lava-v1");
        (status, self.stderr.join().expect("stderr reader"))
    }
}

/// Starts `lava-v1 <args>` paused at the fault point `point`, to be
/// resumed (or killed) once it is there.
pub(crate) fn start_resumable(inst: &Instance<'_>, args: &[&str], point: &str) -> Paused {
    let resume = inst.dir.path().join(format!("resume-{point}"));
    let (child, stderr) = spawn_paused(inst, args, point, Some(&resume));
    Paused { child, resume, stderr }
}

fn spawn_paused(
    inst: &Instance<'_>,
    args: &[&str],
    point: &str,
    resume: Option<&std::path::Path>,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    let mut cmd = command(inst);
    cmd.args(args);
    spawn_paused_command(cmd, point, resume)
}

pub(crate) use lava_v1_testkit::paused::{kill_run, spawn_paused_command};

/// Reaches the end state of LAVA 2017.12's two V1 migrations by plain SQL
/// (what `lava-v1 drop` does, without its maintenance-window checks), for
/// tests that need a database past the drop.
pub(crate) fn drop_v1_by_sql(client: &mut postgres::Client) {
    let views: Vec<String> = client
        .query(
            "SELECT DISTINCT v.relname::text FROM pg_depend d
             JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
             JOIN pg_class v ON v.oid = r.ev_class
             JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.refobjid = 'lava_scheduler_app_testjob'::regclass AND a.attname = 'results_bundle_id'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut sql = String::from("BEGIN;\n");
    for v in views {
        sql.push_str(&format!("DROP MATERIALIZED VIEW {v};\n"));
    }
    sql.push_str("ALTER TABLE lava_scheduler_app_testjob DROP COLUMN results_bundle_id;\n");
    sql.push_str(&format!("DROP TABLE {};\n", lava_v1_core::schema::V1_TABLES.join(", ")));
    sql.push_str(
        "INSERT INTO django_migrations (app, name, applied) VALUES
         ('lava_scheduler_app', '0029_remove_testjob__results_bundle', TIMESTAMPTZ '2017-12-20 00:00:00+00'),
         ('dashboard_app', '0023_drop_dashboard_models', TIMESTAMPTZ '2017-12-20 00:00:01+00');
         COMMIT;",
    );
    client.batch_execute(&sql).unwrap();
}
