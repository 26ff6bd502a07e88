//! Crash anywhere: for each destructive operation, run it on a seeded
//! instance, SIGKILL it at a pseudo-random moment, check the invariants,
//! then rerun it and check that the rerun completes.
//!
//! Invariants after every kill:
//! * the database is exactly before or exactly after each committed step
//!   (the drop: before or after as a whole; `jobs rm`: each V1 job is
//!   either entirely there or entirely gone);
//! * everything that is not V1 data is unchanged (V2 rows and schema);
//! * no file outside what the operation removes is touched (V2 job output,
//!   and for `jobs rm` the output of every V1 job whose row still exists);
//! * nothing outside the media root is touched, though the media the
//!   removers and the backup walk is hostile: links out of the root at
//!   every level, names with newlines and bytes that are not UTF-8,
//!   entries without permissions, 10,000 nested directories, and a thread
//!   swapping a directory for a link to the outside and back all the time
//!   the operation runs;
//! * a plain rerun completes.
//!
//! Prints a table: operation, kills, invariant violations, median rerun
//! time.  Exits non-zero on any violation.
//!
//! Usage: lava-v1-chaos [--kills N] [--seed S] [--scale N] [--only OP]
//!   N kills per operation (default 10); OP one of drop, postinst, jobs,
//!   files, backup.

#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lava_v1_core::fingerprint::{self, Fingerprint};
use lava_v1_testkit::{hostile, Cluster, Instance, Seed};

/// A small deterministic generator (the run is reproducible by seed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Drop,
    Postinst,
    JobsRm,
    FilesRm,
    Backup,
}

impl Op {
    fn key(self) -> &'static str {
        match self {
            Op::Drop => "drop",
            Op::Postinst => "postinst",
            Op::JobsRm => "jobs",
            Op::FilesRm => "files",
            Op::Backup => "backup",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Drop => "lava-v1 drop",
            Op::Postinst => "postinst configure (drop)",
            Op::JobsRm => "lava-v1 jobs rm --v1",
            Op::FilesRm => "lava-v1 files rm",
            Op::Backup => "lava-v1 backup",
        }
    }
}

fn bin(name: &str) -> PathBuf {
    std::env::current_exe().expect("own path").with_file_name(name)
}

/// Everything outside V1 that no operation may change: the tables no
/// V1 removal touches, V2 job rows and the schema outside V1.
fn v2_digest(inst: &Instance<'_>) -> (BTreeMap<String, fingerprint::TableFingerprint>, String, String) {
    let mut c = inst.admin();
    let fp: Fingerprint = fingerprint::v2(&mut c).expect("fingerprint");
    let touched_by_jobs_rm = [
        "lava_scheduler_app_testjob",
        "lava_scheduler_app_testjob_tags",
        "lava_scheduler_app_testjob_viewing_groups",
        "lava_scheduler_app_testjob_failure_tags",
        "lava_scheduler_app_testjobuser",
        "lava_scheduler_app_devicestatetransition",
        "lava_scheduler_app_device",
        "lava_scheduler_app_notification",
        "lava_scheduler_app_notificationrecipient",
        "django_migrations",
    ];
    let tables = fp.tables.into_iter().filter(|(t, _)| !touched_by_jobs_rm.contains(&t.as_str())).collect();
    let v2_jobs: String = c
        .query_one(
            "SELECT coalesce(md5(string_agg(md5(ROW(id, status, submit_time, end_time, definition, submitter_id)::text), '' ORDER BY id)), '')
             FROM lava_scheduler_app_testjob WHERE is_pipeline",
            &[],
        )
        .expect("hash V2 jobs")
        .get(0);
    (tables, v2_jobs, fp.schema)
}

fn drop_rows(inst: &Instance<'_>) -> i64 {
    inst.admin()
        .query_one(
            "SELECT count(*) FROM django_migrations WHERE name IN
             ('0029_remove_testjob__results_bundle', '0023_drop_dashboard_models')",
            &[],
        )
        .expect("count rows")
        .get(0)
}

