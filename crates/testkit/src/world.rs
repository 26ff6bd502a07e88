//! The whole state of an instance's database, to compare two instances (or
//! one instance at two moments) exactly: every row of every table and
//! materialized view, every sequence, and the schema (columns,
//! constraints, indexes, views).  And the reference rules of LAVA's
//! `jobs rm --v1`, applied naively, as the oracle for what it must leave.

use std::collections::BTreeMap;

/// Every row of every table and materialized view of the public schema,
/// as text, sorted, by relation.  `django_migrations` rows are written as
/// `app.name` (their ids and times differ between two runs that did the
/// same).
pub fn all_rows(client: &mut postgres::Client) -> BTreeMap<String, Vec<String>> {
    let names: Vec<String> = client
        .query(
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace
             AND relkind IN ('r', 'm') ORDER BY 1",
            &[],
        )
        .expect("list the relations")
        .iter()
        .map(|r| r.get(0))
        .collect();
    names
        .into_iter()
        .map(|n| {
            let expr = if n == "django_migrations" { "x.app || '.' || x.name" } else { "x::text" };
            let rows: Vec<String> = client
                .query(&format!("SELECT {expr} FROM {n} x ORDER BY 1"), &[])
                .unwrap_or_else(|e| panic!("read {n}: {e}"))
                .iter()
                .map(|r| r.get(0))
                .collect();
            (n, rows)
        })
        .collect()
}

/// The V1 tables (`dashboard_app_*`) of the public schema, sorted.
pub fn v1_table_names(client: &mut postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace
             AND relkind = 'r' AND relname LIKE 'dashboard\\_app\\_%' ORDER BY 1",
            &[],
        )
        .expect("list the V1 tables")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Names of the relations whose rows differ.
pub fn differing(a: &BTreeMap<String, Vec<String>>, b: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names.into_iter().filter(|n| a.get(*n) != b.get(*n)).cloned().collect()
}

/// Everything in a database: rows, sequences, schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    /// [`all_rows`].
    pub rows: BTreeMap<String, Vec<String>>,
    /// Sequence → `last_value:is_called`, except `django_migrations_id_seq`
    /// (`nextval` is not transactional: a rolled-back attempt moves it).
    pub sequences: BTreeMap<String, String>,
    /// One line per column, constraint, index and view definition, sorted.
    pub schema: Vec<String>,
}

impl World {
    /// Reads it.
    pub fn read(client: &mut postgres::Client) -> World {
        let sequences = client
            .query(
                "SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
                   AND c.relname <> 'django_migrations_id_seq' ORDER BY 1",
                &[],
            )
            .expect("list the sequences")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|s| {
                let v: String = client
                    .query_one(&format!("SELECT last_value::text || ':' || is_called::text FROM {s}"), &[])
                    .unwrap_or_else(|e| panic!("read {s}: {e}"))
                    .get(0);
                (s, v)
            })
            .collect();
        let schema = client
            .query(
                "WITH t AS (SELECT oid, relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace)
                 SELECT 'col ' || t.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                        || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
                 FROM t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
                 LEFT JOIN pg_attrdef d ON d.adrelid = t.oid AND d.adnum = a.attnum
                 WHERE t.relkind IN ('r', 'p', 'v', 'm')
                 UNION ALL
                 SELECT 'con ' || t.relname || '.' || con.conname || ' ' || pg_get_constraintdef(con.oid)
                 FROM t JOIN pg_constraint con ON con.conrelid = t.oid
                 UNION ALL
                 SELECT 'idx ' || pg_get_indexdef(i.indexrelid) FROM t JOIN pg_index i ON i.indrelid = t.oid
                 UNION ALL
                 SELECT 'view ' || t.relname || ' ' || pg_get_viewdef(t.oid) FROM t WHERE t.relkind IN ('v', 'm')
                 ORDER BY 1",
                &[],
            )
            .expect("read the schema")
            .iter()
            .map(|r| r.get(0))
            .collect();
        World { rows: all_rows(client), sequences, schema }
    }

    /// The same, with the foreign keys into the job table counted as
    /// validated whether they are or not: between its batches, and after a
    /// kill until a rerun ends, `jobs rm` leaves them `NOT VALID` (same
    /// definition, enforced for every row written).
    pub fn with_testjob_fks_validated(&self) -> World {
        let mut schema: Vec<String> = self
            .schema
            .iter()
            .map(|l| match l.strip_suffix(" NOT VALID") {
                Some(d)
                    if l.starts_with("con ") && l.contains("REFERENCES lava_scheduler_app_testjob(id)") =>
                {
                    d.to_owned()
                }
                _ => l.clone(),
            })
            .collect();
        schema.sort();
        World { schema, ..self.clone() }
    }

    /// What differs from `other`, named, for messages.
    pub fn diff(&self, other: &World) -> Vec<String> {
        let mut out: Vec<String> =
            differing(&self.rows, &other.rows).into_iter().map(|t| format!("rows of {t}")).collect();
        let mut names: Vec<&String> = self.sequences.keys().chain(other.sequences.keys()).collect();
        names.sort();
        names.dedup();
        for s in names {
            if self.sequences.get(s) != other.sequences.get(s) {
                out.push(format!("sequence {s}"));
            }
        }
        if self.schema != other.schema {
            let a: std::collections::BTreeSet<_> = self.schema.iter().collect();
            let b: std::collections::BTreeSet<_> = other.schema.iter().collect();
            out.extend(a.symmetric_difference(&b).take(3).map(|l| format!("schema: {l}")));
        }
        out
    }
}

