//! Benchmark of `lava-v1 export` against `pg_dump -Fc` of the same 45 V1
//! tables, on the same database in the same run, with each one's peak RSS.
//! [`measure`] is called by `lava-v1-bench-export` (and can be by any
//! benchmark program that has a [`crate::measure::measure_rss_mode`]).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lava_v1_core::schema::V1_TABLES;

use crate::cluster::LAVA_PASSWORD;
use crate::instance::write_config;
use crate::measure::{median, wrapper};
use crate::Cluster;

/// What [`measure`] found (medians over the runs).
#[derive(Debug, Clone)]
pub struct ExportBench {
    /// Rows in the V1 tables.
    pub v1_rows: i64,
    /// V1 bundles.
    pub bundles: i64,
    /// `pg_dump -Fc` of the 45 V1 tables, whole process.
    pub pg_dump: Duration,
    /// Its peak RSS, KiB.
    pub pg_dump_rss_kib: u64,
    /// The archive's size.
    pub dump_bytes: u64,
    /// `lava-v1 export`, whole process (tables, jobs, media, views, checks).
    pub export: Duration,
    /// Its peak RSS, KiB.
    pub export_rss_kib: u64,
    /// The SQLite file's size.
    pub export_bytes: u64,
    /// Media files stored in the export.
    pub media_files: i64,
}

impl ExportBench {
    /// `export / pg_dump` (target: at most 2).
    pub fn ratio(&self) -> f64 {
        self.export.as_secs_f64() / self.pg_dump.as_secs_f64()
    }
}

/// Runs `cmd` under `rss_wrapper --measure-rss`; wall time and peak RSS.
fn timed(
    rss_wrapper: &Path,
    rss_file: &Path,
    wrap: &[String],
    program: &Path,
    cmd: impl FnOnce(&mut Command),
) -> (Duration, u64) {
    let mut c = Command::new(rss_wrapper);
    c.arg("--measure-rss").arg(rss_file).arg("--").args(wrap).arg(program);
    cmd(&mut c);
    c.stdout(Stdio::null());
    let started = Instant::now();
    let status = c.status().expect("run the measured program");
    let took = started.elapsed();
    assert!(status.success(), "{} failed", program.display());
    (took, std::fs::read_to_string(rss_file).expect("rss").trim().parse().expect("a number"))
}

/// Measures, `runs` times each in alternating order on the database `db`
/// of `cluster` (over TCP with a password, as LAVA connects) and the media
/// tree `media`: `pg_dump -Fc` of the 45 V1 tables into a file, and
/// `lava-v1 export` (`lava_v1`) into a new SQLite file, both under `work`.
pub fn measure(
    cluster: &Cluster,
    db: &str,
    media: &Path,
    work: &Path,
    lava_v1: &Path,
    rss_wrapper: &Path,
    runs: usize,
) -> ExportBench {
    let conf = work.join(format!("export-conf-{db}"));
    std::fs::create_dir_all(&conf).expect("conf dir");
    let paths = write_config(&conf, cluster, db);
    let mut client = cluster.client(db);
    let v1_rows: i64 = V1_TABLES
        .iter()
        .map(|t| client.query_one(&format!("SELECT count(*) FROM {t}"), &[]).expect("count").get::<_, i64>(0))
        .sum();
    let bundles: i64 =
        client.query_one("SELECT count(*) FROM dashboard_app_bundle", &[]).expect("count").get(0);
    let pg_dump = crate::cluster::bindir().join("pg_dump");
    let (mut dumps, mut exports) = (Vec::new(), Vec::new());
    let (mut dump_rss, mut export_rss, mut dump_bytes, mut export_bytes) = (0, 0, 0, 0);
    let mut media_files = 0;
    // LAVA_V1_BENCH_WRAP profiles the export.
    let wrap = wrapper();
    for run in 0..runs * 2 {
        let dump = run % 2 == 0;
        if dump {
            let out = work.join("bench.dump");
            let _ = std::fs::remove_file(&out);
            let (t, rss) = timed(rss_wrapper, &conf.join("rss"), &[], &pg_dump, |c| {
                c.arg("--format=custom").arg(format!("--file={}", out.display()));
                for t in V1_TABLES {
                    c.arg(format!("--table=public.{t}"));
                }
                c.env("PGHOST", "127.0.0.1")
                    .env("PGPORT", cluster.port.to_string())
                    .env("PGUSER", crate::cluster::LAVA_ROLE)
                    .env("PGDATABASE", db)
                    .env("PGPASSWORD", LAVA_PASSWORD);
            });
            dumps.push(t);
            dump_rss = dump_rss.max(rss);
            dump_bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            let _ = std::fs::remove_file(&out);
        } else {
            let out = work.join("bench.sqlite");
            let _ = std::fs::remove_file(&out);
            let (t, rss) = timed(rss_wrapper, &conf.join("rss"), &wrap, lava_v1, |c| {
                c.arg("--instance-conf")
                    .arg(&paths.instance_conf)
                    .arg("--media-root")
                    .arg(media)
                    .arg("--state-dir")
                    .arg(&paths.state_dir)
                    .arg("export")
                    .arg("--output")
                    .arg(&out)
                    // LAVA_V1_BENCH_LOG=debug shows where the time goes.
                    .env("RUST_LOG", std::env::var("LAVA_V1_BENCH_LOG").unwrap_or_else(|_| "warn".into()));
            });
            exports.push(t);
            export_rss = export_rss.max(rss);
            export_bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            let conn = rusqlite::Connection::open(&out).expect("open the export");
            media_files = conn
                .query_row(
                    "SELECT (SELECT count(*) FROM media_bundle) + (SELECT count(*) FROM media_attachment)
                          + (SELECT count(*) FROM media_testdefinition)",
                    [],
                    |r| r.get(0),
                )
                .expect("count the media");
            drop(conn);
            // LAVA_V1_BENCH_KEEP=FILE keeps the last export there, to look into.
            if let Some(keep) = std::env::var_os("LAVA_V1_BENCH_KEEP") {
                let _ = std::fs::rename(&out, keep);
            }
            let _ = std::fs::remove_file(&out);
        }
    }
    ExportBench {
        v1_rows,
        bundles,
        pg_dump: median(dumps),
        pg_dump_rss_kib: dump_rss,
        dump_bytes,
        export: median(exports),
        export_rss_kib: export_rss,
        export_bytes,
        media_files,
    }
}
