//! `jobs rm --v1`: what `lava-server manage jobs rm --v1` (2017.12) does to
//! the database, set-based and in batches, then the jobs' output
//! directories, safely.
//!
//! # What is deleted
//!
//! Every V1 `TestJob` (`is_pipeline = false`; with `--older-than`, only
//! those with `end_time < now - age`, as LAVA's option: a job that never
//! ended is never selected), and everything Django's collector deletes or
//! changes with it (see [`STEPS`]): the three many-to-many join tables and
//! `testjobuser` rows are deleted, notifications with their recipients,
//! `lava_results_app` suites, sets, cases, action data, test data and the
//! test data's generic attributes; `devicestatetransition.job_id`,
//! `device.current_job_id` and `device.last_health_report_job_id` are set to
//! NULL.  Generic rows that only *name* a job (`django_admin_log`,
//! `queryomitresult`, `lava_results_app_buglink`, testjob-typed
//! `namedtestattribute`) are left dangling, exactly as Django leaves them.
//! Nothing refers to `results_bundle_id` (the job points at the bundle, not
//! the other way round), so a 2017.10 database and one past the drop are
//! handled alike.
//!
//! Jobs left submitted, running or canceling: on a 2017.10 database (V1
//! tables still there, a V1 dispatcher may still be running them) the run
//! refuses, changing nothing, while any V1 job is in one of those states,
//! and lists them.  Past the drop there is no V1 dispatcher: such jobs can
//! never finish, so they are removed like every other V1 job, as LAVA's
//! command does, and the report counts them ([`JobsRmReport::stuck_jobs`]).
//!
//! # How
//!
//! Jobs are taken in id order, [`JobsRmOptions::batch_size`] at a time, one
//! transaction per batch, so progress is durable, memory stays flat and
//! LAVA waits at most one batch for its tables.  Each batch locks
//! `lava_scheduler_app_testjob` and the tables pointing at it (with a
//! `lock_timeout`), gathers the rows its jobs own further down (test data,
//! suites, cases) into analyzed work tables, **drops the foreign keys that
//! point at `lava_scheduler_app_testjob`** (those LAVA's schema has, found
//! in the catalogue by table and column, whatever they are named), deletes
//! with one set-based join per table and path (each also bounded by the
//! batch's lowest and highest job id, so it reads that range of an index
//! and not the whole table, whose size would otherwise make each batch
//! dearer as the instance grows), and **re-creates the same
//! constraints with the same names and definitions**
//! (`pg_get_constraintdef`) as `NOT VALID` before committing.  Three
//! quarters of a plain set-based delete is spent in the deferred per-row
//! checks of those constraints, and re-validating them in every batch would
//! scan whole tables once per batch, which grows with the square of the
//! instance; so a batch costs what its own rows cost, and after the last
//! batch each constraint is validated once (`VALIDATE CONSTRAINT`, which
//! lets LAVA read and write meanwhile).  A `NOT VALID` constraint is
//! enforced for every row written, by LAVA or anyone; it only has not
//! re-checked the rows that were there, and nothing of a batch can dangle:
//! each step for a referencing column removes every row naming a job of
//! the batch, under the batch's lock.  A kill inside a batch leaves the
//! constraints exactly as they were; a kill between batches leaves them
//! `NOT VALID`, and the next run (even one with nothing left to delete)
//! validates them.  Foreign keys of tables LAVA does not have are left in
//! place and checked as usual at commit, as they would be under Django.
//!
//! # Output directories, and interruptions
//!
//! A job's output directory is `job-output/job-<id>` if that exists, else
//! `job-output/YYYY/MM/DD/<id>` by its `submit_time` in UTC (LAVA's
//! `TestJob.output_dir`).  Both are removed when present (when both exist,
//! the dated one is an orphan twin of the same job), only **after** the
//! job's row is gone, with the [`fdsafe::remove`] remover; date directories
//! left empty are removed too.
//!
//! The order of a batch makes every interruption recoverable:
//!
//! 1. the batch's ids and submit dates are written to
//!    `<state dir>/jobs-rm.pending` (a temporary file, `fsync`ed, renamed,
//!    directory `fsync`ed) **before** the transaction commits;
//! 2. the transaction commits;
//! 3. the directories are removed;
//! 4. the pending file is deleted.
//!
//! A run that finds a pending file first asks the database which of its
//! jobs still exist.  Those whose rows are gone were committed, and their
//! directories are removed now (again: removing what is already gone is a
//! no-op); those still there were not, and are simply selected again.  So a
//! kill before step 2 removes nothing, a kill after it leaves directories
//! the next run removes, and no run ever removes the directory of a job
//! whose row still exists.  The pending file names its database and media
//! root; a run for another instance refuses to touch it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use serde::Serialize;

use crate::config::Paths;
use crate::detect;
use crate::schema::{self, quote_ident};
use crate::state::StateDir;
use crate::{fault, Error, Result};
use fdsafe::remove::{display_path, Failure, Remover, Tally};

/// The pending-batch file in the state directory.
pub const PENDING_FILE: &str = "jobs-rm.pending";
const PENDING_HEADER: &str = "lava-v1 jobs-rm pending 1";

/// `TestJob.status` values of jobs that are not finished: submitted,
/// running, canceling.
pub const UNFINISHED: [i32; 3] = [0, 1, 5];

/// The foreign keys of LAVA's schema that point at
/// `lava_scheduler_app_testjob`: `(table, column)`.
pub const TESTJOB_REFERENCES: [(&str, &str); 10] = [
    ("lava_results_app_testdata", "testjob_id"),
    ("lava_results_app_testsuite", "job_id"),
    ("lava_scheduler_app_device", "current_job_id"),
    ("lava_scheduler_app_device", "last_health_report_job_id"),
    ("lava_scheduler_app_devicestatetransition", "job_id"),
    ("lava_scheduler_app_notification", "test_job_id"),
    ("lava_scheduler_app_testjob_failure_tags", "testjob_id"),
    ("lava_scheduler_app_testjob_tags", "testjob_id"),
    ("lava_scheduler_app_testjob_viewing_groups", "testjob_id"),
    ("lava_scheduler_app_testjobuser", "test_job_id"),
];

/// What one step does to its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Rows are deleted.
    Delete,
    /// This column is set to NULL.
    SetNull(&'static str),
}

/// The batch's jobs: `(id, day)`, filled by the batch's selection.
const BATCH: &str = "pg_temp.lava_v1_batch";