/// Per V1 job: is it entirely there, or entirely gone?  Returns the jobs
/// that are half there.
fn half_deleted_jobs(inst: &Instance<'_>) -> Vec<i32> {
    // A V1 job is identified by the tag rows that referenced it before;
    // a tag row whose job row is gone (or the reverse, checked through the
    // seed's rule that every 5th job has a tag) is a torn job.
    inst.admin()
        .query(
            "SELECT t.testjob_id FROM lava_scheduler_app_testjob_tags t
             LEFT JOIN lava_scheduler_app_testjob j ON j.id = t.testjob_id WHERE j.id IS NULL
             UNION
             SELECT j.id FROM lava_scheduler_app_testjob j
             WHERE NOT j.is_pipeline AND j.id % 5 = 0
               AND NOT EXISTS (SELECT 1 FROM lava_scheduler_app_testjob_tags t WHERE t.testjob_id = j.id)",
            &[],
        )
        .expect("check torn jobs")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Files that must survive: every V2 job's output, and the output of every
/// V1 job whose row still exists.
fn protected_files(inst: &Instance<'_>, media: &Path) -> Vec<PathBuf> {
    let rows = inst
        .admin()
        .query(
            "SELECT id, is_pipeline, to_char(submit_time AT TIME ZONE 'UTC', 'YYYY/MM/DD'),
                    submit_time < TIMESTAMPTZ '2017-05-01 00:00:00+00' AND id % 3 <> 0
             FROM lava_scheduler_app_testjob",
            &[],
        )
        .expect("read jobs");
    rows.iter()
        .map(|r| {
            let id: i32 = r.get(0);
            let v2: bool = r.get(1);
            let dated: String = r.get(2);
            let legacy: bool = r.get(3);
            let dir = if legacy {
                media.join(format!("job-output/job-{id}"))
            } else {
                media.join(format!("job-output/{dated}/{id}"))
            };
            dir.join(if v2 { "output.yaml" } else { "output.txt" })
        })
        .collect()
}

fn lava_v1(inst: &Instance<'_>, args: &[&str]) -> Command {
    let mut c = inst.lava_v1(&bin("lava-v1"));
    c.args(args).env("RUST_LOG", "error").stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// A DPKG_ROOT for the postinst, pointing at the instance.
fn postinst_root(inst: &Instance<'_>) -> PathBuf {
    let root = inst.dir.path().join("root");
    let etc = root.join("etc/lava-server");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::copy(&inst.paths.instance_conf, etc.join("instance.conf")).unwrap();
    std::fs::write(etc.join("settings.conf"), "{\"MEDIA_ROOT\": \"/media\"}\n").unwrap();
    let state = root.join("var/lib/lava-server/v1-removal");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("decision"),
        "answer=remove\nold_version=2017.10-1\nnew_version=2017.12-1\ntime=2017-12-01T00:00:00Z\nbackup=yes\n",
    )
    .unwrap();
    root
}

fn command_for(op: Op, inst: &Instance<'_>, backups: &Path) -> Command {
    match op {
        Op::Drop => lava_v1(inst, &["drop", "--yes"]),
        Op::JobsRm => lava_v1(inst, &["jobs", "rm", "--v1"]),
        Op::FilesRm => lava_v1(inst, &["files", "rm"]),
        Op::Backup => lava_v1(inst, &["backup", "--backup-dir", backups.to_str().unwrap()]),
        Op::Postinst => {
            let mut c = Command::new(bin("lava-server-postinst"));
            c.args(["configure", "2017.10-1"])
                .env("DPKG_ROOT", postinst_root(inst))
                .env_remove("DEBIAN_HAS_FRONTEND")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            c
        }
    }
}

/// A seeded instance ready for `op`, with hostile media where `op` walks
/// the media; and the directory to swap for a link while it runs.
fn prepare(op: Op, cluster: &Cluster, scale: u32) -> (Instance<'_>, Option<PathBuf>) {
    let inst = Instance::new(cluster, Seed { scale, media: !matches!(op, Op::Drop), django110_names: false });
    inst.enter_maintenance_window();
    if matches!(op, Op::FilesRm) {
        let ok = lava_v1(&inst, &["drop", "--yes"]).status().expect("drop").success();
        assert!(ok, "drop before files rm");
    }
    let swap = hostile_media(op, &inst);
    (inst, swap)
}

/// The directory outside the media root that the hostile links point at.
fn outside(inst: &Instance<'_>) -> PathBuf {
    inst.dir.path().join("outside")
}

/// Makes the media hostile where `op` walks it (see the module comment);
/// returns the directory to swap while it runs.
fn hostile_media(op: Op, inst: &Instance<'_>) -> Option<PathBuf> {
    let media = inst.media_root();
    let outside = outside(inst);
    hostile::precious_dir(&outside);
    // Where the hostile trees go: inside V1 media for files rm and the
    // backup, inside V1 jobs' output directories for jobs rm.
    let homes: Vec<PathBuf> = match op {
        Op::FilesRm | Op::Backup => {
            vec![media.join("bundles"), media.join("attachments"), media.join("testdef")]
        }
        Op::JobsRm => {
            let v1_dirs: Vec<PathBuf> = protected_files(inst, &media)
                .into_iter()
                .filter(|f| f.ends_with("output.txt"))
                .filter_map(|f| f.parent().map(Path::to_path_buf))
                .filter(|d| d.is_dir())
                .collect();
            let n = v1_dirs.len();
            vec![v1_dirs[0].clone(), v1_dirs[n / 2].clone(), v1_dirs[n - 1].clone()]
        }
        Op::Drop | Op::Postinst => return None,
    };
    hostile::hostile_contents(&homes[0].join("hostile"), &outside);
    // 10,000 levels for the removers; the backup's tar stores every path
    // in full (a 10,000-level tree is a 100 MB archive of names), so 1,000
    // there: its 10,000-level case is `files::ten_thousand_levels_…`.
    let depth = if matches!(op, Op::Backup) { 1_000 } else { 10_000 };
    hostile::nested(&homes[1], "deep", depth, "d");
    let swap = homes[2].join("swap");
    std::fs::create_dir_all(swap.join("sub")).expect("swap dir");
    for i in 0..20 {
        std::fs::write(swap.join(format!("sub/f{i}")), b"swapped\n").expect("swap file");
    }
    Some(swap)
}

/// Runs `op` with a thread swapping `swap` for a link to the outside and
/// back until the returned guard is dropped.
struct Swapper {
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Swapper {
    fn start(swap: Option<&Path>, outside: &Path) -> Swapper {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let thread = swap.map(|swap| {
            let (swap, outside, stop) = (swap.to_owned(), outside.to_owned(), stop.clone());
            std::thread::spawn(move || hostile::swap_in_links(&swap, &outside, &stop))
        });
        Swapper { stop, thread }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Checks the invariants after a kill; returns the violations.
fn check(
    op: Op,
    inst: &Instance<'_>,
    before: &(BTreeMap<String, fingerprint::TableFingerprint>, String, String),
    files: &[PathBuf],
    outside_before: &BTreeMap<PathBuf, String>,
) -> Vec<String> {
    let mut v = Vec::new();
    if &v2_digest(inst) != before {
        v.push("data outside V1 changed".to_owned());
    }
    if &hostile::listing(&outside(inst)) != outside_before {
        v.push("a file outside the media root changed".to_owned());
    }
    match op {
        Op::Drop | Op::Postinst => {
            let (tables, rows) = (inst.v1_table_count(), drop_rows(inst));
            if !((tables == 45 && rows == 0) || (tables == 0 && rows == 2)) {
                v.push(format!("the drop is half done: {tables} V1 tables, {rows} migration rows"));
            }
        }
        Op::JobsRm => {
            let torn = half_deleted_jobs(inst);
            if !torn.is_empty() {
                v.push(format!("jobs half deleted: {torn:?}"));
            }
        }
        Op::FilesRm | Op::Backup => {}
    }
    let media = inst.dir.path().join("media");
    let protected = if matches!(op, Op::JobsRm) { protected_files(inst, &media) } else { files.to_vec() };
    for f in protected {
        if !f.exists() {
            v.push(format!("{} removed", f.display()));
            break;
        }
    }
    v
}

fn main() -> ExitCode {
    let mut kills = 10u32;
    let mut seed = 2017u64;
    let mut scale = 1u32;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--kills" => kills = args.next().and_then(|n| n.parse().ok()).expect("--kills N"),
            "--seed" => seed = args.next().and_then(|n| n.parse().ok()).expect("--seed S"),
            "--scale" => scale = args.next().and_then(|n| n.parse().ok()).expect("--scale N"),
            "--only" => only = Some(args.next().expect("--only drop|postinst|jobs|files|backup")),
            other => {
                eprintln!(
                    "usage: lava-v1-chaos [--kills N] [--seed S] [--scale N] [--only OP]  (unknown: {other})"
                );
                return ExitCode::from(2);
            }
        }
    }
    let cluster = Cluster::start();
    let mut rng = Lcg(seed);
    let mut total_violations = 0;
    let (mut passed, mut failed) = (0u32, 0u32);
    println!("{:<28} {:>6} {:>11} {:>16}", "operation", "kills", "violations", "median rerun ms");
    for op in [Op::Drop, Op::Postinst, Op::JobsRm, Op::FilesRm, Op::Backup] {
        if only.as_deref().is_some_and(|o| o != op.key()) {
            continue;
        }
        // How long an uninterrupted run takes: kills land inside it.
        let (probe, swap) = prepare(op, &cluster, scale);
        let backups = probe.dir.path().join("backups");
        let started = Instant::now();
        // (No swapper here: a link it swaps in after the walk went by would
        // rightly make the run report a leftover.)
        drop(swap);
        let ok = command_for(op, &probe, &backups).status().expect("run").success();
        assert!(ok, "{} fails even without a kill", op.name());
        let span = started.elapsed().as_micros() as u64;
        drop(probe);

        let mut violations = 0;
        let mut reruns = Vec::new();
        for k in 0..kills {
            let (inst, swap) = prepare(op, &cluster, scale);
            let backups = inst.dir.path().join("backups");
            let before = v2_digest(&inst);
            let outside_before = hostile::listing(&outside(&inst));
            let media = inst.dir.path().join("media");
            let protected: Vec<PathBuf> = if matches!(op, Op::FilesRm | Op::Backup) {
                protected_files(&inst, &media)
            } else {
                Vec::new()
            };
            let swapper = Swapper::start(swap.as_deref(), &outside(&inst));
            let mut child = command_for(op, &inst, &backups).spawn().expect("spawn");
            let delay = rng.below(span * 12 / 10 + 1);
            std::thread::sleep(Duration::from_micros(delay));
            let _ = child.kill();
            let _ = child.wait();
            drop(swapper);
            inst.wait_for_lava_v1_sessions_to_end();
            let found = check(op, &inst, &before, &protected, &outside_before);
            if !found.is_empty() {
                violations += found.len();
                eprintln!("{} kill {k} after {delay} us: {found:?}", op.name());
            }
            let t = Instant::now();
            let rerun = command_for(op, &inst, &backups).status().expect("rerun");
            reruns.push(t.elapsed());
            if !rerun.success() {
                violations += 1;
                eprintln!("{} kill {k}: the rerun failed ({rerun})", op.name());
            }
            let after = check(op, &inst, &before, &protected, &outside_before);
            if !after.is_empty() {
                violations += after.len();
                eprintln!("{} kill {k}, after the rerun: {after:?}", op.name());
            }
            if found.is_empty() && rerun.success() && after.is_empty() {
                passed += 1;
            } else {
                failed += 1;
            }
        }
        reruns.sort();
        let median = reruns.get(reruns.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        println!("{:<28} {:>6} {:>11} {:>16.0}", op.name(), kills, violations, median);
        total_violations += violations;
    }
    println!("chaos: {passed} passed, {failed} failed");
    if total_violations > 0 {
        eprintln!("lava-v1-chaos: {total_violations} invariant violations");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
