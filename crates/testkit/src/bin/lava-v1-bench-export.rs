//! Benchmark of `lava-v1 export` against `pg_dump -Fc` of the same 45 V1
//! tables (target: within 2x), with peak RSS (target: under 64 MiB), on
//! the same seeded 2017.10 database and media tree, in the same run (see
//! `lava_v1_testkit::bench_export`).
//!
//! Usage: lava-v1-bench-export [SCALE...] [--runs N]   (default: 10 100, 3 runs)

#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::time::Instant;

use lava_v1_testkit::bench_export::measure;
use lava_v1_testkit::cluster::LAVA_ROLE;
use lava_v1_testkit::instance::{load, write_media};
use lava_v1_testkit::measure::measure_rss_mode;
use lava_v1_testkit::{Cluster, Seed};

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
    let cluster = Cluster::start();
    let work = tempfile::Builder::new().prefix("lava-v1-bench-export.").tempdir().expect("temp dir");
    let lava_v1 = lava_v1_testkit::program("lava-v1");
    let mut rows = Vec::new();
    for scale in scales {
        let db = format!("bench_export_s{scale}");
        cluster.client("postgres").batch_execute(&format!("CREATE DATABASE {db} OWNER {LAVA_ROLE}")).unwrap();
        let t = Instant::now();
        load(&cluster, &db, &Seed { scale, media: false, django110_names: false });
        cluster.client(&db).batch_execute("VACUUM ANALYZE").unwrap();
        let media = work.path().join(format!("media-{scale}"));
        write_media(&mut cluster.client(&db), &media);
        eprintln!("scale {scale}: seeded in {:.1} s", t.elapsed().as_secs_f64());
        let b = measure(&cluster, &db, &media, work.path(), &lava_v1, &me, runs);
        eprintln!("scale {scale}: {b:?}");
        rows.push(format!(
            "| {scale} | {} | {} | {:.2} s ({:.1} MiB) | {:.2} s ({:.1} MiB, {} files) | {:.2}× | {:.1} / {:.1} MiB |",
            b.v1_rows,
            b.bundles,
            b.pg_dump.as_secs_f64(),
            b.dump_bytes as f64 / 1048576.0,
            b.export.as_secs_f64(),
            b.export_bytes as f64 / 1048576.0,
            b.media_files,
            b.ratio(),
            b.export_rss_kib as f64 / 1024.0,
            b.pg_dump_rss_kib as f64 / 1024.0,
        ));
        cluster.client("postgres").batch_execute(&format!("DROP DATABASE {db}")).unwrap();
    }
    println!("| scale | V1 rows | V1 bundles | pg_dump -Fc (archive) | lava-v1 export (file) | ratio | peak RSS (export / pg_dump) |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
