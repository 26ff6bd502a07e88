//! Crash anywhere: for each destructive operation, run it on a seeded
//! instance, SIGKILL it at a pseudo-random moment, check the invariants,
//! then rerun it and check that the rerun completes.
//!
//! Invariants after every kill, each checked exactly:
//! * the database is exactly before or exactly after each committed step:
//!   the drop (alone or in the postinst) leaves every row, sequence and
//!   schema object either as before or as an uninterrupted drop leaves
//!   them; `jobs rm --v1` (run in several batches) leaves the database
//!   exactly as LAVA's rules, applied naively to a copy taken before the
//!   kill, leave it for the jobs of the batches that committed (the
//!   foreign keys into the job table possibly `NOT VALID`, as committed
//!   batches leave them until the run's end), and those are the first
//!   batches in id order; `files rm` and `backup` change
//!   nothing in it at all;
//! * no file outside what the operation removes is touched: the media
//!   outside the V1 directories (`files rm`), every file outside the
//!   removed jobs' output directories and the output of every V1 job whose
//!   row still exists (`jobs rm`), the whole media (`backup`, postinst);
//! * nothing outside the media root is touched, though the media the
//!   removers and the backup walk is hostile: links out of the root at
//!   every level, names with newlines and bytes that are not UTF-8,
//!   entries without permissions, 10,000 nested directories, and a thread
//!   swapping a directory for a link to the outside and back all the time
//!   the operation runs;
//! * a directory with a backup's name is always a whole, verified backup;
//! * a plain rerun succeeds and completes the work: the database is
//!   exactly as after an uninterrupted run, no V1 job or its output is
//!   left, no V1 media directory is left, a verified backup holding every
//!   V1 row exists.
//!
//! Prints a table: operation, kills, invariant violations, median rerun
//! time, and how many runs had already ended when their kill came (kill
//! times reach 20% past an uninterrupted run's length, so a few do).
//! Exits non-zero on any violation.
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

use std::collections::BTreeSet;

use lava_v1_core::backup::{self, BackupOptions, INCOMPLETE};
use lava_v1_core::schema::V1_MEDIA_DIRS;
use lava_v1_testkit::world::{self, World};
use lava_v1_testkit::{cluster, hostile, Cluster, Instance, Seed};

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
    lava_v1_testkit::program(name)
}

/// Every job's output directory, by the seed's layout rule (legacy
/// `job-<id>` or dated): (id, is V2, directory).
fn job_output_dirs(inst: &Instance<'_>, media: &Path) -> Vec<(i32, bool, PathBuf)> {
    let rows = inst
        .admin()
        .query(
            "SELECT id, is_pipeline, to_char(submit_time AT TIME ZONE 'UTC', 'YYYY/MM/DD'),
                    submit_time < TIMESTAMPTZ '2017-05-01 00:00:00+00' AND id % 3 <> 0
             FROM lava_scheduler_app_testjob ORDER BY id",
            &[],
        )
        .expect("read jobs");
    rows.iter()
        .map(|r| {
            let id: i32 = r.get(0);
            let dated: String = r.get(2);
            let dir = if r.get::<_, bool>(3) {
                media.join(format!("job-output/job-{id}"))
            } else {
                media.join(format!("job-output/{dated}/{id}"))
            };
            (id, r.get(1), dir)
        })
        .collect()
}

/// Files that must survive: every V2 job's output, and the output of every
/// V1 job whose row still exists.
fn protected_files(inst: &Instance<'_>, media: &Path) -> Vec<PathBuf> {
    job_output_dirs(inst, media)
        .into_iter()
        .map(|(_, v2, dir)| dir.join(if v2 { "output.yaml" } else { "output.txt" }))
        .collect()
}

