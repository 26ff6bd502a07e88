//! `lava-v1 drop`: the end state LAVA's 2017.12 migrations leave, reached
//! in one transaction, with nothing else changed.

use lava_v1_testkit::{Cluster, Instance, Seed};

use crate::util::*;

fn drop_yes(inst: &Instance<'_>) -> std::process::Output {
    run(inst, &["drop", "--yes"])
}

#[test]
fn drop_on_seeded_instance_leaves_2017_12_state() {
    let inst = ready(Cluster::shared(), Seed::default());
    let before = snapshot(&inst);
    assert_eq!(before.tables.len(), 45);
    assert!(before.tables.iter().all(|(_, n)| *n > 0), "every V1 table is seeded: {:?}", before.tables);
    assert!(before.column);
    assert_eq!(before.views, ["query_1", "query_2", "query_3"]);

    let out = drop_yes(&inst);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("45 dashboard_app tables dropped"), "{text}");
    assert!(text.contains("query_1, query_2"), "{text}");

    let after = snapshot(&inst);
    assert!(after.tables.is_empty(), "{:?}", after.tables);
    assert!(!after.column);
    assert_eq!(
        after.rows,
        [
            ("lava_scheduler_app".to_owned(), "0029_remove_testjob__results_bundle".to_owned()),
            ("dashboard_app".to_owned(), "0023_drop_dashboard_models".to_owned()),
        ]
    );
    // Only the views that read the column went; the test-case view stays
    // and still answers.
    assert_eq!(after.views, ["query_3"]);
    let mut c = inst.admin();
    let n: i64 = c.query_one("SELECT count(*) FROM query_3", &[]).unwrap().get(0);
    assert!(n > 0);
    assert_eq!(before.fingerprint.diff(&after.fingerprint), Vec::<String>::new());
    // No sequence of the dashboard tables is left behind.
    let seqs: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relkind = 'S' AND relname LIKE 'dashboard\\_app\\_%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(seqs, 0);
    // The migration rows come in order with increasing `applied`.
    let ordered: bool = c
        .query_one(
            "SELECT (SELECT applied FROM django_migrations WHERE name = '0029_remove_testjob__results_bundle')
                 <= (SELECT applied FROM django_migrations WHERE name = '0023_drop_dashboard_models')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ordered);

    // The journal recorded it, without the password.
    let journal = std::fs::read_to_string(inst.paths.state_dir.join("journal.log")).unwrap();
    assert!(journal.contains("drop: started") && journal.contains("drop: committed"), "{journal}");
    assert!(!journal.contains(lava_v1_testkit::cluster::LAVA_PASSWORD));
}

#[test]
fn second_drop_is_a_no_op_that_says_so() {
    let inst = ready(Cluster::shared(), Seed { media: false, ..Seed::default() });
    assert_success(&drop_yes(&inst));
    let once = snapshot(&inst);
    let out = drop_yes(&inst);
    assert_success(&out);
    assert!(stdout(&out).contains("Nothing to do"), "{}", stdout(&out));
    assert_eq!(once, snapshot(&inst));
    let json = run(&inst, &["drop", "--yes", "--json"]);
    assert_success(&json);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["outcome"], "already-done");
}