/// Work tables of a batch, beside [`BATCH`]: the rows its jobs own
/// further down, each filled in one statement from the tables as they are
/// before anything is deleted, then analyzed, so that every later
/// statement is planned knowing how many rows it joins (for V1 jobs,
/// usually none).  In order.
const WORK_TABLES: [WorkTable; 3] = [
    WorkTable {
        name: "pg_temp.lava_v1_data",
        fill: "INSERT INTO pg_temp.lava_v1_data (id)
         SELECT d.id FROM lava_results_app_testdata d JOIN pg_temp.lava_v1_batch b ON d.testjob_id = b.id
         WHERE d.testjob_id BETWEEN $1 AND $2",
        bounded: true,
    },
    WorkTable {
        name: "pg_temp.lava_v1_suites",
        fill: "INSERT INTO pg_temp.lava_v1_suites (id)
         SELECT s.id FROM lava_results_app_testsuite s JOIN pg_temp.lava_v1_batch b ON s.job_id = b.id
         WHERE s.job_id BETWEEN $1 AND $2",
        bounded: true,
    },
    // A case goes with its suite, and with its test set (whose suite may,
    // in a hand-edited database, not be the case's own).
    WorkTable {
        name: "pg_temp.lava_v1_cases",
        fill: "INSERT INTO pg_temp.lava_v1_cases (id)
         SELECT c.id FROM lava_results_app_testcase c JOIN pg_temp.lava_v1_suites s ON c.suite_id = s.id
         UNION
         SELECT c.id FROM lava_results_app_testcase c
           JOIN lava_results_app_testset t ON c.test_set_id = t.id
           JOIN pg_temp.lava_v1_suites s ON t.suite_id = s.id",
        bounded: false,
    },
];

/// A work table of a batch and the statement that fills it.
struct WorkTable {
    name: &'static str,
    fill: &'static str,
    /// `fill` takes the batch's lowest and highest job id as `$1` and `$2`
    /// (as a step does with [`Step::job_column`]).
    bounded: bool,
}

/// One set-based statement of the cascade: the table (`x`), the action,
/// and which rows: those joining `using` on `on`.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The table.
    pub table: &'static str,
    /// What happens to the rows.
    pub action: Action,
    /// The relations the rows are matched against.
    pub using: &'static str,
    /// The join condition.
    pub on: &'static str,
    /// The column that `on` equates with the batch's job id, when there is
    /// one: a batch's statement also bounds it by the batch's lowest and
    /// highest id, which changes no row matched (every id of the batch is
    /// in that range) but lets the planner read only that range of the
    /// column's index instead of the whole table, so a batch costs what
    /// its own range holds, whatever the size of the table.
    pub job_column: Option<&'static str>,
}

const fn step(table: &'static str, action: Action, using: &'static str, on: &'static str) -> Step {
    Step { table, action, using, on, job_column: None }
}

impl Step {
    /// The step, with `column` (of `x` or of a relation in `using`) bounded
    /// by the batch's lowest and highest job id.
    const fn bounded(self, column: &'static str) -> Step {
        Step { job_column: Some(column), ..self }
    }
}

const B: &str = "pg_temp.lava_v1_batch b";
const DATA: &str = "pg_temp.lava_v1_data d";
const SUITES: &str = "pg_temp.lava_v1_suites s";
const CASES: &str = "pg_temp.lava_v1_cases c";

/// Django's collector for `TestJob.delete()` (LAVA 2017.10/2017.12), as
/// set-based statements, children before parents.  A table may have more
/// than one step (rows reached by two paths); a later one does not see
/// what an earlier one deleted.
pub const STEPS: [Step; 17] = [
    step("lava_scheduler_app_testjob_tags", Action::Delete, B, "x.testjob_id = b.id").bounded("x.testjob_id"),
    step("lava_scheduler_app_testjob_viewing_groups", Action::Delete, B, "x.testjob_id = b.id")
        .bounded("x.testjob_id"),
    step("lava_scheduler_app_testjob_failure_tags", Action::Delete, B, "x.testjob_id = b.id")
        .bounded("x.testjob_id"),
    step("lava_scheduler_app_testjobuser", Action::Delete, B, "x.test_job_id = b.id")
        .bounded("x.test_job_id"),
    step(
        "lava_scheduler_app_notificationrecipient",
        Action::Delete,
        "lava_scheduler_app_notification n, pg_temp.lava_v1_batch b",
        "x.notification_id = n.id AND n.test_job_id = b.id",
    )
    .bounded("n.test_job_id"),
    step("lava_scheduler_app_notification", Action::Delete, B, "x.test_job_id = b.id")
        .bounded("x.test_job_id"),
    step("lava_scheduler_app_devicestatetransition", Action::SetNull("job_id"), B, "x.job_id = b.id")
        .bounded("x.job_id"),
    step("lava_scheduler_app_device", Action::SetNull("current_job_id"), B, "x.current_job_id = b.id")
        .bounded("x.current_job_id"),
    step(
        "lava_scheduler_app_device",
        Action::SetNull("last_health_report_job_id"),
        B,
        "x.last_health_report_job_id = b.id",
    )
    .bounded("x.last_health_report_job_id"),
    // TestData.attributes is a GenericRelation: Django deletes them.
    step(
        "lava_results_app_namedtestattribute",
        Action::Delete,
        DATA,
        "x.object_id = d.id AND x.content_type_id = (SELECT ct.id FROM django_content_type ct
                                   WHERE ct.app_label = 'lava_results_app' AND ct.model = 'testdata')",
    ),
    step("lava_results_app_actiondata", Action::Delete, DATA, "x.testdata_id = d.id"),
    step("lava_results_app_actiondata", Action::Delete, CASES, "x.testcase_id = c.id"),
    step("lava_results_app_testcase", Action::Delete, CASES, "x.id = c.id"),
    step("lava_results_app_testset", Action::Delete, SUITES, "x.suite_id = s.id"),
    // The two tables pointing at the job go by that reference itself (the
    // same rows as the work tables hold, under the batch's lock).
    step("lava_results_app_testsuite", Action::Delete, B, "x.job_id = b.id").bounded("x.job_id"),
    step("lava_results_app_testdata", Action::Delete, B, "x.testjob_id = b.id").bounded("x.testjob_id"),
    step(schema::TESTJOB, Action::Delete, B, "x.id = b.id").bounded("x.id"),
];