fn lava_v1(inst: &Instance<'_>, args: &[&str]) -> Command {
    let mut c = inst.lava_v1(&bin("lava-v1"));
    c.args(args).env("RUST_LOG", "error").stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// The command for `op`; `jobs rm` in batches of `batch` jobs when given
/// (the kill runs, so that kills land between committed batches), else as
/// an admin runs it.
fn command_for(op: Op, inst: &Instance<'_>, backups: &Path, batch: Option<u32>) -> Command {
    match op {
        Op::Drop => lava_v1(inst, &["drop", "--yes"]),
        Op::JobsRm => match batch {
            Some(b) => lava_v1(inst, &["jobs", "rm", "--v1", "--batch-size", &b.to_string()]),
            None => lava_v1(inst, &["jobs", "rm", "--v1"]),
        },
        Op::FilesRm => lava_v1(inst, &["files", "rm"]),
        Op::Backup => lava_v1(inst, &["backup", "--backup-dir", backups.to_str().unwrap()]),
        Op::Postinst => {
            let mut c = Command::new(bin("lava-server-postinst"));
            c.args(["configure", "2017.10-1"])
                .env("DPKG_ROOT", inst.dpkg_root())
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
    // A live instance (devices online, jobs running, stale V1 jobs), as
    // production has; `files rm` and `jobs rm` run where the upstream page
    // has the admin run them: after the upgrade, past the drop.
    if matches!(op, Op::FilesRm | Op::JobsRm) {
        let ok = lava_v1(&inst, &["drop", "--yes"]).status().expect("drop").success();
        assert!(ok, "drop before {op:?}");
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

/// Where the backups of `op` go.
fn backup_dir(op: Op, inst: &Instance<'_>) -> PathBuf {
    match op {
        Op::Postinst => inst.dir.path().join("root/var/backups/lava-server"),
        _ => inst.dir.path().join("backups"),
    }
}

/// What the invariants compare with, read before the kill.
struct Before {
    world: World,
    /// The V1 job ids, ascending.
    v1_jobs: Vec<i32>,
    /// The output directories of the V1 jobs, relative to the media root.
    v1_job_dirs: BTreeSet<PathBuf>,
    /// For `jobs rm`: each V1 job's output directory and its digest.
    v1_job_trees: BTreeMap<i32, (PathBuf, String)>,
    /// For the backup: each V1 table's rows in `COPY` text format, sorted.
    v1_copy: BTreeMap<String, Vec<String>>,
    /// Backups already checked (they never change).
    checked_backups: BTreeSet<PathBuf>,
    /// What `op` must leave alone in the media (see [`media_kept`]).
    media: BTreeMap<PathBuf, String>,
    outside: BTreeMap<PathBuf, String>,
    /// For `jobs rm`: a copy of the database taken before the kill, and
    /// how many of its V1 jobs LAVA's rules have been applied to so far.
    twin: Option<(String, usize)>,
}

fn v1_jobs(inst: &Instance<'_>) -> Vec<i32> {
    inst.admin()
        .query("SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline ORDER BY id", &[])
        .expect("read the V1 jobs")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The part of the media that `op` must leave exactly as it is: all of
/// it for the drop, the postinst and the backup; all but the V1
/// directories for `files rm`; for `jobs rm`, every file and link outside
/// the V1 jobs' output directories (the date directories those leave
/// empty go too).
fn media_kept(op: Op, media: &Path, v1_job_dirs: &BTreeSet<PathBuf>) -> BTreeMap<PathBuf, String> {
    match op {
        Op::Drop | Op::Postinst | Op::Backup => hostile::listing(media),
        Op::FilesRm => hostile::listing_except(media, &V1_MEDIA_DIRS.iter().map(PathBuf::from).collect()),
        Op::JobsRm => {
            // The date directories above removed jobs go when left empty.
            let above: BTreeSet<&Path> = v1_job_dirs.iter().flat_map(|d| d.ancestors().skip(1)).collect();
            hostile::listing_except(media, v1_job_dirs)
                .into_iter()
                .filter(|(path, what)| !(what.starts_with("dir") && above.contains(path.as_path())))
                .collect()
        }
    }
}

impl Before {
    fn read(op: Op, inst: &Instance<'_>) -> Before {
        let media = inst.media_root();
        let v1_jobs = v1_jobs(inst);
        let v1_dirs: Vec<(i32, PathBuf)> = job_output_dirs(inst, &media)
            .into_iter()
            .filter(|(_, v2, d)| !v2 && d.is_dir())
            .map(|(id, _, d)| (id, d))
            .collect();
        let v1_job_dirs: BTreeSet<PathBuf> = v1_dirs
            .iter()
            .map(|(_, d)| d.strip_prefix(&media).expect("below the media").to_owned())
            .collect();
        let v1_job_trees = if matches!(op, Op::JobsRm) {
            v1_dirs.into_iter().map(|(id, d)| (id, (d.clone(), hostile::tree_digest(&d)))).collect()
        } else {
            BTreeMap::new()
        };
        let v1_copy =
            if matches!(op, Op::Backup | Op::Postinst) { v1_copy_rows(inst) } else { BTreeMap::new() };
        let twin = matches!(op, Op::JobsRm).then(|| {
            let name = format!("{}_twin", inst.db_name);
            inst.cluster
                .client("postgres")
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {}", inst.db_name))
                .expect("copy the database before the kill");
            (name, 0)
        });
        Before {
            world: World::read(&mut inst.admin()),
            media: media_kept(op, &media, &v1_job_dirs),
            outside: hostile::listing(&outside(inst)),
            v1_jobs,
            v1_job_dirs,
            v1_job_trees,
            v1_copy,
            checked_backups: BTreeSet::new(),
            twin,
        }
    }

    /// The twin, with LAVA's rules applied to the first `removed` V1 jobs.
    fn twin_world(&mut self, cluster: &Cluster, removed: usize) -> World {
        let (name, applied) = self.twin.as_mut().expect("a twin");
        if removed > *applied {
            let ids: Vec<String> = self.v1_jobs[*applied..removed].iter().map(i32::to_string).collect();
            // A new session each time: the rules make temporary tables.
            world::apply_jobs_rm_reference(&mut cluster.client(name), &format!("id IN ({})", ids.join(", ")));
            *applied = removed;
        }
        World::read(&mut cluster.client(name))
    }

    fn drop_twin(&mut self, cluster: &Cluster) {
        if let Some((name, _)) = self.twin.take() {
            let _ = cluster
                .client("postgres")
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// Each V1 table's rows as `COPY … TO STDOUT` writes them, sorted.
fn v1_copy_rows(inst: &Instance<'_>) -> BTreeMap<String, Vec<String>> {
    let mut c = inst.admin();
    world::v1_table_names(&mut c)
        .into_iter()
        .map(|t| {
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut c.copy_out(&format!("COPY {t} TO STDOUT")).expect("copy out"),
                &mut text,
            )
            .expect("read the copy");
            let mut rows: Vec<String> = text.lines().map(str::to_owned).collect();
            rows.sort();
            (t, rows)
        })
        .collect()
}

/// Each table's rows as the archive holds them (`pg_restore --data-only`
/// to a script, its `COPY` blocks), sorted: read from the archive itself,
/// not from its manifest.
fn archive_rows(dump: &Path) -> Result<BTreeMap<String, Vec<String>>, String> {
    let out = Command::new(cluster::bindir().join("pg_restore"))
        .arg("--data-only")
        .arg("--file=-")
        .arg(dump)
        .output()
        .map_err(|e| format!("pg_restore: {e}"))?;
    if !out.status.success() {
        return Err(format!("pg_restore failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut tables = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("COPY public.") else { continue };
        let table = rest.split([' ', '(']).next().unwrap_or_default().to_owned();
        let mut rows: Vec<String> = lines.by_ref().take_while(|l| *l != "\\.").map(str::to_owned).collect();
        rows.sort();
        tables.insert(table, rows);
    }
    Ok(tables)
}

/// What is wrong with the backup `dir`, if anything: it must verify, its
/// archive must hold every V1 row exactly, its job-row copies every V1 job.
fn backup_faults(dir: &Path, before: &Before) -> Option<String> {
    let options =
        BackupOptions { pg_restore: cluster::bindir().join("pg_restore"), ..BackupOptions::default() };
    let manifest = match backup::verify(dir, &options) {
        Ok(m) => m,
        Err(e) => return Some(format!("{} has a backup's name but is not one: {e}", dir.display())),
    };
    match archive_rows(&dir.join("v1-tables.dump")) {
        Ok(rows) if rows == before.v1_copy => {}
        Ok(rows) => {
            let differ: Vec<_> =
                before.v1_copy.keys().filter(|t| rows.get(*t) != before.v1_copy.get(*t)).take(3).collect();
            return Some(format!(
                "{}: the archive's rows differ from the database's in {differ:?}",
                dir.display()
            ));
        }
        Err(e) => return Some(format!("{}: {e}", dir.display())),
    }
    for copy in &manifest.job_rows {
        let text = std::fs::read_to_string(dir.join(format!("jobs/{}.copy", copy.table))).unwrap_or_default();
        let lines = text.lines().count() as i64;
        if lines != copy.rows {
            return Some(format!(
                "{}: jobs/{}.copy has {lines} rows, the manifest says {}",
                dir.display(),
                copy.table,
                copy.rows
            ));
        }
        if copy.table == "lava_scheduler_app_testjob" && lines as usize != before.v1_jobs.len() {
            return Some(format!(
                "{}: {lines} V1 job rows copied of {}",
                dir.display(),
                before.v1_jobs.len()
            ));
        }
    }
    None
}

/// The directories with a backup's name under `dir`.
fn complete_backups(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_none_or(|x| x != INCOMPLETE))
        .collect();
    out.sort();
    out
}

/// Checks the invariants, after a kill (`rerun` false) or after the
/// rerun (then also that the work is complete); returns the violations.
fn check(
    op: Op,
    inst: &Instance<'_>,
    before: &mut Before,
    after_drop: Option<&World>,
    rerun: bool,
) -> Vec<String> {
    let mut v = Vec::new();
    let media = inst.media_root();
    if hostile::listing(&outside(inst)) != before.outside {
        v.push("a file outside the media root changed".to_owned());
    }
    let kept = media_kept(op, &media, &before.v1_job_dirs);
    if kept != before.media {
        let changed: Vec<_> = kept
            .iter()
            .filter(|(p, w)| before.media.get(*p) != Some(w))
            .chain(before.media.iter().filter(|(p, _)| !kept.contains_key(*p)))
            .take(3)
            .map(|(p, _)| p.display().to_string())
            .collect();
        v.push(format!("media that must stay changed: {changed:?}"));
    }

    let now = World::read(&mut inst.admin());
    match op {
        Op::Drop | Op::Postinst => {
            let after = after_drop.expect("the uninterrupted drop's result");
            if now != *after && (rerun || now != before.world) {
                let against = if rerun { after } else { &before.world };
                v.push(format!(
                    "the database is neither as before nor as after the drop: {:?}",
                    now.diff(against)
                ));
            }
        }
        Op::JobsRm => {
            let left = v1_jobs(inst);
            let removed = before.v1_jobs.len() - left.len();
            if left != before.v1_jobs[removed..] {
                v.push(format!("the V1 jobs removed are not the first in id order: {left:?} are left"));
            } else {
                let want = before.twin_world(inst.cluster, removed);
                // Killed, it may leave the foreign keys into the job table
                // NOT VALID (still enforced); the rerun validates them.
                let diff = if rerun { now.diff(&want) } else { now.with_testjob_fks_validated().diff(&want) };
                if !diff.is_empty() {
                    v.push(format!(
                        "the database is not as LAVA's rules leave it for {removed} jobs: {diff:?}"
                    ));
                }
            }
            if rerun && !left.is_empty() {
                v.push(format!("{} V1 jobs are left after the rerun", left.len()));
            }
        }
        Op::FilesRm | Op::Backup => {
            if now != before.world {
                v.push(format!("the database changed: {:?}", now.diff(&before.world)));
            }
        }
    }

    // Output that must survive, and output that must be gone.
    if matches!(op, Op::JobsRm) {
        let left: BTreeSet<i32> = v1_jobs(inst).into_iter().collect();
        for (id, (dir, digest)) in &before.v1_job_trees {
            if left.contains(id) && hostile::tree_digest(dir) != *digest {
                v.push(format!("the output of job {id}, still there, changed: {}", dir.display()));
                break;
            }
        }
        for f in protected_files(inst, &media) {
            if !f.exists() {
                v.push(format!("{} removed while its job is still there", f.display()));
                break;
            }
        }
        if rerun {
            let left: Vec<_> = before
                .v1_job_dirs
                .iter()
                .filter(|d| std::fs::symlink_metadata(media.join(d)).is_ok())
                .collect();
            if !left.is_empty() {
                v.push(format!("V1 output directories left after the rerun: {left:?}"));
            }
            if inst.paths.state_dir.join(lava_v1_core::jobs::PENDING_FILE).exists() {
                v.push("the pending-batch file is left after the rerun".to_owned());
            }
        }
    }
    if matches!(op, Op::FilesRm) && rerun {
        let left: Vec<_> =
            V1_MEDIA_DIRS.iter().filter(|d| std::fs::symlink_metadata(media.join(d)).is_ok()).collect();
        if !left.is_empty() {
            v.push(format!("V1 media left after the rerun: {left:?}"));
        }
    }

    // Backups: whatever carries a backup's name verifies and holds every
    // V1 row; after the rerun there is one.
    if matches!(op, Op::Backup | Op::Postinst) {
        let made = complete_backups(&backup_dir(op, inst));
        for dir in &made {
            if before.checked_backups.contains(dir) {
                continue;
            }
            match backup_faults(dir, before) {
                Some(fault) => v.push(fault),
                None => {
                    before.checked_backups.insert(dir.clone());
                }
            }
        }
        if rerun && made.is_empty() {
            v.push("no backup after the rerun".to_owned());
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
    // A walk of the 10,000-level trees holds a descriptor per level.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).expect("getrlimit");
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    let cluster = Cluster::start();
    let mut rng = Lcg(seed);
    let mut total_violations = 0;
    let (mut passed, mut failed) = (0u32, 0u32);
    let started_all = Instant::now();
    println!(
        "{:<28} {:>6} {:>11} {:>16} {:>14}",
        "operation", "kills", "violations", "median rerun ms", "ended first"
    );
    for op in [Op::Drop, Op::Postinst, Op::JobsRm, Op::FilesRm, Op::Backup] {
        if only.as_deref().is_some_and(|o| o != op.key()) {
            continue;
        }
        // How long an uninterrupted run takes (kills land inside it), and
        // for the drop what it leaves.
        let (probe, swap) = prepare(op, &cluster, scale);
        // About six batches, so that kills land between commits.
        let batch = matches!(op, Op::JobsRm).then(|| (v1_jobs(&probe).len() as u32).div_ceil(6).max(1));
        let started = Instant::now();
        // (No swapper here: a link it swaps in after the walk went by would
        // rightly make the run report a leftover.)
        drop(swap);
        let ok = command_for(op, &probe, &backup_dir(op, &probe), batch).status().expect("run").success();
        assert!(ok, "{} fails even without a kill", op.name());
        let span = started.elapsed().as_micros() as u64;
        let after_drop = matches!(op, Op::Drop | Op::Postinst).then(|| World::read(&mut probe.admin()));
        drop(probe);

        let mut violations = 0;
        let mut ended_first = 0;
        let mut reruns = Vec::new();
        for k in 0..kills {
            let (inst, swap) = prepare(op, &cluster, scale);
            let backups = backup_dir(op, &inst);
            let mut before = Before::read(op, &inst);
            let swapper = Swapper::start(swap.as_deref(), &outside(&inst));
            let mut child = command_for(op, &inst, &backups, batch).spawn().expect("spawn");
            let delay = rng.below(span * 12 / 10 + 1);
            std::thread::sleep(Duration::from_micros(delay));
            // A run that already ended was not interrupted: counted apart.
            if child.try_wait().ok().flatten().is_some() {
                ended_first += 1;
            }
            let _ = child.kill();
            let _ = child.wait();
            drop(swapper);
            let mut found = Vec::new();
            if !inst.wait_for_lava_v1_sessions_to_end() {
                found.push("the killed run's database session outlived it by 30 s".to_owned());
            }
            found.extend(check(op, &inst, &mut before, after_drop.as_ref(), false));
            if !found.is_empty() {
                violations += found.len();
                eprintln!("{} kill {k} after {delay} us: {found:?}", op.name());
            }
            let t = Instant::now();
            let rerun = command_for(op, &inst, &backups, None).status().expect("rerun");
            reruns.push(t.elapsed());
            if !rerun.success() {
                violations += 1;
                eprintln!("{} kill {k}: the rerun failed ({rerun})", op.name());
            }
            let after = check(op, &inst, &mut before, after_drop.as_ref(), true);
            if !after.is_empty() {
                violations += after.len();
                eprintln!("{} kill {k}, after the rerun: {after:?}", op.name());
            }
            before.drop_twin(&cluster);
            if found.is_empty() && rerun.success() && after.is_empty() {
                passed += 1;
            } else {
                failed += 1;
            }
        }
        reruns.sort();
        let median = reruns.get(reruns.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        println!("{:<28} {:>6} {:>11} {:>16.0} {:>14}", op.name(), kills, violations, median, ended_first);
        total_violations += violations;
    }
    println!("{} s in all", started_all.elapsed().as_secs());
    println!("chaos: {passed} passed, {failed} failed");
    if total_violations > 0 {
        eprintln!("lava-v1-chaos: {total_violations} invariant violations");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