#[test]
fn drop_without_yes_refuses_and_changes_nothing() {
    let inst = ready(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let before = snapshot(&inst);
    let out = run(&inst, &["drop"]);
    assert_failure(&out, 2);
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_eq!(before, snapshot(&inst));
}

#[test]
fn drop_with_django_1_10_constraint_names() {
    let inst = ready(Cluster::shared(), Seed { media: false, django110_names: true, ..Seed::default() });
    let mut c = inst.admin();
    let fk: String = c
        .query_one(
            "SELECT conname::text FROM pg_constraint WHERE conrelid = 'lava_scheduler_app_testjob'::regclass
             AND contype = 'f' AND pg_get_constraintdef(oid) LIKE '%results_bundle_id%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(fk.starts_with('D') && fk.len() == 33, "{fk}");
    let before = snapshot(&inst);
    assert_success(&drop_yes(&inst));
    let after = snapshot(&inst);
    assert!(after.tables.is_empty() && !after.column);
    assert_eq!(before.fingerprint.diff(&after.fingerprint), Vec::<String>::new());
}

#[test]
fn drop_on_a_fresh_2017_10_install_without_v1_data() {
    let inst = ready(Cluster::shared(), Seed { scale: 0, media: false, django110_names: false });
    let before = snapshot(&inst);
    assert!(before.tables.iter().all(|(_, n)| *n == 0));
    let status = run(&inst, &["status", "--json"]);
    assert_success(&status);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["state"], "present");
    assert_success(&drop_yes(&inst));
    let after = snapshot(&inst);
    assert!(after.tables.is_empty() && !after.column);
    assert_eq!(after.rows.len(), 2);
    assert_eq!(before.fingerprint.diff(&after.fingerprint), Vec::<String>::new());
}

#[test]
fn drop_finishes_what_an_interrupted_lava_migrate_left() {
    // LAVA's migrate committed 0029 but died before recording it.
    let inst = ready(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let mut c = inst.admin();
    c.batch_execute(
        "DROP MATERIALIZED VIEW query_1; DROP MATERIALIZED VIEW query_2;
         ALTER TABLE lava_scheduler_app_testjob DROP COLUMN results_bundle_id CASCADE",
    )
    .unwrap();
    let before = snapshot(&inst);
    let status = run(&inst, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["state"], "partial");
    assert_success(&drop_yes(&inst));
    let after = snapshot(&inst);
    assert!(after.tables.is_empty());
    assert_eq!(after.rows.len(), 2);
    assert_eq!(before.fingerprint.diff(&after.fingerprint), Vec::<String>::new());

    // And the other way round: tables gone and 0023 recorded by hand, 0029 not.
    let inst = ready(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let mut c = inst.admin();
    c.batch_execute(
        "INSERT INTO django_migrations (app, name, applied)
         VALUES ('lava_scheduler_app', '0029_remove_testjob__results_bundle', now())",
    )
    .unwrap();
    assert_success(&drop_yes(&inst));
    let after = snapshot(&inst);
    assert!(after.tables.is_empty() && !after.column);
    assert_eq!(after.rows.len(), 2, "no duplicate row: {:?}", after.rows);
}

#[test]
fn drop_refuses_when_an_admin_object_depends_on_v1_data() {
    let inst = ready(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let mut c = inst.admin();
    c.batch_execute("CREATE VIEW my_bundle_report AS SELECT id, content_sha1 FROM dashboard_app_bundle")
        .unwrap();
    let before = snapshot(&inst);
    let out = drop_yes(&inst);
    assert_failure(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("my_bundle_report") && err.contains("nothing was changed"), "{err}");
    assert_eq!(before, snapshot(&inst));

    // A view that is not a LAVA query cache reading the column: same.
    c.batch_execute(
        "DROP VIEW my_bundle_report;
         CREATE MATERIALIZED VIEW job_bundles AS SELECT id, results_bundle_id FROM lava_scheduler_app_testjob",
    )
    .unwrap();
    let before = snapshot(&inst);
    let out = drop_yes(&inst);
    assert_failure(&out, 1);
    assert!(stderr(&out).contains("job_bundles"), "{}", stderr(&out));
    assert_eq!(before, snapshot(&inst));
    let status = stdout(&run(&inst, &["status"]));
    assert!(status.contains("job_bundles") && status.contains("blocks the drop"), "{status}");
}

#[test]
fn drop_refuses_outside_a_maintenance_window() {
    // The seed has jobs of every status and idle devices.
    let inst = lava_v1_testkit::Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let before = snapshot(&inst);
    let out = drop_yes(&inst);
    assert_failure(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("not ready to remove V1 data") && err.contains("nothing was changed"), "{err}");
    assert!(err.contains("(V1, running)") && err.contains("(idle)"), "{err}");
    assert!(err.contains("hint: declare a maintenance window"), "{err}");
    assert_eq!(before, snapshot(&inst));
    inst.enter_maintenance_window();
    assert_success(&drop_yes(&inst));
}