impl Step {
    /// The key in the report: the table, or `table.column` for SET NULL.
    pub fn key(&self) -> String {
        match self.action {
            Action::Delete => self.table.to_owned(),
            Action::SetNull(c) => format!("{}.{c}", self.table),
        }
    }

    /// The statement for one batch; `$1` and `$2` are its lowest and
    /// highest job id.
    fn statement(&self) -> String {
        let bound = match self.job_column {
            Some(column) => format!(" AND {column} BETWEEN $1 AND $2"),
            None => String::new(),
        };
        match self.action {
            Action::Delete => {
                format!("DELETE FROM {} x USING {} WHERE {}{bound}", self.table, self.using, self.on)
            }
            Action::SetNull(c) => {
                format!("UPDATE {} x SET {c} = NULL FROM {} WHERE {}{bound}", self.table, self.using, self.on)
            }
        }
    }

    fn matches(&self) -> String {
        format!("EXISTS (SELECT 1 FROM {} WHERE {})", self.using, self.on)
    }

    /// The rows [`Step::statement`] would change, counted without changing
    /// anything: those it matches and no earlier step of the same table
    /// and action did.
    fn count(&self, earlier: &[Step]) -> String {
        let mut sql = format!("(SELECT count(*) FROM {} x WHERE {}", self.table, self.matches());
        for e in earlier.iter().filter(|e| e.table == self.table && e.action == self.action) {
            sql.push_str(&format!(" AND NOT {}", e.matches()));
        }
        sql.push(')');
        sql
    }
}

/// Creates the batch's work tables (emptied at each commit), once per
/// session; before a read-only transaction, which may fill them.
fn create_work_tables(client: &mut postgres::Client) -> Result<()> {
    let mut sql = String::from(
        "CREATE TEMP TABLE IF NOT EXISTS lava_v1_batch (id integer NOT NULL, day integer NOT NULL)
         ON COMMIT DELETE ROWS;",
    );
    for table in WORK_TABLES {
        let name = table.name.trim_start_matches("pg_temp.");
        sql.push_str(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {name} (id integer NOT NULL) ON COMMIT DELETE ROWS;"
        ));
    }
    client.batch_execute(&sql).map_err(db_err("creating the batch's work tables", ""))
}

/// Fills the work tables from the batch table (already filled, its job ids
/// all in `ids`), analyzing each.
fn fill_work_tables(tx: &mut postgres::Transaction<'_>, ids: (i32, i32), timeout: &str) -> Result<()> {
    tx.batch_execute(&format!("ANALYZE {BATCH}")).map_err(db_err("analyzing the batch", timeout))?;
    for WorkTable { name, fill, bounded } in WORK_TABLES {
        let bounds: [&(dyn postgres::types::ToSql + Sync); 2] = [&ids.0, &ids.1];
        let params = if bounded { &bounds[..] } else { &[] };
        tx.execute(fill, params).map_err(db_err(&format!("filling {name}"), timeout))?;
        tx.batch_execute(&format!("ANALYZE {name}"))
            .map_err(db_err(&format!("analyzing {name}"), timeout))?;
    }
    Ok(())
}

/// How `jobs rm` behaves.
#[derive(Debug, Clone)]
pub struct JobsRmOptions {
    /// Only jobs that ended more than this long ago (`--older-than`).
    pub older_than: Option<Duration>,
    /// Count and list, change nothing.
    pub dry_run: bool,
    /// Jobs per transaction.
    pub batch_size: u32,
    /// How long to wait for each lock before giving up.
    pub lock_timeout: Duration,
}

impl Default for JobsRmOptions {
    fn default() -> Self {
        JobsRmOptions {
            older_than: None,
            dry_run: false,
            batch_size: DEFAULT_BATCH_SIZE,
            lock_timeout: Duration::from_secs(10),
        }
    }
}

/// Jobs per batch unless told otherwise: each batch re-validates the ten
/// foreign keys (a scan of each table), so batches are large; 100,000 jobs
/// take a few seconds and a few MiB.
pub const DEFAULT_BATCH_SIZE: u32 = 100_000;

/// Parses `--older-than`: `<N>h` or `<N>d`.
pub fn parse_age(value: &str) -> Result<Duration> {
    let bad = || Error::BadAge { value: value.to_owned() };
    let (n, unit) = value.split_at(value.len().saturating_sub(1));
    let n: u64 = if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
        n.parse().map_err(|_| bad())?
    } else {
        return Err(bad());
    };
    let secs = match unit {
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    Ok(Duration::from_secs(secs))
}

/// What happened to the jobs' output directories.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutputDirs {
    /// Output directories (or links, or files at that path) found.
    pub found: u64,
    /// Of those, removed completely (or, in a dry run, removable).
    pub removed: u64,
    /// Date directories removed because they were left empty.
    pub empty_date_dirs_removed: u64,
    /// What went.
    pub freed: Tally,
}

/// One job's output directory in a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedDir {
    /// The job.
    pub job: i32,
    /// The path.
    pub path: String,
    /// What it holds.
    pub tally: Tally,
}

/// Progress, for the binary to show.
#[derive(Debug)]
pub enum Progress<'a> {
    /// Jobs selected at the start.
    Started {
        /// How many.
        total: u64,
    },
    /// Directories of an interrupted run's last batch are being removed.
    Recovering {
        /// How many jobs of it were committed.
        jobs: u64,
    },
    /// A batch committed and its directories are gone.
    Batch {
        /// Jobs removed so far.
        done: u64,
        /// Jobs selected at the start.
        total: u64,
    },
    /// A dry run found this directory.
    Planned(&'a PlannedDir),
}

/// The final report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobsRmReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Which database, without the password.
    pub database: String,
    /// The media root.
    pub media_root: String,
    /// `--older-than`, in seconds.
    pub older_than_secs: Option<u64>,
    /// V1 jobs selected (in a dry run: that would be removed).
    pub jobs_selected: u64,
    /// V1 jobs removed.
    pub jobs_removed: u64,
    /// Of the selected jobs, those left submitted, running or canceling
    /// (selected only past the drop, when no V1 dispatcher can finish them).
    pub stuck_jobs: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Rows deleted, per table (in a dry run: that would be).
    pub rows_deleted: BTreeMap<String, u64>,
    /// Rows whose column was set to NULL, per `table.column`.
    pub rows_set_null: BTreeMap<String, u64>,
    /// Output directories.
    pub output_dirs: OutputDirs,
    /// Jobs of an interrupted run whose directories this run removed.
    pub recovered_jobs: u64,
    /// What could not be removed, and why.
    pub left: Vec<Failure>,
    /// Failures beyond those listed.
    pub left_unlisted: u64,
    /// V1 jobs still in the database afterwards (not selected).
    pub v1_jobs_remaining: u64,
    /// Wall time.
    pub elapsed_ms: u128,
    /// Wall time per phase, in microseconds: where the time goes
    /// (`lava-v1 jobs rm --verbose` prints it).
    pub phases_us: BTreeMap<&'static str, u64>,
    /// The directories (dry run, when asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<PlannedDir>,
}

