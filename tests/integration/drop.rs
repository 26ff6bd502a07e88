//! `lava-v1 drop`: the end state LAVA's 2017.12 migrations leave, reached
//! in one transaction, with nothing else changed.

use lava_v1_testkit::{Cluster, Instance, Seed};

use crate::util::*;

fn drop_yes(inst: &Instance<'_>) -> std::process::Output {
    run(inst, &["drop", "--yes"])
}

#[test]
fn drop_on_seeded_instance_leaves_2017_12_state() {
    let inst = live(Cluster::shared(), Seed::default());
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
    assert!(journal.contains("drop: started") && journal.contains("drop: done: committed"), "{journal}");
    assert!(!journal.contains(lava_v1_testkit::cluster::LAVA_PASSWORD));
}

#[test]
fn second_drop_is_a_no_op_that_says_so() {
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
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
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let before = snapshot(&inst);
    let out = run(&inst, &["drop"]);
    assert_failure(&out, 2);
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_eq!(before, snapshot(&inst));
}

#[test]
fn drop_with_django_1_10_constraint_names() {
    let inst = live(Cluster::shared(), Seed { media: false, django110_names: true, ..Seed::default() });
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
    let inst = live(Cluster::shared(), Seed { scale: 0, media: false, django110_names: false });
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
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
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
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
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
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
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
    c.batch_execute("DROP MATERIALIZED VIEW job_bundles").unwrap();

    // Every other kind of object that would stop a DROP without CASCADE,
    // each named, each found before anything changes.
    for (make, name) in [
        ("CREATE TABLE my_notes (bundle int REFERENCES dashboard_app_bundle(id))", "my_notes"),
        (
            "CREATE TABLE my_log (id int); CREATE RULE my_copy AS ON INSERT TO my_log \
             DO ALSO DELETE FROM dashboard_app_bundle WHERE id = NEW.id",
            "my_copy",
        ),
        ("CREATE TABLE my_rows (b dashboard_app_bundle)", "my_rows"),
        (
            "CREATE FUNCTION my_touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'; \
             CREATE TRIGGER my_bundle_trigger AFTER UPDATE OF results_bundle_id ON lava_scheduler_app_testjob \
             FOR EACH ROW EXECUTE FUNCTION my_touch()",
            "my_bundle_trigger",
        ),
    ] {
        let mut tx = c.transaction().unwrap();
        tx.batch_execute(make).unwrap();
        tx.commit().unwrap();
        let before = snapshot(&inst);
        let pre = run(&inst, &["preflight", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&pre.stdout).unwrap();
        assert!(v["blockers"].to_string().contains(name), "{name}: {v}");
        let out = drop_yes(&inst);
        assert_failure(&out, 1);
        assert!(stderr(&out).contains(name) && stderr(&out).contains("nothing was changed"), "{}", stderr(&out));
        assert_eq!(before, snapshot(&inst), "{name}");
        c.batch_execute(
            "DROP TABLE IF EXISTS my_notes, my_log, my_rows; \
             DROP TRIGGER IF EXISTS my_bundle_trigger ON lava_scheduler_app_testjob; \
             DROP FUNCTION IF EXISTS my_touch()",
        )
        .unwrap();
    }
    assert_success(&drop_yes(&inst));
}

#[test]
fn drop_outside_a_maintenance_window_warns_and_goes_on() {
    // The seed is a live instance: jobs of every status, devices idle,
    // running and reserved.  The window is advice: the drop warns, naming
    // what is running, and goes on.
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let before = lava_v1_core::fingerprint::v2(&mut inst.admin()).unwrap();
    let out = drop_yes(&inst);
    assert_success(&out);
    let err = stderr(&out);
    assert!(err.contains("not in the maintenance window"), "{err}");
    assert!(
        err.contains("(V1, running)") && err.contains("(reserved)") && err.contains("(running)"),
        "{err}"
    );
    assert!(err.contains("safe while LAVA runs"), "{err}");
    let after = snapshot(&inst);
    assert!(after.tables.is_empty() && !after.column);
    let now = lava_v1_core::fingerprint::v2(&mut inst.admin()).unwrap();
    assert_eq!(before.diff(&now), Vec::<String>::new(), "V2 data changed");
}

#[test]
fn preflight_reports_the_window_rights_and_dependents_read_only() {
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let before = snapshot(&inst);
    // Outside the window: exit 1, every running job and online device named.
    let out = run(&inst, &["preflight"]);
    assert_failure(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("Maintenance window: no") && text.contains("(V1, running)"), "{text}");
    assert!(text.contains("Database rights for the drop: all present"), "{text}");
    let out = run(&inst, &["preflight", "--json"]);
    assert_failure(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["in_maintenance_window"], false);
    assert_eq!(v["ready"], true);
    assert!(v["unfinished_jobs_total"].as_i64().unwrap() > 0);
    assert!(v["online_devices"].as_array().unwrap().iter().any(|d| d["status"] == "reserved"), "{v}");
    assert_eq!(before, snapshot(&inst), "preflight is read-only");

    // A view of the admin's reading a V1 table, and a table it does not own.
    let mut c = inst.admin();
    c.batch_execute(
        "CREATE VIEW my_bundle_report AS SELECT id FROM dashboard_app_bundle;
         ALTER TABLE dashboard_app_testrun OWNER TO postgres",
    )
    .unwrap();
    let out = run(&inst, &["preflight", "--json"]);
    assert_failure(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ready"], false);
    assert!(v["blockers"][0].as_str().unwrap().contains("my_bundle_report"), "{v}");
    assert!(v["missing_rights"][0].as_str().unwrap().contains("dashboard_app_testrun"), "{v}");
    c.batch_execute("DROP VIEW my_bundle_report; ALTER TABLE dashboard_app_testrun OWNER TO lavaserver")
        .unwrap();

    // In the window: exit 0.
    inst.enter_maintenance_window();
    let out = run(&inst, &["preflight"]);
    assert_success(&out);
    assert!(stdout(&out).contains("Ready: the upgrade can remove the V1 data now"), "{}", stdout(&out));
}
