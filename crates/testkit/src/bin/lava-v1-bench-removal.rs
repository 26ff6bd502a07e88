//! Benchmark of `lava-v1 jobs rm --v1` and `lava-v1 files rm`.  For each
//! scale: seeds one template (unfinished V1 jobs marked canceled, as an
//! admin would first), writes its media tree once, and measures, on
//! identical copies in the same run:
//!
//! * a faithful per-job baseline of LAVA's `jobs rm --v1`: for each V1 job,
//!   in its own transaction, the statements Django 1.11's collector issues
//!   for `TestJob.delete()` (SELECTs of the SET NULL and cascading
//!   relations, fast DELETEs of the join tables, UPDATEs, the DELETE),
//!   sent as psycopg2 sends them (parameters inlined, simple protocol,
//!   over TCP with a password); no ORM overhead, so it is a *lower* bound
//!   on LAVA's real time;
//! * a hand-written optimal set-based SQL script through `psql`: one
//!   transaction, the ten foreign keys into `lava_scheduler_app_testjob`
//!   dropped and re-created around one DELETE per table;
//! * `lava-v1 jobs rm --v1` (whole process) on the database only (empty
//!   media root), and again with the media tree, with its peak RSS;
//! * `lava-v1 files rm` against `rm -rf` of the same four V1 directories
//!   (fresh `cp -a` copies each run), with its peak RSS.
//!
//! The three database copies are checked to end identical (fingerprint of
//! every table, sequence and the schema).
//!
//! Usage: lava-v1-bench-removal [SCALE...] [--runs N]   (default: 10 100, 3 runs)

#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lava_v1_core::jobs::TESTJOB_REFERENCES;
use lava_v1_core::schema::{V1_MEDIA_DIRS, V1_TABLES};
use lava_v1_testkit::cluster::{LAVA_PASSWORD, LAVA_ROLE};
use lava_v1_testkit::instance::{load, write_config, write_media};
use lava_v1_testkit::{Cluster, Seed};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `--measure-rss OUT -- CMD...`: runs CMD, writes its peak RSS (KiB) to OUT.
fn measure_rss_mode(args: &[String]) -> ! {
    let out = &args[0];
    assert_eq!(args[1], "--");
    let status = Command::new(&args[2]).args(&args[3..]).status().expect("run the measured command");
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    std::fs::write(out, usage.max_rss().to_string()).expect("write rss");
    std::process::exit(status.code().unwrap_or(1));
}

fn tcp_client(cluster: &Cluster, db: &str) -> postgres::Client {
    postgres::Config::new()
        .host("127.0.0.1")
        .port(cluster.port)
        .user(LAVA_ROLE)
        .password(LAVA_PASSWORD)
        .dbname(db)
        .connect(postgres::NoTls)
        .expect("connect over TCP")
}