impl JobsRmReport {
    /// Adds the time since `since` to the phase `name`.
    fn timed(&mut self, name: &'static str, since: Instant) {
        *self.phases_us.entry(name).or_default() += since.elapsed().as_micros() as u64;
    }

    /// Did everything that was selected go?
    pub fn complete(&self) -> bool {
        self.left.is_empty() && self.left_unlisted == 0
    }
}

fn db_err(doing: &str, timeout: &str) -> impl Fn(postgres::Error) -> Error {
    let doing = doing.to_owned();
    let timeout = timeout.to_owned();
    move |e| {
        if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
            let detail = e
                .as_db_error()
                .map(|d| {
                    format!("{}{}", d.message(), d.detail().map(|x| format!(" ({x})")).unwrap_or_default())
                })
                .unwrap_or_else(|| e.to_string());
            return Error::JobsReferenced { detail };
        }
        Error::db(doing.clone(), e, &timeout)
    }
}

/// The selection: V1, finished unless `with_unfinished` (past the drop),
/// and old enough.
fn filter(older_than: Option<Duration>, now_epoch: f64, with_unfinished: bool) -> String {
    let mut f = "NOT is_pipeline".to_owned();
    if !with_unfinished {
        f.push_str(&format!(
            " AND status NOT IN ({})",
            UNFINISHED.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(age) = older_than {
        f.push_str(&format!(" AND end_time < to_timestamp({:.6})", now_epoch - age.as_secs_f64()));
    }
    f
}

/// A job to remove: its id and its UTC submit date as `YYYYMMDD` (0 when
/// unknown).  Compact, so a batch of 100,000 takes under a MiB.
type Job = (i32, u32);

/// The SQL for a job's UTC submit date as a day number (days since
/// 1970-01-01; [`NO_DAY`] when unknown), which costs the server almost
/// nothing, unlike formatting it; [`yyyymmdd`] turns it into [`Job`]'s
/// form.
const DAY_SQL: &str = "coalesce(CASE WHEN isfinite(submit_time)
     THEN (submit_time AT TIME ZONE 'UTC')::date - DATE '1970-01-01' END, -2147483648)";
/// [`DAY_SQL`] of a job without a (finite) submit time.
const NO_DAY: i32 = i32::MIN;

/// A UTC day number (days since 1970-01-01) as `YYYYMMDD`, the proleptic
/// Gregorian date `to_char` would give; 0 for [`NO_DAY`] or a year
/// outside 1..=9999.
fn yyyymmdd(days: i32) -> u32 {
    if days == NO_DAY {
        return 0;
    }
    let (year, month, day) = crate::state::civil_from_days(i64::from(days));
    if !(1..=9999).contains(&year) {
        return 0;
    }
    (year * 10_000 + month * 100 + day) as u32
}

/// `YYYYMMDD` as `YYYY/MM/DD`; empty for 0.
fn day_path(day: u32) -> String {
    if day == 0 {
        return String::new();
    }
    format!("{:04}/{:02}/{:02}", day / 10_000, day / 100 % 100, day % 100)
}

/// Relative paths of a job's candidate output directories (`day` is
/// `YYYYMMDD`, 0 when unknown).
pub fn output_dirs(id: i32, day: u32) -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from(format!("job-output/job-{id}"))];
    if day != 0 {
        v.push(PathBuf::from(format!("job-output/{}/{id}", day_path(day))));
    }
    v
}

/// Connects with `paths`' settings and removes (or, in a dry run,
/// counts) the V1 jobs.  The caller holds the state directory's lock.
pub fn run(
    paths: &Paths,
    state: &StateDir,
    options: &JobsRmOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<JobsRmReport> {
    let started = Instant::now();
    let db = paths.database()?;
    let media_root = paths.media_root()?;
    let mut client = crate::db::connect(&db)?;
    let target = db.describe();
    let timeout = format!("{}ms", options.lock_timeout.as_millis());

    let inspected = Instant::now();
    let found = detect::inspect(&mut client, &target, false)?;
    if !found.missing_prerequisites.is_empty() && found.state != detect::V1State::Removed {
        let names: Vec<String> =
            found.missing_prerequisites.iter().map(|m| format!("{} {}", m.app, m.name)).collect();
        return Err(Error::TooOld { found: format!("not recorded: {}", names.join(", ")) });
    }
    // One scan counts the V1 jobs and the unfinished ones; they are listed
    // only when there are some.
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE status = ANY($1)) FROM {} WHERE NOT is_pipeline",
                schema::TESTJOB
            ),
            &[&UNFINISHED.to_vec()],
        )
        .map_err(db_err("counting the V1 jobs", &timeout))?;
    let (v1_total, unfinished): (i64, i64) = (row.get(0), row.get(1));
    // Before the drop a V1 dispatcher may still be running them; past it
    // nothing ever will, and they go like the rest.
    let past_the_drop = found.state == detect::V1State::Removed;
    if unfinished > 0 && !past_the_drop {
        refuse_unfinished(&mut client)?;
    }

    let now: f64 = client
        .query_one("SELECT extract(epoch FROM now())::float8", &[])
        .map_err(db_err("reading the time", &timeout))?
        .get(0);
    let filter = filter(options.older_than, now, past_the_drop);
    let mut report = JobsRmReport {
        dry_run: options.dry_run,
        database: target.clone(),
        media_root: display_path(&media_root),
        older_than_secs: options.older_than.map(|d| d.as_secs()),
        ..Default::default()
    };
    report.timed("inspect and count", inspected);
    if unfinished > 0 {
        report.stuck_jobs = client
            .query_one(
                &format!("SELECT count(*) FROM {} WHERE {filter} AND status = ANY($1)", schema::TESTJOB),
                &[&UNFINISHED.to_vec()],
            )
            .map_err(db_err("counting the stuck V1 jobs", &timeout))?
            .get::<_, i64>(0) as u64;
    }
    let mut remover = crate::fault::remover(&media_root, options.dry_run)?;

    if options.dry_run {
        plan(&mut client, &filter, &mut remover, &mut report, progress)?;
    } else {
        let pending = Pending {
            path: state.path().join(PENDING_FILE),
            database: target,
            media_root: report.media_root.clone(),
        };
        let phase = Instant::now();
        let leftovers = recover(&mut client, &pending, &mut remover, &mut report, progress, &timeout)?;
        report.timed("recover an interrupted run", phase);
        // Without --older-than every V1 job is selected (before the drop,
        // none is unfinished).
        let total = match options.older_than {
            None => v1_total,
            Some(_) => client
                .query_one(&format!("SELECT count(*) FROM {} WHERE {filter}", schema::TESTJOB), &[])
                .map_err(db_err("counting the V1 jobs", &timeout))?
                .get(0),
        };
        let mut batches = Batches {
            client: &mut client,
            state,
            pending: &pending,
            batch_size: options.batch_size,
            remover: &mut remover,
            report: &mut report,
            progress,
            timeout: &timeout,
        };
        batches.run(leftovers, &filter, total as u64)?;
        validate_fks(&mut client, &timeout, &mut report)?;
    }
    let (left, more) = remover.take_failures();
    report.left = left;
    report.left_unlisted = more;
    // V1 jobs cannot be submitted any more: what is left is what was
    // there minus what went.
    report.v1_jobs_remaining = (v1_total as u64).saturating_sub(report.jobs_removed);
    report.elapsed_ms = started.elapsed().as_millis();
    Ok(report)
}

