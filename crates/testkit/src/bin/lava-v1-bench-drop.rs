//! Benchmark of `lava-v1 drop`: for each scale, seeds one template, clones
//! it into identical databases, and times `lava-v1 drop --yes` against a
//! hand-written single-transaction SQL script doing the same DDL through
//! `psql` (both connect over TCP with a password, both are whole
//! processes).  Runs alternate; the medians and their ratio are printed.
//!
//! Usage: lava-v1-bench-drop [SCALE...] [--runs N]   (default: 10 100, 3 runs)

#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use lava_v1_testkit::cluster::{LAVA_PASSWORD, LAVA_ROLE};
use lava_v1_testkit::instance::{load, write_config};
use lava_v1_testkit::measure::median;
use lava_v1_testkit::{Cluster, Seed};

fn main() {
    let mut scales = Vec::new();
    let mut runs = 3;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--runs" {
            runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N");
        } else {
            scales.push(a.parse::<u32>().expect("SCALE is a whole number"));
        }
    }
    if scales.is_empty() {
        scales = vec![10, 100];
    }
    let tool: PathBuf = lava_v1_testkit::program("lava-v1");
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let sql_path = dir.path().join("baseline.sql");
    std::fs::write(&sql_path, lava_v1_testkit::baseline::drop_sql()).expect("write baseline.sql");
    let mut admin = cluster.client("postgres");
    println!("{:>6} {:>12} {:>12} {:>8}", "scale", "lava-v1 ms", "baseline ms", "ratio");
    for scale in scales {
        let template = format!("bench_s{scale}");
        admin.batch_execute(&format!("CREATE DATABASE {template} OWNER {LAVA_ROLE}")).unwrap();
        let seeded = Instant::now();
        load(&cluster, &template, &Seed { scale, media: false, django110_names: false });
        cluster.client(&template).batch_execute(lava_v1_testkit::instance::MAINTENANCE_WINDOW_SQL).unwrap();
        eprintln!("seeded scale {scale} in {:.1} s", seeded.elapsed().as_secs_f64());
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for run in 0..runs {
            for which in ["ours", "baseline"] {
                let db = format!("bench_s{scale}_{which}_{run}");
                admin
                    .batch_execute(&format!("CREATE DATABASE {db} TEMPLATE {template} OWNER {LAVA_ROLE}"))
                    .unwrap();
                let conf_dir = dir.path().join(&db);
                std::fs::create_dir_all(&conf_dir).unwrap();
                let paths = write_config(&conf_dir, &cluster, &db);
                let started = Instant::now();
                let status = if which == "ours" {
                    Command::new(&tool)
                        .arg("--instance-conf")
                        .arg(&paths.instance_conf)
                        .arg("--state-dir")
                        .arg(&paths.state_dir)
                        .args(["drop", "--yes"])
                        .env("RUST_LOG", "warn")
                        .stdout(Stdio::null())
                        .status()
                } else {
                    Command::new("psql")
                        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
                        .arg(cluster.port.to_string())
                        .args(["-U", LAVA_ROLE, "-d", &db, "-f"])
                        .arg(&sql_path)
                        .env("PGPASSWORD", LAVA_PASSWORD)
                        .stdout(Stdio::null())
                        .status()
                }
                .expect("run the drop");
                let took = started.elapsed();
                assert!(status.success(), "{which} failed at scale {scale}");
                if which == "ours" {
                    ours.push(took)
                } else {
                    base.push(took)
                }
                admin.batch_execute(&format!("DROP DATABASE {db}")).unwrap();
            }
        }
        let (o, b) = (median(ours), median(base));
        println!(
            "{scale:>6} {:>12.1} {:>12.1} {:>7.2}x",
            o.as_secs_f64() * 1000.0,
            b.as_secs_f64() * 1000.0,
            o.as_secs_f64() / b.as_secs_f64()
        );
        admin.batch_execute(&format!("DROP DATABASE {template}")).unwrap();
    }
}
