//! The hand-written baselines the benchmarks measure `lava-v1` against:
//! what an expert would type into `psql`, knowing the schema.

use lava_v1_core::jobs::TESTJOB_REFERENCES;
use lava_v1_core::schema::V1_TABLES;

/// LAVA 2017.12's two migrations as one transaction of DDL: the query
/// caches reading `results_bundle_id`, the column with its foreign key, the
/// 45 V1 tables, and both `django_migrations` rows (the fixture's names).
pub fn drop_sql() -> String {
    format!(
        "BEGIN;
DROP MATERIALIZED VIEW query_1, query_2;
ALTER TABLE lava_scheduler_app_testjob DROP CONSTRAINT lava_scheduler_app_t_results_bundle_id_93c0e8a9_fk_dashboard;
ALTER TABLE lava_scheduler_app_testjob DROP COLUMN results_bundle_id;
INSERT INTO django_migrations (app, name, applied) VALUES ('lava_scheduler_app', '0029_remove_testjob__results_bundle', clock_timestamp());
DROP TABLE {};
INSERT INTO django_migrations (app, name, applied) VALUES ('dashboard_app', '0023_drop_dashboard_models', clock_timestamp());
COMMIT;
",
        V1_TABLES.join(", ")
    )
}

/// The optimal set-based `jobs rm --v1`, the limit `lava-v1 jobs rm` is
/// measured against: one transaction, the ten foreign keys into
/// `lava_scheduler_app_testjob` dropped and re-created around one DELETE
/// per table.  The constraint names are read from `client`'s database.
pub fn jobs_rm_sql(client: &mut postgres::Client) -> String {
    let fks = crate::instance::testjob_fks(client);
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