fn refuse_unfinished(client: &mut postgres::Client) -> Result<()> {
    let rows = client
        .query(
            "SELECT id, status, coalesce(actual_device_id, requested_device_id, '-')::text,
                    to_char(submit_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
             FROM lava_scheduler_app_testjob
             WHERE NOT is_pipeline AND status = ANY($1) ORDER BY id",
            &[&UNFINISHED.to_vec()],
        )
        .map_err(db_err("looking for unfinished V1 jobs", ""))?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> = rows
        .iter()
        .take(50)
        .map(|r| {
            format!(
                "  job {} ({}, device {}, submitted {} UTC)",
                r.get::<_, i32>(0),
                schema::job_status_name(r.get(1)),
                r.get::<_, String>(2),
                r.get::<_, Option<String>>(3).unwrap_or_default()
            )
        })
        .collect();
    if rows.len() > 50 {
        lines.push(format!("  … and {} more", rows.len() - 50));
    }
    Err(Error::JobsInProgress { count: rows.len(), jobs: lines.join("\n") })
}

/// The dry run: counts from one snapshot, and the directories measured.
fn plan(
    client: &mut postgres::Client,
    filter: &str,
    remover: &mut Remover,
    report: &mut JobsRmReport,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<()> {
    create_work_tables(client)?;
    let mut tx = crate::db::snapshot(client)?;
    tx.batch_execute(&format!(
        "INSERT INTO {BATCH} (id, day) SELECT id, 0 FROM {} WHERE {filter}",
        schema::TESTJOB
    ))
    .map_err(db_err("selecting the V1 jobs", ""))?;
    fill_work_tables(&mut tx, (i32::MIN, i32::MAX), "")?;
    let counts: Vec<String> = STEPS.iter().enumerate().map(|(i, s)| s.count(&STEPS[..i])).collect();
    let sql = format!("SELECT (SELECT count(*) FROM {BATCH}), {}", counts.join(", "));
    let row = tx.query_one(&sql, &[]).map_err(db_err("counting what would be removed", ""))?;
    report.jobs_selected = row.get::<_, i64>(0) as u64;
    progress(Progress::Started { total: report.jobs_selected });
    for (i, step) in STEPS.iter().enumerate() {
        let n = row.get::<_, i64>(i + 1) as u64;
        add(report, step, n);
    }
    let mut last = 0i32;
    loop {
        // Pages of ids, so memory stays flat however many jobs there are.
        let rows = tx
            .query(
                &format!(
                    "SELECT id, {DAY_SQL}
                     FROM {} WHERE {filter} AND id > $1 ORDER BY id LIMIT 10000",
                    schema::TESTJOB
                ),
                &[&last],
            )
            .map_err(db_err("listing the V1 jobs", ""))?;
        let Some(r) = rows.last() else { break };
        last = r.get(0);
        for r in &rows {
            let id: i32 = r.get(0);
            for rel in output_dirs(id, yyyymmdd(r.get(1))) {
                let m = remover.remove(&rel);
                if m.existed {
                    report.output_dirs.found += 1;
                    report.output_dirs.removed += u64::from(m.complete);
                    report.output_dirs.freed += m.tally;
                    let planned = PlannedDir {
                        job: id,
                        path: display_path(&remover.root().join(&rel)),
                        tally: m.tally,
                    };
                    progress(Progress::Planned(&planned));
                }
            }
        }
    }
    tx.commit().map_err(db_err("finishing the read-only transaction", ""))?;
    Ok(())
}

fn add(report: &mut JobsRmReport, step: &Step, n: u64) {
    let map = match step.action {
        Action::Delete => &mut report.rows_deleted,
        Action::SetNull(_) => &mut report.rows_set_null,
    };
    *map.entry(step.key()).or_default() += n;
}

/// The pending-batch file.
struct Pending {
    path: PathBuf,
    database: String,
    media_root: String,
}

impl Pending {
    fn state_err(&self) -> impl Fn(std::io::Error) -> Error + '_ {
        move |source| Error::State { path: self.path.clone(), source }
    }

    /// Writes the batch durably (before its transaction commits).
    fn write(&self, jobs: &[Job]) -> Result<()> {
        let mut text =
            format!("{PENDING_HEADER}\ndatabase {}\nmedia-root {}\n", self.database, self.media_root);
        for (id, day) in jobs {
            text.push_str(&format!("{id} {}\n", day_path(*day)));
        }
        crate::state::write_atomically(&self.path, text.as_bytes())?;
        Ok(())
    }

    /// Reads what an interrupted run left, if anything.
    fn read(&self) -> Result<Option<Vec<Job>>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err((self.state_err())(e)),
        };
        let foreign = |what: String| Error::ForeignPending { what, path: self.path.clone() };
        let mut lines = text.lines();
        if lines.next() != Some(PENDING_HEADER) {
            return Err(foreign("the file is not one this version wrote".into()));
        }
        let database = lines.next().and_then(|l| l.strip_prefix("database ")).unwrap_or_default();
        if database != self.database {
            return Err(foreign(format!("it was written for the {database}, not the {}", self.database)));
        }
        let media = lines.next().and_then(|l| l.strip_prefix("media-root ")).unwrap_or_default();
        if media != self.media_root {
            return Err(foreign(format!(
                "it was written for the media root {media}, not {}",
                self.media_root
            )));
        }
        let mut jobs = Vec::new();
        for line in lines {
            let (id, day) = line.split_once(' ').unwrap_or((line, ""));
            let id: i32 = id.parse().map_err(|_| foreign(format!("unreadable line `{line}`")))?;
            if !(day.is_empty() || is_day(day)) {
                return Err(foreign(format!("unreadable line `{line}`")));
            }
            let day: u32 = if day.is_empty() { 0 } else { day.replace('/', "").parse().unwrap_or(0) };
            jobs.push((id, day));
        }
        Ok(Some(jobs))
    }

    /// Records only `jobs` (committed, directories not all gone), or
    /// removes the file when there are none.
    fn keep_only(&self, jobs: &[Job]) -> Result<()> {
        if jobs.is_empty() {
            self.clear()
        } else {
            self.write(jobs)
        }
    }

    fn clear(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err((self.state_err())(e)),
        }
    }
}