/// The rules of LAVA's `jobs rm --v1` (the reference's §6), applied
/// naively in one transaction with every foreign key in force, to the V1
/// jobs matching the SQL condition `filter`: if anything pointing at a
/// deleted row were forgotten, the COMMIT would fail.  Written apart from
/// the tool's own statements, as the oracle they are checked against.
pub const JOBS_RM_REFERENCE: &str = "BEGIN;
CREATE TEMP TABLE v1 AS SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline AND {FILTER};
-- many-to-many rows are deleted
DELETE FROM lava_scheduler_app_testjob_tags WHERE testjob_id IN (SELECT id FROM v1);
DELETE FROM lava_scheduler_app_testjob_viewing_groups WHERE testjob_id IN (SELECT id FROM v1);
DELETE FROM lava_scheduler_app_testjob_failure_tags WHERE testjob_id IN (SELECT id FROM v1);
-- testjobuser: CASCADE
DELETE FROM lava_scheduler_app_testjobuser WHERE test_job_id IN (SELECT id FROM v1);
-- notification: CASCADE, and its recipients CASCADE
DELETE FROM lava_scheduler_app_notificationrecipient
 WHERE notification_id IN (SELECT id FROM lava_scheduler_app_notification WHERE test_job_id IN (SELECT id FROM v1));
DELETE FROM lava_scheduler_app_notification WHERE test_job_id IN (SELECT id FROM v1);
-- SET NULL
UPDATE lava_scheduler_app_devicestatetransition SET job_id = NULL WHERE job_id IN (SELECT id FROM v1);
UPDATE lava_scheduler_app_device SET current_job_id = NULL WHERE current_job_id IN (SELECT id FROM v1);
UPDATE lava_scheduler_app_device SET last_health_report_job_id = NULL
 WHERE last_health_report_job_id IN (SELECT id FROM v1);
-- lava_results_app: suites -> sets, cases -> action data; test data -> action data, its attributes
CREATE TEMP TABLE suites AS SELECT id FROM lava_results_app_testsuite WHERE job_id IN (SELECT id FROM v1);
CREATE TEMP TABLE sets AS SELECT id FROM lava_results_app_testset WHERE suite_id IN (SELECT id FROM suites);
CREATE TEMP TABLE cases AS SELECT id FROM lava_results_app_testcase
 WHERE suite_id IN (SELECT id FROM suites) OR test_set_id IN (SELECT id FROM sets);
CREATE TEMP TABLE datas AS SELECT id FROM lava_results_app_testdata WHERE testjob_id IN (SELECT id FROM v1);
DELETE FROM lava_results_app_actiondata
 WHERE testcase_id IN (SELECT id FROM cases) OR testdata_id IN (SELECT id FROM datas);
DELETE FROM lava_results_app_namedtestattribute WHERE object_id IN (SELECT id FROM datas)
 AND content_type_id = (SELECT id FROM django_content_type WHERE app_label = 'lava_results_app' AND model = 'testdata');
DELETE FROM lava_results_app_testcase WHERE id IN (SELECT id FROM cases);
DELETE FROM lava_results_app_testset WHERE id IN (SELECT id FROM sets);
DELETE FROM lava_results_app_testsuite WHERE id IN (SELECT id FROM suites);
DELETE FROM lava_results_app_testdata WHERE id IN (SELECT id FROM datas);
DELETE FROM lava_scheduler_app_testjob WHERE id IN (SELECT id FROM v1);
COMMIT;";

/// Applies [`JOBS_RM_REFERENCE`] to the V1 jobs matching `filter`.
pub fn apply_jobs_rm_reference(client: &mut postgres::Client, filter: &str) {
    client
        .batch_execute(&JOBS_RM_REFERENCE.replace("{FILTER}", filter))
        .expect("the jobs rm reference rules");
}
