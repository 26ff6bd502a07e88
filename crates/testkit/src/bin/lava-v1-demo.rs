//! Runs the V1 removal on a throwaway LAVA 2017.10 instance: starts a
//! private PostgreSQL cluster, seeds it (scale 1 by default: 1,000 jobs,
//! about 15,000 V1 results, with media), then runs `lava-v1 status`,
//! `lava-v1 drop --yes` and `lava-v1 status` against it, and removes
//! everything again.
//!
//! Usage: lava-v1-demo [SCALE]

#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use lava_v1_testkit::{Cluster, Instance, Seed};

fn lava_v1() -> PathBuf {
    lava_v1_testkit::program("lava-v1")
}

fn main() -> ExitCode {
    let scale: u32 = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 1,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("usage: lava-v1-demo [SCALE]  (SCALE: a whole number, 1 = 1,000 jobs)");
            return ExitCode::from(2);
        }
    };
    let tool = lava_v1();
    eprintln!(
        "== starting a throwaway PostgreSQL cluster and seeding a LAVA 2017.10 instance (scale {scale})"
    );
    let cluster = Cluster::start();
    let inst = Instance::new(&cluster, Seed { scale, media: true, django110_names: false });
    eprintln!("   a live instance: devices online, V1 and V2 jobs still running (no maintenance window)");
    eprintln!("   instance.conf: {}", inst.paths.instance_conf.display());
    eprintln!("   media root:    {}", inst.media_root().display());
    for args in [&["status"][..], &["drop", "--yes"][..], &["status"][..]] {
        eprintln!("\n== lava-v1 {}", args.join(" "));
        let status = inst.lava_v1(&tool).args(args).status().expect("run lava-v1");
        if !status.success() {
            eprintln!("lava-v1-demo: `lava-v1 {}` failed ({status})", args.join(" "));
            return ExitCode::FAILURE;
        }
    }
    let journal = lava_v1_core::state::StateDir::new(&inst.paths.state_dir).journal_path();
    eprintln!("\n== journal ({})", journal.display());
    eprint!("{}", std::fs::read_to_string(&journal).unwrap_or_default());
    ExitCode::SUCCESS
}
