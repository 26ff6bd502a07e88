//! Atomicity: a drop killed at any step, or stopped by a lock, changes
//! nothing, and a plain rerun finishes the job.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use lava_v1_testkit::{Cluster, Instance, Seed};

use crate::util::*;

/// Starts `lava-v1 drop --yes` paused at `point`; returns once it is there.
fn start_paused(inst: &Instance<'_>, point: &str) -> std::process::Child {
    let mut child = command(inst)
        .args(["drop", "--yes"])
        .env("LAVA_V1_FAULT_PAUSE", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                let done = line.contains(&format!("paused at {point}"));
                seen.push(line);
                if done {
                    break;
                }
            }
            _ => panic!("lava-v1 ended before reaching {point}: {seen:?} ({:?})", child.wait()),
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// Waits until the killed client's backend has gone (and rolled back).
fn wait_for_backend_exit(inst: &Instance<'_>) {
    let mut c = inst.admin();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'lava-v1'",
                &[&inst.db_name],
            )
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the killed run's backend is still there");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigkill_at_every_step_changes_nothing_and_a_rerun_completes() {
    let inst = ready(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let before = snapshot(&inst);
    for point in ["after-lock", "after-views", "after-column", "after-tables", "before-commit"] {
        let mut child = start_paused(&inst, point);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGKILL)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        wait_for_backend_exit(&inst);
        assert_eq!(before, snapshot(&inst), "the database changed after a kill at {point}");
    }
    // The kernel released the state lock with the process: a rerun runs.
    let out = run(&inst, &["drop", "--yes"]);
    assert_success(&out);
    let after = snapshot(&inst);
    assert!(after.tables.is_empty() && !after.column && after.rows.len() == 2);
    assert_eq!(before.fingerprint.diff(&after.fingerprint), Vec::<String>::new());
}

#[test]
fn a_held_lock_times_out_cleanly() {
    let inst = ready(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let before = snapshot(&inst);
    // Another session (say, LAVA's scheduler) reads a V1 table in an open
    // transaction.
    let mut other = inst.admin();
    let mut tx = other.transaction().unwrap();
    tx.batch_execute("SELECT count(*) FROM dashboard_app_testrun").unwrap();
    let started = Instant::now();
    let out = run(&inst, &["drop", "--yes", "--lock-timeout", "1"]);
    assert_failure(&out, 1);
    assert!(started.elapsed() < Duration::from_secs(20));
    let err = stderr(&out);
    assert!(err.contains("timed out") && err.contains("nothing was changed"), "{err}");
    tx.rollback().unwrap();
    assert_eq!(before, snapshot(&inst));
    let journal = std::fs::read_to_string(inst.paths.state_dir.join("journal.log")).unwrap();
    assert!(journal.contains("FAILED"), "{journal}");
    // With the other session gone, the same command completes.
    assert_success(&run(&inst, &["drop", "--yes", "--lock-timeout", "1"]));
}

#[test]
fn a_second_run_refuses_while_the_first_works() {
    let inst = ready(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let mut first = start_paused(&inst, "after-lock");
    let out = run(&inst, &["drop", "--yes"]);
    assert_failure(&out, 1);
    let err = stderr(&out);
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    first.kill().unwrap();
    first.wait().unwrap();
    wait_for_backend_exit(&inst);
    assert_success(&run(&inst, &["drop", "--yes"]));
}