/// `YYYY/MM/DD`.
fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'/'
        && b[7] == b'/'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Finishes the last batch of an interrupted run, and the directories an
/// earlier run could not all remove; returns the committed jobs whose
/// directories are still not all gone (they stay recorded).
fn recover(
    client: &mut postgres::Client,
    pending: &Pending,
    remover: &mut Remover,
    report: &mut JobsRmReport,
    progress: &mut dyn FnMut(Progress<'_>),
    timeout: &str,
) -> Result<Vec<Job>> {
    let Some(jobs) = pending.read()? else { return Ok(Vec::new()) };
    let ids: Vec<i32> = jobs.iter().map(|(id, _)| *id).collect();
    let still: BTreeSet<i32> = client
        .query(&format!("SELECT id FROM {} WHERE id = ANY($1)", schema::TESTJOB), &[&ids])
        .map_err(db_err("checking the interrupted run's jobs", timeout))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let committed: Vec<Job> = jobs.into_iter().filter(|(id, _)| !still.contains(id)).collect();
    log::info!(
        "an interrupted run left a batch of {} jobs: {} were committed (their directories go now), {} were not",
        ids.len(),
        committed.len(),
        still.len()
    );
    progress(Progress::Recovering { jobs: committed.len() as u64 });
    let left = remove_dirs(remover, &committed, report);
    report.recovered_jobs = committed.len() as u64;
    pending.keep_only(&left)?;
    Ok(left)
}

/// Removes the output directories of jobs whose rows are gone, then the
/// date directories they leave empty; returns the jobs some of whose
/// output could not be removed (reported as failures).
fn remove_dirs(remover: &mut Remover, jobs: &[Job], report: &mut JobsRmReport) -> Vec<Job> {
    // First find what exists, then remove it grouped by parent directory
    // and in inode order within each (as GNU rm orders big directories):
    // on ext4 that makes the inode-table writes nearly sequential, which
    // matters in a `job-output/` holding tens of thousands of `job-<id>`.
    // 16 bytes a directory.
    let mut targets: Vec<(u32, u64, i32)> = Vec::new();
    // Below a `job-output` that is not there (the output lives elsewhere,
    // or was removed already), nothing is looked up, job by job.
    if remover.probe(Path::new("job-output")).is_none() {
        return Vec::new();
    }
    let mut days = BTreeSet::new();
    for (id, day) in jobs {
        if let Some(ino) = remover.probe(&PathBuf::from(format!("job-output/job-{id}"))) {
            targets.push((0, ino, *id));
        }
        if *day != 0 {
            if let Some(ino) = remover.probe(&PathBuf::from(format!("job-output/{}/{id}", day_path(*day)))) {
                targets.push((*day, ino, *id));
            }
            days.insert(*day);
        }
    }
    targets.sort_unstable();
    let mut left: Vec<Job> = Vec::new();
    for (i, (day, _, id)) in targets.iter().enumerate() {
        if i == targets.len() / 2 {
            fault::point("jobs-mid-dirs");
        }
        let rel = if *day == 0 {
            PathBuf::from(format!("job-output/job-{id}"))
        } else {
            PathBuf::from(format!("job-output/{}/{id}", day_path(*day)))
        };
        let r = remover.remove(&rel);
        if r.existed {
            report.output_dirs.found += 1;
            report.output_dirs.removed += u64::from(r.complete);
            report.output_dirs.freed += r.tally;
        }
        if !r.complete {
            let job = jobs.iter().find(|j| j.0 == *id).copied().expect("a job of this batch");
            if !left.contains(&job) {
                left.push(job);
            }
        }
    }
    // Cached descriptors may name directories about to go.
    remover.forget_parents();
    for day in days {
        let mut rel = PathBuf::from("job-output").join(day_path(day));
        while rel != Path::new("job-output") {
            if !remover.rmdir_if_empty(&rel) {
                break;
            }
            report.output_dirs.empty_date_dirs_removed += 1;
            rel.pop();
        }
    }
    remover.forget_parents();
    left
}

/// A foreign key into `lava_scheduler_app_testjob` that `jobs rm` drops
/// and re-creates.
struct TestjobFk {
    table: String,
    name: String,
    /// `pg_get_constraintdef`, without the `NOT VALID` it has while the
    /// constraint is not validated.
    definition: String,
    validated: bool,
}

/// The foreign keys into `lava_scheduler_app_testjob` of LAVA's schema
/// (by table and column, whatever they are named).
fn testjob_fks(client: &mut impl postgres::GenericClient, timeout: &str) -> Result<Vec<TestjobFk>> {
    let rows = client
        .query(
            "SELECT c.relname::text, a.attname::text, con.conname::text, pg_get_constraintdef(con.oid),
                    con.convalidated
             FROM pg_constraint con
             JOIN pg_class c ON c.oid = con.conrelid
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
             WHERE con.contype = 'f' AND con.confrelid = $1::text::regclass
               AND array_length(con.conkey, 1) = 1
               AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
             ORDER BY 1, 3",
            &[&schema::TESTJOB],
        )
        .map_err(db_err("looking up the foreign keys into lava_scheduler_app_testjob", timeout))?;
    let mut fks = Vec::new();
    for r in &rows {
        let (table, column): (String, String) = (r.get(0), r.get(1));
        if !TESTJOB_REFERENCES.iter().any(|(t, c)| *t == table && *c == column) {
            continue;
        }
        let validated: bool = r.get(4);
        let definition: String = r.get(3);
        let definition = match definition.strip_suffix(" NOT VALID") {
            Some(d) if !validated => d.to_owned(),
            _ => definition,
        };
        fks.push(TestjobFk { table, name: r.get(2), definition, validated });
    }
    Ok(fks)
}

/// Validates the foreign keys into the job table that batches left
/// `NOT VALID` (this run's, or an interrupted run's): one scan of each
/// table, under a lock that lets LAVA read and write meanwhile.
fn validate_fks(client: &mut postgres::Client, timeout: &str, report: &mut JobsRmReport) -> Result<()> {
    let phase = Instant::now();
    for fk in testjob_fks(client, timeout)?.into_iter().filter(|fk| !fk.validated) {
        fault::point("jobs-before-validate");
        let mut tx = client.transaction().map_err(db_err("starting a validation", timeout))?;
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{timeout}'"))
            .map_err(db_err("setting lock_timeout", timeout))?;
        tx.batch_execute(&format!(
            "ALTER TABLE {} VALIDATE CONSTRAINT {}",
            quote_ident(&fk.table),
            quote_ident(&fk.name)
        ))
        .map_err(db_err(&format!("validating constraint {}", fk.name), timeout))?;
        tx.commit().map_err(db_err(&format!("validating constraint {}", fk.name), timeout))?;
    }
    report.timed("validate the foreign keys", phase);
    Ok(())
}

/// The batches of a `jobs rm` run, and what they share.
struct Batches<'a, 'p> {
    client: &'a mut postgres::Client,
    state: &'a StateDir,
    pending: &'a Pending,
    batch_size: u32,
    remover: &'a mut Remover,
    report: &'a mut JobsRmReport,
    progress: &'a mut dyn FnMut(Progress<'p>),
    timeout: &'a str,
}

