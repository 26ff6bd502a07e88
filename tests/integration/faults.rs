//! Atomicity: a drop killed at any step, or stopped by a lock, changes
//! nothing, and a plain rerun finishes the job.

use std::time::{Duration, Instant};

use lava_v1_testkit::{Cluster, Seed};

use crate::util::*;

#[test]
fn sigkill_at_every_step_changes_nothing_and_a_rerun_completes() {
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let before = snapshot(&inst);
    for point in ["after-lock", "after-views", "after-column", "after-tables", "before-commit"] {
        let child = start_paused_at(&inst, &["drop", "--yes"], point);
        kill_run(&inst, child);
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
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
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
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let first = start_paused_at(&inst, &["drop", "--yes"], "after-lock");
    let out = run(&inst, &["drop", "--yes"]);
    assert_failure(&out, 1);
    let err = stderr(&out);
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    kill_run(&inst, first);
    assert_success(&run(&inst, &["drop", "--yes"]));
}
