//! Benchmark of the whole V1 removal, each step against its baseline on
//! identical copies in the same run.  For each scale it seeds one 2017.10
//! instance (a live one: jobs running, devices online) with its media
//! tree, then measures, as whole processes, with each one's peak RSS:
//!
//! * `lava-v1 status`;
//! * `lava-v1 backup` against `pg_dump -Fc` of the 45 V1 tables plus `tar`
//!   of the four V1 media directories;
//! * `lava-v1 drop --yes` against the hand-written DDL through `psql`
//!   ([`lava_v1_testkit::baseline::drop_sql`]);
//! * the upgrade's downtime: the real `lava-server-postinst configure`
//!   after a "yes" with a backup (and no export), against `pg_dump` + `tar` + the
//!   hand-written drop in a row;
//! * `lava-v1 jobs rm --v1` (after the unfinished V1 jobs are marked
//!   canceled, as it requires before the drop) against the optimal
//!   set-based SQL with the foreign keys swapped
//!   ([`lava_v1_testkit::baseline::jobs_rm_sql`]), its time per phase, and
//!   against LAVA's per-job statements ([`replay`], up to `--replay-up-to`);
//!   once more with the output directories;
//! * `lava-v1 files rm` against `rm -rf` of the same four directories.
//!
//! The databases `jobs rm`, its SQL baseline and the replay leave are
//! checked to be identical (fingerprint of every table, sequence and the
//! schema).  Before each scale it checks that the disk has room (and says
//! how much it needs); every step prints a progress line to stderr.  The
//! tables go to stdout as Markdown.
//!
//! Usage: lava-v1-bench-removal [SCALE...] [--runs N] [--replay-up-to SCALE]
//! (default: 10 100, 3 runs, the replay up to scale 100)

#![allow(clippy::print_stderr, clippy::print_stdout)]

mod replay;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lava_v1_core::schema::{V1_MEDIA_DIRS, V1_TABLES};
use lava_v1_testkit::cluster::{LAVA_PASSWORD, LAVA_ROLE};
use lava_v1_testkit::instance::{dpkg_root, load, write_config, write_media};
use lava_v1_testkit::measure::{measure_rss_mode, median, wrapper};
use lava_v1_testkit::{baseline, Cluster, Seed};