/// The statements every batch runs, built once.
struct BatchSql {
    /// One set-based statement per table, in order.
    steps: Vec<(Step, String)>,
    /// Locks the job table and every table pointing at it.
    lock: String,
    /// Fills the batch table with the next jobs after `$1`, `$2` of them.
    select: String,
}

impl BatchSql {
    fn new(filter: &str) -> BatchSql {
        let steps = STEPS.iter().map(|s| (*s, s.statement())).collect();
        let mut locked: Vec<&str> = TESTJOB_REFERENCES.iter().map(|(t, _)| *t).collect();
        locked.push(schema::TESTJOB);
        locked.sort_unstable();
        locked.dedup();
        let lock = format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", locked.join(", "));
        let select = format!(
            "INSERT INTO {BATCH} (id, day)
             SELECT id, {DAY_SQL}
             FROM {} WHERE {filter} AND id > $1 ORDER BY id LIMIT $2
             RETURNING id, day",
            schema::TESTJOB
        );
        BatchSql { steps, lock, select }
    }
}

impl Batches<'_, '_> {
    /// Removes the selected jobs, `batch_size` at a time, each batch in
    /// its own transaction, then their directories.
    fn run(&mut self, mut leftovers: Vec<Job>, filter: &str, total: u64) -> Result<()> {
        self.report.jobs_selected = total;
        (self.progress)(Progress::Started { total });
        create_work_tables(self.client)?;
        let sql = BatchSql::new(filter);
        let mut last = 0i32;
        loop {
            let timeout = self.timeout;
            let mut tx = self.client.transaction().map_err(db_err("starting a batch", timeout))?;
            tx.batch_execute(&format!("SET LOCAL lock_timeout = '{timeout}'"))
                .map_err(db_err("setting lock_timeout", timeout))?;
            let phase = Instant::now();
            tx.batch_execute(&sql.lock).map_err(db_err("locking the job tables", timeout))?;
            self.report.timed("lock", phase);
            let phase = Instant::now();
            let jobs = select(&mut tx, &sql.select, last, self.batch_size, timeout)?;
            if jobs.is_empty() {
                self.report.timed("select a batch", phase);
                tx.rollback().map_err(db_err("ending the last batch", timeout))?;
                return Ok(());
            }
            self.report.timed("select a batch", phase);
            let phase = Instant::now();
            let ids = (jobs[0].0, jobs[jobs.len() - 1].0);
            fill_work_tables(&mut tx, ids, timeout)?;
            self.report.timed("fill the work tables", phase);
            last = jobs.last().map_or(last, |j| j.0);
            // Beside this batch, the committed jobs whose directories could
            // not all be removed yet stay recorded, for a rerun to finish.
            let phase = Instant::now();
            if leftovers.is_empty() {
                self.pending.write(&jobs)?;
            } else {
                self.pending.write(&[leftovers.as_slice(), jobs.as_slice()].concat())?;
            }
            self.report.timed("write the pending file", phase);
            fault::point("jobs-after-pending");
            let counts = delete(&mut tx, &sql.steps, ids, timeout, self.report)?;
            fault::point("jobs-before-commit");
            let phase = Instant::now();
            tx.commit().map_err(db_err("committing a batch", timeout))?;
            self.report.timed("commit", phase);
            fault::point("jobs-after-commit");
            leftovers.extend(self.committed(&sql.steps, counts, &jobs, total));
            fault::point("jobs-before-pending-clear");
            let phase = Instant::now();
            self.pending.keep_only(&leftovers)?;
            self.report.timed("write the pending file", phase);
        }
    }

    /// A batch committed: its counts, its journal line, its directories.
    /// Returns the jobs whose directories could not all be removed.
    fn committed(
        &mut self,
        steps: &[(Step, String)],
        counts: Vec<u64>,
        jobs: &[Job],
        total: u64,
    ) -> Vec<Job> {
        for ((step, _), n) in steps.iter().zip(counts) {
            add(self.report, step, n);
        }
        let removed = *self.report.rows_deleted.get(schema::TESTJOB).unwrap_or(&0);
        self.report.jobs_removed = removed;
        self.report.batches += 1;
        let _ = self.state.journal(&format!(
            "jobs rm: batch {} committed: {} jobs (ids {}..={})",
            self.report.batches,
            jobs.len(),
            jobs[0].0,
            jobs[jobs.len() - 1].0
        ));
        let phase = Instant::now();
        let left = remove_dirs(self.remover, jobs, self.report);
        self.report.timed("remove output directories", phase);
        (self.progress)(Progress::Batch { done: removed, total });
        left
    }
}