fn ids(rows: &[postgres::SimpleQueryMessage]) -> Vec<String> {
    rows.iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// LAVA's command: the job list once, then per job Django's collector
/// statements in their own transaction.
fn django_per_job(cluster: &Cluster, db: &str) -> usize {
    let mut c = tcp_client(cluster, db);
    let jobs = ids(&c
        .simple_query("SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline ORDER BY id")
        .unwrap());
    for id in &jobs {
        let q = |c: &mut postgres::Client, sql: String| ids(&c.simple_query(&sql).expect("django statement"));
        q(&mut c, "BEGIN".into());
        let notifications =
            q(&mut c, format!("SELECT id FROM lava_scheduler_app_notification WHERE test_job_id IN ({id})"));
        let transitions = q(&mut c, format!("SELECT id, created_on, old_state, new_state, message, created_by_id, device_id, job_id FROM lava_scheduler_app_devicestatetransition WHERE job_id IN ({id})"));
        let current = q(
            &mut c,
            format!("SELECT hostname FROM lava_scheduler_app_device WHERE current_job_id IN ({id})"),
        );
        let health = q(
            &mut c,
            format!(
                "SELECT hostname FROM lava_scheduler_app_device WHERE last_health_report_job_id IN ({id})"
            ),
        );
        let suites = q(
            &mut c,
            format!("SELECT id, name, job_id FROM lava_results_app_testsuite WHERE job_id IN ({id})"),
        );
        let datas = q(
            &mut c,
            format!("SELECT id, testjob_id FROM lava_results_app_testdata WHERE testjob_id IN ({id})"),
        );
        if !suites.is_empty() {
            let s = suites.join(", ");
            let sets = q(&mut c, format!("SELECT id FROM lava_results_app_testset WHERE suite_id IN ({s})"));
            let mut cases =
                q(&mut c, format!("SELECT id FROM lava_results_app_testcase WHERE suite_id IN ({s})"));
            if !sets.is_empty() {
                cases.extend(q(
                    &mut c,
                    format!(
                        "SELECT id FROM lava_results_app_testcase WHERE test_set_id IN ({})",
                        sets.join(", ")
                    ),
                ));
                cases.sort();
                cases.dedup();
            }
            if !cases.is_empty() {
                let cs = cases.join(", ");
                q(&mut c, format!("DELETE FROM lava_results_app_actiondata WHERE testcase_id IN ({cs})"));
                q(&mut c, format!("DELETE FROM lava_results_app_testcase WHERE id IN ({cs})"));
            }
            if !sets.is_empty() {
                q(&mut c, format!("DELETE FROM lava_results_app_testset WHERE id IN ({})", sets.join(", ")));
            }
        }
        if !datas.is_empty() {
            let d = datas.join(", ");
            q(&mut c, format!("DELETE FROM lava_results_app_actiondata WHERE testdata_id IN ({d})"));
            q(&mut c, format!("DELETE FROM lava_results_app_namedtestattribute WHERE content_type_id = (SELECT id FROM django_content_type WHERE app_label = 'lava_results_app' AND model = 'testdata') AND object_id IN ({d})"));
        }
        if !notifications.is_empty() {
            let n = notifications.join(", ");
            q(
                &mut c,
                format!(
                    "DELETE FROM lava_scheduler_app_notificationrecipient WHERE notification_id IN ({n})"
                ),
            );
        }
        q(&mut c, format!("DELETE FROM lava_scheduler_app_testjob_tags WHERE testjob_id IN ({id})"));
        q(
            &mut c,
            format!("DELETE FROM lava_scheduler_app_testjob_viewing_groups WHERE testjob_id IN ({id})"),
        );
        q(&mut c, format!("DELETE FROM lava_scheduler_app_testjob_failure_tags WHERE testjob_id IN ({id})"));
        q(&mut c, format!("DELETE FROM lava_scheduler_app_testjobuser WHERE test_job_id IN ({id})"));
        if !transitions.is_empty() {
            q(
                &mut c,
                format!(
                    "UPDATE lava_scheduler_app_devicestatetransition SET job_id = NULL WHERE id IN ({})",
                    transitions.join(", ")
                ),
            );
        }
        let quote = |v: &[String]| v.iter().map(|h| format!("'{h}'")).collect::<Vec<_>>().join(", ");
        if !current.is_empty() {
            q(
                &mut c,
                format!(
                    "UPDATE lava_scheduler_app_device SET current_job_id = NULL WHERE hostname IN ({})",
                    quote(&current)
                ),
            );
        }
        if !health.is_empty() {
            q(&mut c, format!("UPDATE lava_scheduler_app_device SET last_health_report_job_id = NULL WHERE hostname IN ({})", quote(&health)));
        }
        if !notifications.is_empty() {
            q(
                &mut c,
                format!(
                    "DELETE FROM lava_scheduler_app_notification WHERE id IN ({})",
                    notifications.join(", ")
                ),
            );
        }
        if !suites.is_empty() {
            q(&mut c, format!("DELETE FROM lava_results_app_testsuite WHERE id IN ({})", suites.join(", ")));
        }
        if !datas.is_empty() {
            q(&mut c, format!("DELETE FROM lava_results_app_testdata WHERE id IN ({})", datas.join(", ")));
        }
        q(&mut c, format!("DELETE FROM lava_scheduler_app_testjob WHERE id IN ({id})"));
        q(&mut c, "COMMIT".into());
    }
    jobs.len()
}

/// The hand-written optimal script: one transaction, the foreign keys into
/// testjob dropped and re-created around one DELETE per table.
fn optimal_sql(client: &mut postgres::Client) -> String {
    let fks = lava_v1_testkit::instance::testjob_fks(client);
    assert_eq!(fks.len(), TESTJOB_REFERENCES.len());
    let mut s = String::from(
        "BEGIN;\nCREATE TEMP TABLE v1 ON COMMIT DROP AS SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline;\nANALYZE v1;\n",
    );
    for (t, n, _) in &fks {
        s.push_str(&format!("ALTER TABLE {t} DROP CONSTRAINT {n};\n"));
    }
    s.push_str(
        "DELETE FROM lava_scheduler_app_testjob_tags x USING v1 WHERE x.testjob_id = v1.id;
DELETE FROM lava_scheduler_app_testjob_viewing_groups x USING v1 WHERE x.testjob_id = v1.id;
DELETE FROM lava_scheduler_app_testjob_failure_tags x USING v1 WHERE x.testjob_id = v1.id;
DELETE FROM lava_scheduler_app_testjobuser x USING v1 WHERE x.test_job_id = v1.id;
DELETE FROM lava_scheduler_app_notificationrecipient x USING lava_scheduler_app_notification n, v1 WHERE x.notification_id = n.id AND n.test_job_id = v1.id;
DELETE FROM lava_scheduler_app_notification x USING v1 WHERE x.test_job_id = v1.id;
UPDATE lava_scheduler_app_devicestatetransition x SET job_id = NULL FROM v1 WHERE x.job_id = v1.id;
UPDATE lava_scheduler_app_device x SET current_job_id = NULL FROM v1 WHERE x.current_job_id = v1.id;
UPDATE lava_scheduler_app_device x SET last_health_report_job_id = NULL FROM v1 WHERE x.last_health_report_job_id = v1.id;
DELETE FROM lava_results_app_namedtestattribute x USING lava_results_app_testdata d, v1 WHERE x.content_type_id = (SELECT id FROM django_content_type WHERE app_label = 'lava_results_app' AND model = 'testdata') AND x.object_id = d.id AND d.testjob_id = v1.id;
DELETE FROM lava_results_app_actiondata x USING lava_results_app_testdata d, v1 WHERE x.testdata_id = d.id AND d.testjob_id = v1.id;
DELETE FROM lava_results_app_actiondata x USING lava_results_app_testcase c, lava_results_app_testsuite s, v1 WHERE x.testcase_id = c.id AND c.suite_id = s.id AND s.job_id = v1.id;
DELETE FROM lava_results_app_testcase x USING lava_results_app_testsuite s, v1 WHERE x.suite_id = s.id AND s.job_id = v1.id;
DELETE FROM lava_results_app_testset x USING lava_results_app_testsuite s, v1 WHERE x.suite_id = s.id AND s.job_id = v1.id;
DELETE FROM lava_results_app_testsuite x USING v1 WHERE x.job_id = v1.id;
DELETE FROM lava_results_app_testdata x USING v1 WHERE x.testjob_id = v1.id;
DELETE FROM lava_scheduler_app_testjob x USING v1 WHERE x.id = v1.id;
",
    );
    for (t, n, d) in &fks {
        s.push_str(&format!("ALTER TABLE {t} ADD CONSTRAINT {n} {d};\n"));
    }
    s.push_str("COMMIT;\n");
    s
}

struct Bench {
    cluster: Cluster,
    dir: tempfile::TempDir,
    tool: PathBuf,
    me: PathBuf,
}

impl Bench {
    fn clone_db(&self, template: &str, name: &str) {
        self.cluster
            .client("postgres")
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template} OWNER {LAVA_ROLE}"))
            .unwrap();
    }

    fn drop_db(&self, name: &str) {
        self.cluster.client("postgres").batch_execute(&format!("DROP DATABASE {name}")).unwrap();
    }

    /// Runs `lava-v1 <args>` for database `db` and media root `media`;
    /// returns wall time and peak RSS in KiB.
    fn tool(&self, db: &str, media: &Path, args: &[&str]) -> (Duration, u64) {
        let conf = self.dir.path().join(format!("conf-{db}"));
        std::fs::create_dir_all(&conf).unwrap();
        let paths = write_config(&conf, &self.cluster, db);
        let rss = conf.join("rss");
        let started = Instant::now();
        let mut cmd = Command::new(&self.me);
        cmd.arg("--measure-rss").arg(&rss).arg("--");
        // LAVA_V1_BENCH_WRAP="strace -c -f -o /tmp/x" profiles the tool.
        if let Ok(wrap) = std::env::var("LAVA_V1_BENCH_WRAP") {
            cmd.args(wrap.split_whitespace());
        }
        let status = cmd
            .arg(&self.tool)
            .arg("--instance-conf")
            .arg(&paths.instance_conf)
            .arg("--media-root")
            .arg(media)
            .arg("--state-dir")
            .arg(&paths.state_dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        let took = started.elapsed();
        assert!(status.success(), "lava-v1 {args:?} failed");
        (took, std::fs::read_to_string(rss).unwrap().trim().parse().unwrap())
    }

    fn fingerprint(&self, db: &str) -> lava_v1_core::fingerprint::Fingerprint {
        lava_v1_core::fingerprint::v2(&mut self.cluster.client(db)).unwrap()
    }
}

fn cp_a(from: &Path, to: &Path) {
    let ok = Command::new("cp").arg("-a").arg(from).arg(to).status().is_ok_and(|s| s.success());
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

fn rm_rf(path: &Path) {
    let _ = Command::new("rm").arg("-rf").arg(path).status();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--measure-rss") {
        measure_rss_mode(&args[1..]);
    }
    let mut scales = Vec::new();
    let mut runs = 3;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--runs" {
            runs = it.next().and_then(|n| n.parse().ok()).expect("--runs N");
        } else {
            scales.push(a.parse::<u32>().expect("SCALE is a whole number"));
        }
    }
    if scales.is_empty() {
        scales = vec![10, 100];
    }
    let me = std::env::current_exe().expect("own path");
    let bench = Bench {
        cluster: Cluster::start(),
        dir: tempfile::Builder::new().prefix("lava-v1-bench.").tempdir().expect("temp dir"),
        tool: lava_v1_testkit::program("lava-v1"),
        me,
    };
    let mut admin = bench.cluster.client("postgres");
    let mut table = Vec::new();
    for scale in scales {
        let template = format!("bench_s{scale}");
        admin.batch_execute(&format!("CREATE DATABASE {template} OWNER {LAVA_ROLE}")).unwrap();
        let t = Instant::now();
        load(&bench.cluster, &template, &Seed { scale, media: false, django110_names: false });
        let mut c = bench.cluster.client(&template);
        c.batch_execute(
            "UPDATE lava_scheduler_app_testjob SET status = 4,
                 end_time = coalesce(end_time, submit_time + INTERVAL '40 minutes')
             WHERE NOT is_pipeline AND status IN (0, 1, 5)",
        )
        .unwrap();
        c.batch_execute("VACUUM ANALYZE").unwrap();
        let v1_jobs: i64 = c
            .query_one("SELECT count(*) FROM lava_scheduler_app_testjob WHERE NOT is_pipeline", &[])
            .unwrap()
            .get(0);
        let master = bench.dir.path().join(format!("media-{scale}"));
        write_media(&mut c, &master);
        drop(c);
        eprintln!(
            "scale {scale}: {v1_jobs} V1 jobs, seeded with media in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let empty = bench.dir.path().join("empty-media");
        std::fs::create_dir_all(&empty).unwrap();

        let only_full = std::env::var_os("LAVA_V1_BENCH_ONLY_FULL").is_some();
        if only_full {
            let db = "b_full";
            bench.clone_db(&template, db);
            let media = bench.dir.path().join("media-full");
            cp_a(&master, &media);
            let _ = Command::new("sync").status();
            let (t, rss) = bench.tool(db, &media, &["jobs", "rm", "--v1"]);
            println!("jobs rm with dirs: {:.2} s, {rss} KiB", t.as_secs_f64());
            return;
        }
        // LAVA's per-job statements: once (it is slow).
        bench.clone_db(&template, "b_django");
        let t = Instant::now();
        let n = django_per_job(&bench.cluster, "b_django");
        let django = t.elapsed();
        eprintln!("  per-job Django replay: {n} jobs in {:.1} s", django.as_secs_f64());
        let reference = bench.fingerprint("b_django");
        bench.drop_db("b_django");

        let sql_path = bench.dir.path().join("optimal.sql");
        let (mut sql_t, mut ours_t, mut ours_rss, mut full_t) = (vec![], vec![], 0, vec![]);
        for run in 0..runs {
            let db = format!("b_sql_{run}");
            bench.clone_db(&template, &db);
            std::fs::write(&sql_path, optimal_sql(&mut bench.cluster.client(&db))).unwrap();
            let t = Instant::now();
            let ok = Command::new("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
                .arg(bench.cluster.port.to_string())
                .args(["-U", LAVA_ROLE, "-d", &db, "-f"])
                .arg(&sql_path)
                .env("PGPASSWORD", LAVA_PASSWORD)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            sql_t.push(t.elapsed());
            assert!(ok, "the optimal SQL script failed");
            assert_eq!(
                reference.diff(&bench.fingerprint(&db)),
                Vec::<String>::new(),
                "SQL script result differs"
            );
            bench.drop_db(&db);

            let db = format!("b_ours_{run}");
            bench.clone_db(&template, &db);
            let (t, rss) = bench.tool(&db, &empty, &["jobs", "rm", "--v1"]);
            ours_t.push(t);
            ours_rss = ours_rss.max(rss);
            assert_eq!(
                reference.diff(&bench.fingerprint(&db)),
                Vec::<String>::new(),
                "lava-v1 result differs"
            );
            bench.drop_db(&db);
        }
        // With the output directories (one run: the copy is big).
        let full_rss = {
            let db = "b_full";
            bench.clone_db(&template, db);
            let media = bench.dir.path().join("media-full");
            cp_a(&master, &media);
            // Not the copy's writeback: the removal.
            let _ = Command::new("sync").status();
            let (t, rss) = bench.tool(db, &media, &["jobs", "rm", "--v1"]);
            full_t.push(t);
            bench.drop_db(db);
            rm_rf(&media);
            rss
        };
        // files rm against rm -rf, on fresh copies each run.
        let db = "b_files";
        bench.clone_db(&template, db);
        {
            let mut c = bench.cluster.client(db);
            c.batch_execute(&format!(
                "DROP MATERIALIZED VIEW query_1, query_2; ALTER TABLE lava_scheduler_app_testjob DROP COLUMN results_bundle_id;
                 DROP TABLE {}",
                V1_TABLES.join(", ")
            ))
            .unwrap();
        }
        let (mut files_t, mut rm_t, mut files_rss) = (vec![], vec![], 0);
        for run in 0..runs {
            let (a, b) = (bench.dir.path().join("media-a"), bench.dir.path().join("media-b"));
            std::fs::create_dir_all(&a).unwrap();
            std::fs::create_dir_all(&b).unwrap();
            for d in V1_MEDIA_DIRS {
                cp_a(&master.join(d), &a.join(d));
                cp_a(&master.join(d), &b.join(d));
            }
            let _ = Command::new("sync").status();
            let rm = |b: &Path| {
                let t = Instant::now();
                let ok = Command::new("rm")
                    .arg("-rf")
                    .args(V1_MEDIA_DIRS.iter().map(|d| b.join(d)))
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok);
                t.elapsed()
            };
            // Alternate which goes first.
            if run % 2 == 1 {
                rm_t.push(rm(&b));
            }
            let (t, rss) = bench.tool(db, &a, &["files", "rm"]);
            files_t.push(t);
            files_rss = files_rss.max(rss);
            if run % 2 == 0 {
                rm_t.push(rm(&b));
            }
            rm_rf(&a);
            rm_rf(&b);
        }
        bench.drop_db(db);
        rm_rf(&master);
        admin.batch_execute(&format!("DROP DATABASE {template}")).unwrap();

        let (sql, ours, full, files, rm) =
            (median(sql_t), median(ours_t), median(full_t), median(files_t), median(rm_t));
        let rate = |d: Duration| v1_jobs as f64 / d.as_secs_f64();
        table.push(format!(
            "| {scale} | {v1_jobs} | {:.1} s ({:.0}/s) | {:.2} s ({:.0}/s) | {:.2} s ({:.0}/s) | **{:.0}×** | **{:.2}×** | {:.2} s | {:.0} ms | {:.0} ms | **{:.2}×** | {:.1} / {:.1} / {:.1} MiB |",
            django.as_secs_f64(),
            rate(django),
            sql.as_secs_f64(),
            rate(sql),
            ours.as_secs_f64(),
            rate(ours),
            django.as_secs_f64() / ours.as_secs_f64(),
            ours.as_secs_f64() / sql.as_secs_f64(),
            full.as_secs_f64(),
            ms(files),
            ms(rm),
            files.as_secs_f64() / rm.as_secs_f64(),
            ours_rss as f64 / 1024.0,
            full_rss as f64 / 1024.0,
            files_rss as f64 / 1024.0,
        ));
    }
    println!("| scale | V1 jobs | per-job Django replay | optimal set-based SQL | lava-v1 jobs rm (DB) | vs Django | vs SQL | jobs rm with dirs | files rm | rm -rf | files vs rm | peak RSS (DB / with dirs / files) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in table {
        println!("{row}");
    }
}