/// Disk use per unit of scale, measured at scale 100 (database 4.1 MiB,
/// media tree 13.3 MiB allocated), with some headroom.
const DB_BYTES_PER_SCALE: u64 = 5 << 20;
const MEDIA_BYTES_PER_SCALE: u64 = 14 << 20;

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn ratio(ours: Duration, base: Duration) -> String {
    format!("**{:.2}×**", ours.as_secs_f64() / base.as_secs_f64())
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn gib(bytes: u64) -> String {
    if bytes < 1 << 30 {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One measured process.
struct Run {
    took: Duration,
    rss_kib: u64,
    stdout: String,
}

struct Options {
    scales: Vec<u32>,
    runs: usize,
    replay_up_to: u32,
    /// The steps to run (`--only`), all of them by default.
    only: Vec<String>,
    /// `jobs rm --batch-size`, when given.
    batch_size: Option<u32>,
}

/// The steps `--only` may name, in the order they run.
const STEPS: [&str; 8] = ["status", "backup", "drop", "postinst", "jobs", "dirs", "replay", "files"];

impl Options {
    fn runs(&self, step: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == step)
    }

    /// Whether a step that reads the media tree runs.
    fn needs_media(&self) -> bool {
        ["status", "backup", "postinst", "dirs", "files"].iter().any(|s| self.runs(s))
    }
}

impl Options {
    fn parse(args: &[String]) -> Options {
        let mut o =
            Options { scales: Vec::new(), runs: 3, replay_up_to: 100, only: Vec::new(), batch_size: None };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| -> u32 {
                it.next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{name} needs a whole number"))
            };
            match a.as_str() {
                "--runs" => o.runs = value("--runs").max(1) as usize,
                "--replay-up-to" => o.replay_up_to = value("--replay-up-to"),
                "--batch-size" => o.batch_size = Some(value("--batch-size")),
                "--only" => {
                    let list = it.next().expect("--only needs a comma-separated list of steps");
                    for step in list.split(',') {
                        assert!(
                            STEPS.contains(&step),
                            "--only: unknown step {step:?}; the steps: {}",
                            STEPS.join(",")
                        );
                        o.only.push(step.to_owned());
                    }
                }
                s => o.scales.push(s.parse().expect("SCALE is a whole number")),
            }
        }
        if o.scales.is_empty() {
            o.scales = vec![10, 100];
        }
        o
    }
}

struct Bench {
    cluster: Cluster,
    dir: tempfile::TempDir,
    tool: PathBuf,
    me: PathBuf,
    started: Instant,
}

impl Bench {
    /// A progress line.
    fn say(&self, what: &str) {
        eprintln!("[{:>7.1} s] {what}", self.started.elapsed().as_secs_f64());
    }

    fn admin(&self) -> postgres::Client {
        self.cluster.client("postgres")
    }

    /// A copy of `template`, flushed to disk before anything is measured
    /// on it (gigabytes of a fresh copy otherwise drain to disk during
    /// whatever runs next).
    fn clone_db(&self, template: &str, name: &str) {
        let mut admin = self.admin();
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template} OWNER {LAVA_ROLE}"))
            .unwrap();
        admin.batch_execute("CHECKPOINT").unwrap();
        nix::unistd::sync();
    }

    fn drop_db(&self, name: &str) {
        self.admin().batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).unwrap();
    }

    /// Runs `cmd` under the RSS meter.
    fn measured(&self, cmd: &mut Command, what: &str) -> Run {
        let rss = self.dir.path().join("rss");
        let mut wrapped = Command::new(&self.me);
        wrapped.arg("--measure-rss").arg(&rss).arg("--");
        // LAVA_V1_BENCH_WRAP="strace -c -f -o /tmp/x" profiles what is measured.
        wrapped.args(wrapper());
        wrapped.arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        let started = Instant::now();
        // Its stderr (the warnings about the live instance) is shown
        // only when it fails.
        let out = wrapped.output().unwrap();
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Run {
            took,
            rss_kib: std::fs::read_to_string(&rss).unwrap().trim().parse().unwrap(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        }
    }

    /// `lava-v1 <args>` for database `db` and media root `media`.
    fn tool(&self, db: &str, media: &Path, args: &[&str]) -> Run {
        let conf = self.dir.path().join(format!("conf-{db}"));
        std::fs::create_dir_all(&conf).unwrap();
        let paths = write_config(&conf, &self.cluster, db);
        let mut cmd = Command::new(&self.tool);
        cmd.arg("--instance-conf")
            .arg(&paths.instance_conf)
            .arg("--media-root")
            .arg(media)
            .arg("--state-dir")
            .arg(&paths.state_dir)
            .args(args)
            .env("RUST_LOG", "warn");
        self.measured(&mut cmd, &format!("lava-v1 {}", args.join(" ")))
    }

    fn psql(&self, db: &str, sql: &str) -> Duration {
        let path = self.dir.path().join("baseline.sql");
        std::fs::write(&path, sql).unwrap();
        let started = Instant::now();
        let ok = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
            .arg(self.cluster.port.to_string())
            .args(["-U", LAVA_ROLE, "-d", db, "-f"])
            .arg(&path)
            .env("PGPASSWORD", LAVA_PASSWORD)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "the baseline SQL failed on {db}");
        started.elapsed()
    }

    /// The baseline backup: `pg_dump -Fc` of the 45 V1 tables, then `tar`
    /// of the V1 media directories, into `out`.
    fn dump_and_tar(&self, db: &str, media: &Path, out: &Path) -> Duration {
        std::fs::create_dir_all(out).unwrap();
        let started = Instant::now();
        let mut dump = Command::new("pg_dump");
        dump.args(["-Fc", "-h", "127.0.0.1", "-p"])
            .arg(self.cluster.port.to_string())
            .args(["-U", LAVA_ROLE, "-d", db])
            .arg(format!("--file={}", out.join("v1.dump").display()))
            .env("PGPASSWORD", LAVA_PASSWORD);
        for t in V1_TABLES {
            dump.arg(format!("--table={t}"));
        }
        assert!(dump.status().is_ok_and(|s| s.success()), "pg_dump failed");
        let bytes = std::fs::metadata(out.join("v1.dump")).map_or(0, |m| m.len());
        self.say(&format!("  baseline: pg_dump -Fc archive {:.1} MiB", bytes as f64 / 1048576.0));
        let dirs: Vec<&str> = V1_MEDIA_DIRS.iter().copied().filter(|d| media.join(d).exists()).collect();
        let ok = Command::new("tar")
            .arg("--create")
            .arg(format!("--file={}", out.join("media.tar").display()))
            .arg("-C")
            .arg(media)
            .args(&dirs)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "tar failed");
        started.elapsed()
    }

    fn fingerprint(&self, db: &str) -> lava_v1_core::fingerprint::Fingerprint {
        lava_v1_core::fingerprint::v2(&mut self.cluster.client(db)).unwrap()
    }

    fn count(&self, db: &str, sql: &str) -> u64 {
        self.cluster.client(db).query_one(sql, &[]).unwrap().get::<_, i64>(0) as u64
    }
}