/// Fills the batch table with the next `limit` selected jobs after `last`
/// and returns them in id order.  Streamed, not collected as rows: memory
/// stays at 8 bytes a job.
fn select(
    tx: &mut postgres::Transaction<'_>,
    sql: &str,
    last: i32,
    limit: u32,
    timeout: &str,
) -> Result<Vec<Job>> {
    use postgres::fallible_iterator::FallibleIterator;
    let mut jobs: Vec<Job> = Vec::new();
    {
        let limit = i64::from(limit);
        let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&last, &limit];
        let mut rows = tx.query_raw(sql, params).map_err(db_err("selecting a batch of V1 jobs", timeout))?;
        while let Some(r) = rows.next().map_err(db_err("selecting a batch of V1 jobs", timeout))? {
            jobs.push((r.get(0), yyyymmdd(r.get(1))));
        }
    }
    jobs.sort_unstable();
    Ok(jobs)
}

/// Deletes the batch's rows with the foreign keys into the job table
/// dropped around the deletes and re-created (same names, same
/// definitions) `NOT VALID`, inside the batch's transaction.  Returns the
/// rows per step.
///
/// Re-created `NOT VALID`, a constraint checks every row written from then
/// on, as before, but does not scan its table again: each batch costs what
/// its own rows cost, not what the whole table does, and the scan happens
/// once, in [`validate_fks`] after the last batch.  Nothing can dangle in
/// between: each step for a referencing column removes every row that
/// names a job of the batch (see the test `every_reference_has_its_step`),
/// under a lock no other session gets past until the batch commits.
fn delete(
    tx: &mut postgres::Transaction<'_>,
    steps: &[(Step, String)],
    ids: (i32, i32),
    timeout: &str,
    report: &mut JobsRmReport,
) -> Result<Vec<u64>> {
    let phase = Instant::now();
    let fks = testjob_fks(tx, timeout)?;
    for fk in &fks {
        tx.batch_execute(&format!(
            "ALTER TABLE {} DROP CONSTRAINT {}",
            quote_ident(&fk.table),
            quote_ident(&fk.name)
        ))
        .map_err(db_err(&format!("dropping constraint {} for the batch", fk.name), timeout))?;
    }
    report.timed("drop the foreign keys", phase);
    fault::point("jobs-after-fk-drop");
    let phase = Instant::now();
    let mut counts = Vec::with_capacity(steps.len());
    let bounds: [&(dyn postgres::types::ToSql + Sync); 2] = [&ids.0, &ids.1];
    for (step, sql) in steps {
        let params = if step.job_column.is_some() { &bounds[..] } else { &[] };
        let n = tx
            .execute(sql.as_str(), params)
            .map_err(db_err(&format!("deleting from {}", step.table), timeout))?;
        counts.push(n);
    }
    report.timed("delete the rows", phase);
    fault::point("jobs-after-delete");
    let phase = Instant::now();
    // Deleting V2-style result rows queues deferred checks of the foreign
    // keys into them; run those now (ALTER TABLE refuses a table with
    // pending trigger events).  A V1 batch normally has none.
    tx.batch_execute("SET CONSTRAINTS ALL IMMEDIATE")
        .map_err(db_err("checking the foreign keys of the deleted rows", timeout))?;
    for fk in &fks {
        tx.batch_execute(&format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID",
            quote_ident(&fk.table),
            quote_ident(&fk.name),
            fk.definition
        ))
        .map_err(db_err(&format!("re-creating constraint {}", fk.name), timeout))?;
    }
    report.timed("re-create the foreign keys", phase);
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(parse_age("0d").unwrap(), Duration::ZERO);
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86_400));
        for bad in ["", "h", "12", "1w", "-1d", "1.5d", "d1", "99999999999999999999d"] {
            assert!(matches!(parse_age(bad), Err(Error::BadAge { .. })), "{bad}");
        }
    }

    #[test]
    fn dirs_and_days() {
        assert_eq!(
            output_dirs(42, 20160304),
            [PathBuf::from("job-output/job-42"), PathBuf::from("job-output/2016/03/04/42")]
        );
        assert_eq!(output_dirs(7, 0), [PathBuf::from("job-output/job-7")]);
        assert_eq!(day_path(20171231), "2017/12/31");
        assert!(is_day("2016/03/04"));
        assert!(!is_day("2016/03/4") && !is_day("../../etc/x") && !is_day("2016-03-04"));
    }

    #[test]
    fn day_numbers_are_dates() {
        assert_eq!(yyyymmdd(0), 19700101);
        assert_eq!(yyyymmdd(-1), 19691231);
        assert_eq!(yyyymmdd(16_864), 20160304);
        assert_eq!(yyyymmdd(17_532), 20180101);
        assert_eq!(yyyymmdd(11_016), 20000229);
        assert_eq!(yyyymmdd(-719_162), 10101);
        assert_eq!(yyyymmdd(-719_163), 0);
        assert_eq!(yyyymmdd(2_932_896), 99991231);
        assert_eq!(yyyymmdd(2_932_897), 0);
        assert_eq!(yyyymmdd(NO_DAY), 0);
        assert_eq!(yyyymmdd(i32::MAX), 0);
    }

    #[test]
    fn every_reference_has_its_step() {
        for (table, column) in TESTJOB_REFERENCES {
            assert!(
                // Every row naming a job of the batch, and nothing else.
                STEPS
                    .iter()
                    .any(|s| s.table == table && s.using == B && s.on == format!("x.{column} = b.id")),
                "{table}.{column}"
            );
        }
        // A step joining the batch bounds the very column it equates with
        // the batch's ids; one that does not, bounds nothing.
        for s in STEPS {
            match s.job_column {
                Some(c) => assert!(s.on.contains(&format!("{c} = b.id")), "{}: {c}", s.table),
                None => assert!(!s.using.contains("lava_v1_batch"), "{}", s.table),
            }
            assert_eq!(s.statement().contains("$1"), s.job_column.is_some(), "{}", s.table);
        }
        // So does a work table's fill: bounded exactly when it joins the batch.
        for w in WORK_TABLES {
            assert_eq!(w.fill.contains("$1"), w.bounded, "{}", w.name);
            assert_eq!(w.fill.contains("lava_v1_batch"), w.bounded, "{}", w.name);
        }
        assert_eq!(STEPS.last().unwrap().table, schema::TESTJOB);
    }
}
