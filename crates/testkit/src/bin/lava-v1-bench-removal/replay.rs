//! The baseline `jobs rm` is measured against: LAVA's own command, a
//! per-job replay of the statements Django 1.11's collector issues for
//! `TestJob.delete()` (SELECTs of the SET NULL and cascading relations,
//! fast DELETEs of the join tables, UPDATEs, the DELETE), each job in its
//! own transaction, sent as psycopg2 sends them (parameters inlined, simple
//! protocol, over TCP with a password).  No ORM time, so it is a *lower*
//! bound on LAVA's real time.

use lava_v1_testkit::cluster::{LAVA_PASSWORD, LAVA_ROLE};
use lava_v1_testkit::Cluster;

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
pub(crate) fn django_per_job(cluster: &Cluster, db: &str) -> usize {
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