fn cp_a(from: &Path, to: &Path) {
    let ok = Command::new("cp").arg("-a").arg(from).arg(to).status().is_ok_and(|s| s.success());
    // On disk before anything is measured on the copy.
    nix::unistd::sync();
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

fn rm_rf(path: &Path) {
    let _ = Command::new("rm").arg("-rf").arg(path).status();
}

fn sync() {
    let _ = Command::new("sync").status();
}

/// Bytes allocated under `path`.
fn du(path: &Path) -> u64 {
    let out = Command::new("du").args(["-s", "--block-size=1"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("0").parse().unwrap_or(0)
}

fn free_bytes(path: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(path).expect("statvfs");
    s.blocks_available() as u64 * s.fragment_size() as u64
}

/// Everything measured at one scale.
#[derive(Default)]
struct Row {
    scale: u32,
    v1_jobs: u64,
    v1_results: u64,
    db_bytes: u64,
    media_bytes: u64,
    seed: Duration,
    status: Duration,
    backup: (Duration, Duration),
    drop: (Duration, Duration),
    postinst: (Duration, Duration),
    jobs: (Duration, Duration),
    jobs_with_dirs: Duration,
    replay: Option<Duration>,
    files: (Duration, Duration),
    /// Peak RSS, KiB: status, backup, drop, postinst, jobs rm, with dirs, files rm.
    rss: [u64; 7],
    /// `jobs rm`'s phases in its median run, microseconds.
    phases: BTreeMap<String, u64>,
}

fn measure(bench: &Bench, scale: u32, o: &Options) -> Row {
    let mut row = Row { scale, ..Row::default() };
    let base = bench.dir.path();
    // At most two copies of the database (the template and a clone) and
    // three of the media tree (the master and two copies for files rm, or
    // the master and a backup's tar of it) exist at once.
    let need = u64::from(scale) * (2 * DB_BYTES_PER_SCALE + 3 * MEDIA_BYTES_PER_SCALE) + (1 << 30);
    let free = free_bytes(base);
    bench.say(&format!(
        "scale {scale}: needs about {} free under {} (the database twice, the media tree three times); {} free",
        gib(need),
        base.display(),
        gib(free)
    ));
    assert!(
        free >= need,
        "not enough disk for scale {scale}: {} needed under {}, {} free; free some, pick a smaller scale, or set TMPDIR to a bigger disk",
        gib(need),
        base.display(),
        gib(free)
    );

    let t = format!("bench_s{scale}");
    bench.admin().batch_execute(&format!("CREATE DATABASE {t} OWNER {LAVA_ROLE}")).unwrap();
    bench.say(&format!("scale {scale}: seeding the database"));
    let started = Instant::now();
    load(&bench.cluster, &t, &Seed { scale, media: false, django110_names: false });
    bench.cluster.client(&t).batch_execute("VACUUM ANALYZE").unwrap();
    let master = base.join(format!("media-{scale}"));
    if o.needs_media() {
        bench.say(&format!("scale {scale}: writing the media tree"));
        write_media(&mut bench.cluster.client(&t), &master);
    } else {
        std::fs::create_dir_all(&master).unwrap();
    }
    sync();
    row.seed = started.elapsed();
    row.v1_jobs = bench.count(&t, "SELECT count(*) FROM lava_scheduler_app_testjob WHERE NOT is_pipeline");
    row.v1_results = bench.count(&t, "SELECT count(*) FROM dashboard_app_testresult");
    row.db_bytes = bench.count(&t, "SELECT pg_database_size(current_database())");
    row.media_bytes = du(&master);
    bench.say(&format!(
        "scale {scale}: {} V1 jobs, {} V1 results, database {}, media {}, seeded in {}",
        thousands(row.v1_jobs),
        thousands(row.v1_results),
        gib(row.db_bytes),
        gib(row.media_bytes),
        secs(row.seed)
    ));

    // Read-only steps, on the live template itself.
    if o.runs("status") {
        bench.say(&format!("scale {scale}: status"));
        let r = bench.tool(&t, &master, &["status"]);
        (row.status, row.rss[0]) = (r.took, r.rss_kib);
    }

    let (mut ours, mut theirs) = (vec![], vec![]);
    for run in 0..o.runs * usize::from(o.runs("backup")) {
        bench.say(&format!("scale {scale}: backup, run {}/{}", run + 1, o.runs));
        let dir = base.join("backups");
        let mine = || {
            let r = bench.tool(&t, &master, &["backup", "--json", "--backup-dir", dir.to_str().unwrap()]);
            rm_rf(&dir);
            let report: serde_json::Value = serde_json::from_str(&r.stdout).expect("backup --json");
            let steps: Vec<String> = report["phases"]
                .as_array()
                .expect("phases")
                .iter()
                .map(|p| {
                    format!(
                        "{} {:.2} s",
                        p["name"].as_str().unwrap_or("?"),
                        p["us"].as_f64().unwrap_or(0.0) / 1e6
                    )
                })
                .collect();
            let dump_bytes = report["manifest"]["files"]
                .as_array()
                .and_then(|fs| fs.iter().find(|f| f["name"] == "v1-tables.dump"))
                .and_then(|f| f["bytes"].as_u64())
                .unwrap_or(0);
            bench.say(&format!(
                "  backup in {:.2} s (archive of the tables {:.1} MiB): {}",
                r.took.as_secs_f64(),
                dump_bytes as f64 / 1048576.0,
                steps.join(", ")
            ));
            r
        };
        let plain = || {
            let d = bench.dump_and_tar(&t, &master, &dir);
            rm_rf(&dir);
            d
        };
        // Alternate which goes first (the page cache favours the second).
        if run % 2 == 1 {
            theirs.push(plain());
        }
        let r = mine();
        ours.push(r.took);
        row.rss[1] = row.rss[1].max(r.rss_kib);
        if run % 2 == 0 {
            theirs.push(plain());
        }
    }
    row.backup = (median(ours), median(theirs));

    let (mut ours, mut theirs) = (vec![], vec![]);
    for run in 0..o.runs * usize::from(o.runs("drop")) {
        bench.say(&format!("scale {scale}: drop, run {}/{}", run + 1, o.runs));
        bench.clone_db(&t, "b_drop_sql");
        theirs.push(bench.psql("b_drop_sql", &baseline::drop_sql()));
        bench.drop_db("b_drop_sql");
        bench.clone_db(&t, "b_drop");
        let r = bench.tool("b_drop", &master, &["drop", "--yes"]);
        ours.push(r.took);
        row.rss[2] = row.rss[2].max(r.rss_kib);
        if run + 1 < o.runs {
            bench.drop_db("b_drop");
        }
    }
    row.drop = (median(ours), median(theirs));

    let mine = || {
        bench.clone_db(&t, "b_postinst");
        let conf = base.join("postinst");
        let paths = write_config(&conf, &bench.cluster, "b_postinst");
        let root = dpkg_root(&conf, &paths.instance_conf);
        // The downtime of the removal itself: the readable export (its own
        // benchmark, `scripts/bench-v1-export`) is answered no here.
        let decision = root.join("var/lib/lava-server/v1-removal/decision");
        let text = std::fs::read_to_string(&decision).unwrap();
        std::fs::write(&decision, format!("{text}export=no\n")).unwrap();
        std::os::unix::fs::symlink(&master, root.join("media")).unwrap();
        let mut cmd = lava_v1_testkit::paused::postinst_under(&root);
        cmd.env("RUST_LOG", "warn");
        let r = bench.measured(&mut cmd, "lava-server-postinst configure");
        let journal = std::fs::read_to_string(root.join("var/lib/lava-server/v1-removal/journal.log"))
            .unwrap_or_default();
        for line in journal.lines().filter(|l| l.contains("postinst:")) {
            bench.say(&format!("  journal: {line}"));
        }
        rm_rf(&conf);
        bench.drop_db("b_postinst");
        r
    };
    let plain = || {
        bench.clone_db(&t, "b_postinst_sql");
        let dir = base.join("backups");
        let started = Instant::now();
        bench.dump_and_tar("b_postinst_sql", &master, &dir);
        bench.psql("b_postinst_sql", &baseline::drop_sql());
        let took = started.elapsed();
        rm_rf(&dir);
        bench.drop_db("b_postinst_sql");
        took
    };
    if o.runs("postinst") {
        bench.say(&format!("scale {scale}: the postinst (backup and drop), and pg_dump + tar + drop SQL"));
        let theirs = plain();
        let r = mine();
        row.postinst = (r.took, theirs);
        row.rss[3] = r.rss_kib;
    }

    // jobs rm needs the unfinished V1 jobs finished before the drop (at
    // scale 1000 this takes minutes: only when a step of jobs rm runs).
    if ["jobs", "dirs", "replay"].iter().any(|s| o.runs(s)) {
        bench.say(&format!("scale {scale}: marking the unfinished V1 jobs canceled, for jobs rm"));
        bench
            .cluster
            .client(&t)
            .batch_execute(
                "UPDATE lava_scheduler_app_testjob SET status = 4,
                     end_time = coalesce(end_time, submit_time + INTERVAL '40 minutes')
                 WHERE NOT is_pipeline AND status IN (0, 1, 5)",
            )
            .unwrap();
        bench.cluster.client(&t).batch_execute("VACUUM ANALYZE lava_scheduler_app_testjob").unwrap();
    }
    let empty = base.join("empty-media");
    std::fs::create_dir_all(&empty).unwrap();
    let check_all = scale <= 100;
    let mut reference = None;
    let (mut ours, mut theirs, mut phases) = (vec![], vec![], vec![]);
    let mut jobs_args = vec!["jobs", "rm", "--v1"];
    let batch_size = o.batch_size.map(|n| n.to_string());
    if let Some(n) = &batch_size {
        jobs_args.extend(["--batch-size", n.as_str()]);
    }
    for run in 0..o.runs * usize::from(o.runs("jobs")) {
        bench.say(&format!("scale {scale}: jobs rm --v1 and the FK-swap SQL, run {}/{}", run + 1, o.runs));
        bench.clone_db(&t, "b_jobs_sql");
        let sql = baseline::jobs_rm_sql(&mut bench.cluster.client("b_jobs_sql"));
        theirs.push(bench.psql("b_jobs_sql", &sql));
        if run == 0 || check_all {
            reference = Some(bench.fingerprint("b_jobs_sql"));
        }
        bench.drop_db("b_jobs_sql");
        bench.clone_db(&t, "b_jobs");
        let r = bench.tool("b_jobs", &empty, &[jobs_args.as_slice(), &["--json"]].concat());
        ours.push(r.took);
        row.rss[4] = row.rss[4].max(r.rss_kib);
        let report: serde_json::Value = serde_json::from_str(&r.stdout).expect("jobs rm --json");
        let p: BTreeMap<String, u64> = report["phases_us"]
            .as_object()
            .expect("phases_us")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
            .collect();
        phases.push((r.took, p));
        if run == 0 || check_all {
            let diff = reference.as_ref().unwrap().diff(&bench.fingerprint("b_jobs"));
            assert_eq!(diff, Vec::<String>::new(), "jobs rm and the SQL baseline differ");
        }
        bench.drop_db("b_jobs");
    }
    row.jobs = (median(ours), median(theirs));
    phases.sort_by_key(|(t, _)| *t);
    if !phases.is_empty() {
        row.phases = phases.swap_remove(phases.len() / 2).1;
    }

    if o.runs("dirs") {
        bench.say(&format!("scale {scale}: jobs rm --v1 with the output directories"));
        bench.clone_db(&t, "b_jobs_dirs");
        let media = base.join("media-jobs");
        cp_a(&master, &media);
        sync();
        let r = bench.tool("b_jobs_dirs", &media, &jobs_args);
        (row.jobs_with_dirs, row.rss[5]) = (r.took, r.rss_kib);
        bench.drop_db("b_jobs_dirs");
        rm_rf(&media);
    }

    if scale <= o.replay_up_to && o.runs("replay") {
        let reference = reference.get_or_insert_with(|| {
            bench.clone_db(&t, "b_jobs_sql");
            let sql = baseline::jobs_rm_sql(&mut bench.cluster.client("b_jobs_sql"));
            bench.psql("b_jobs_sql", &sql);
            let f = bench.fingerprint("b_jobs_sql");
            bench.drop_db("b_jobs_sql");
            f
        });
        bench.say(&format!("scale {scale}: LAVA's per-job statements (the replay; slow)"));
        bench.clone_db(&t, "b_replay");
        let started = Instant::now();
        replay::django_per_job(&bench.cluster, "b_replay");
        row.replay = Some(started.elapsed());
        let diff = reference.diff(&bench.fingerprint("b_replay"));
        assert_eq!(diff, Vec::<String>::new(), "the replay and the SQL baseline differ");
        bench.drop_db("b_replay");
    }

    // files rm runs past the drop: on the database `drop` left.
    if o.runs("files") && !o.runs("drop") {
        bench.clone_db(&t, "b_drop");
        bench.tool("b_drop", &master, &["drop", "--yes"]);
    }
    let (mut ours, mut theirs) = (vec![], vec![]);
    for run in 0..o.runs * usize::from(o.runs("files")) {
        bench.say(&format!("scale {scale}: files rm and rm -rf, run {}/{}", run + 1, o.runs));
        let (a, b) = (base.join("media-a"), base.join("media-b"));
        for m in [&a, &b] {
            std::fs::create_dir_all(m).unwrap();
            for d in V1_MEDIA_DIRS {
                if master.join(d).exists() {
                    cp_a(&master.join(d), &m.join(d));
                }
            }
        }
        sync();
        let rm = || {
            let started = Instant::now();
            let ok = Command::new("rm")
                .arg("-rf")
                .args(V1_MEDIA_DIRS.iter().map(|d| b.join(d)))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "rm -rf failed");
            started.elapsed()
        };
        if run % 2 == 1 {
            theirs.push(rm());
        }
        let r = bench.tool("b_drop", &a, &["files", "rm"]);
        ours.push(r.took);
        row.rss[6] = row.rss[6].max(r.rss_kib);
        if run % 2 == 0 {
            theirs.push(rm());
        }
        rm_rf(&a);
        rm_rf(&b);
    }
    row.files = (median(ours), median(theirs));
    bench.drop_db("b_drop");
    bench.drop_db(&t);
    rm_rf(&master);
    bench.say(&format!("scale {scale}: done"));
    row
}

/// What a table says of a step that did not run (whose time is zero).
const NOT_RUN: &str = "not run";

/// `d`, or [`NOT_RUN`].
fn ran(d: Duration) -> String {
    if d.is_zero() {
        NOT_RUN.to_owned()
    } else {
        secs(d)
    }
}

fn print_tables(rows: &[Row]) {
    println!("\n### The whole removal (medians; ratio = lava-v1 / baseline)\n");
    println!("| scale | V1 jobs | V1 results | database | media | seeding | status | backup (pg_dump + tar) | drop (DDL by hand) | postinst configure (pg_dump + tar + DDL) | files rm (rm -rf) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let pair = |(o, b): (Duration, Duration)| {
        if o.is_zero() && b.is_zero() {
            NOT_RUN.to_owned()
        } else {
            format!("{} ({}) {}", secs(o), secs(b), ratio(o, b))
        }
    };
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scale,
            thousands(r.v1_jobs),
            thousands(r.v1_results),
            gib(r.db_bytes),
            gib(r.media_bytes),
            secs(r.seed),
            ran(r.status),
            pair(r.backup),
            pair(r.drop),
            pair(r.postinst),
            pair(r.files)
        );
    }
    println!("\n### jobs rm --v1 (database only; with the output directories once)\n");
    println!("| scale | V1 jobs | LAVA's per-job statements | FK-swap SQL | lava-v1 jobs rm | vs per-job | vs FK-swap SQL | µs per job (SQL / jobs rm) | jobs rm with dirs |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let per_job = |d: Duration| d.as_secs_f64() * 1e6 / r.v1_jobs.max(1) as f64;
        if r.jobs.0.is_zero() {
            println!(
                "| {} | {} | {} | {NOT_RUN} | {NOT_RUN} | – | – | – | {NOT_RUN} |",
                r.scale,
                thousands(r.v1_jobs),
                r.replay.map_or(NOT_RUN.into(), secs)
            );
            continue;
        }
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} / {:.1} | {} |",
            r.scale,
            thousands(r.v1_jobs),
            r.replay.map_or(NOT_RUN.into(), secs),
            secs(r.jobs.1),
            secs(r.jobs.0),
            r.replay.map_or("–".into(), |d| format!("{:.0}×", d.as_secs_f64() / r.jobs.0.as_secs_f64())),
            ratio(r.jobs.0, r.jobs.1),
            per_job(r.jobs.1),
            per_job(r.jobs.0),
            ran(r.jobs_with_dirs)
        );
    }
    println!("\n### Peak RSS, MiB (with the children each waited for: pg_dump, tar, pg_restore)\n");
    println!("| scale | status | backup | drop | postinst | jobs rm | jobs rm with dirs | files rm |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        let m: Vec<String> = r.rss.iter().map(|&k| if k == 0 { NOT_RUN.into() } else { mib(k) }).collect();
        println!("| {} | {} |", r.scale, m.join(" | "));
    }
    if rows.iter().all(|r| r.jobs.0.is_zero()) {
        return;
    }
    println!("\n### jobs rm --v1, time per phase (its median run, ms)\n");
    let mut names: Vec<&String> = rows.iter().flat_map(|r| r.phases.keys()).collect();
    names.sort();
    names.dedup();
    let scales: Vec<String> = rows.iter().map(|r| format!("scale {}", r.scale)).collect();
    println!("| phase | {} |", scales.join(" | "));
    println!("|---|{}", "---|".repeat(rows.len()));
    for n in names {
        let v: Vec<String> =
            rows.iter().map(|r| format!("{:.1}", *r.phases.get(n).unwrap_or(&0) as f64 / 1000.0)).collect();
        println!("| {n} | {} |", v.join(" | "));
    }
    let v: Vec<String> = rows.iter().map(|r| format!("{:.1}", r.jobs.0.as_secs_f64() * 1000.0)).collect();
    println!("| whole process | {} |", v.join(" | "));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--measure-rss") {
        measure_rss_mode(&args[1..]);
    }
    let o = Options::parse(&args);
    let bench = Bench {
        cluster: Cluster::start(),
        dir: tempfile::Builder::new().prefix("lava-v1-bench.").tempdir().expect("temp dir"),
        tool: lava_v1_testkit::program("lava-v1"),
        me: std::env::current_exe().expect("own path"),
        started: Instant::now(),
    };
    let mut rows = Vec::new();
    for &scale in &o.scales {
        rows.push(measure(&bench, scale, &o));
        // Each scale's tables as soon as it is done: a long run is never lost.
        print_tables(&rows);
    }
}
