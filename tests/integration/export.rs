//! `lava-v1 export`: the V1 results in one SQLite file, equal row by row
//! to the database, with views that answer the usual questions, safe on a
//! hostile media tree, never under its final name unless complete.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lava_v1_core::export::{self, ExportOptions};
use lava_v1_core::schema::V1_TABLES;
use lava_v1_testkit::{Cluster, Instance, Seed};
use rusqlite::types::Value;

use crate::util::{assert_success, kill_run, run, start_paused_at, stderr, stdout};

/// Exports `inst` to `dir/v1.sqlite` with the real binary.
fn export_to(inst: &Instance<'_>, dir: &Path) -> PathBuf {
    let file = dir.join("v1.sqlite");
    let out = run(inst, &["export", "--output", file.to_str().unwrap()]);
    assert_success(&out);
    assert!(stdout(&out).contains(&file.display().to_string()), "{}", stdout(&out));
    file
}

fn open(file: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// A row as text, NULL as `None`.
type Row = Vec<Option<String>>;

/// A value of the export as text, the way the comparison writes the
/// database's: timestamps as PostgreSQL prints them in UTC.
fn text(v: Value, pg_type: &str) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(f) => Some(f.to_string()),
        Value::Blob(b) => Some(b.iter().map(|x| format!("{x:02x}")).collect()),
        Value::Text(t) if pg_type == "timestamptz" => Some(pg_timestamp(&t)),
        Value::Text(t) => Some(t),
    }
}

/// `2016-03-04T12:34:56.120000Z` → `2016-03-04 12:34:56.12+00`, as
/// PostgreSQL prints a timestamptz in UTC.
/// `infinity` and `-infinity` are kept as they are.
fn pg_timestamp(iso: &str) -> String {
    if iso.ends_with("infinity") {
        return iso.to_owned();
    }
    let body = iso.strip_suffix('Z').unwrap_or_else(|| panic!("not UTC: {iso:?}"));
    let (date, time) = body.split_once('T').unwrap_or_else(|| panic!("not ISO 8601: {iso:?}"));
    let time = match time.split_once('.') {
        Some((hms, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                hms.to_owned()
            } else {
                format!("{hms}.{frac}")
            }
        }
        None => time.to_owned(),
    };
    format!("{date} {time}+00")
}

/// Every row of `table` in the database, each column as text (booleans
/// 0/1), ordered by its primary key; and the column types.
fn pg_rows(client: &mut postgres::Client, table: &str) -> (Vec<(String, String)>, Vec<Row>) {
    client.batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'").unwrap();
    let cols: Vec<(String, String)> = client
        .query(
            "SELECT a.attname::text, t.typname::text FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&table],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let select: Vec<String> = cols
        .iter()
        .map(|(c, t)| if t == "bool" { format!("(\"{c}\"::int)::text") } else { format!("\"{c}\"::text") })
        .collect();
    // Ordered by the table's columns, not the text the query makes of them.
    let order = pk(client, table).split(", ").map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ");
    let rows = client
        .query(&format!("SELECT {} FROM {table} t ORDER BY {order}", select.join(", ")), &[])
        .unwrap()
        .iter()
        .map(|r| (0..cols.len()).map(|i| r.get::<_, Option<String>>(i)).collect())
        .collect();
    (cols, rows)
}

fn pk(client: &mut postgres::Client, table: &str) -> String {
    let cols: Vec<String> = client
        .query(
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
             AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::text::regclass AND i.indisprimary",
            &[&table],
        )
        .unwrap()
        .iter()
        .map(|r| format!("\"{}\"", r.get::<_, String>(0)))
        .collect();
    assert!(!cols.is_empty(), "{table} has no primary key");
    cols.join(", ")
}

fn sqlite_rows(conn: &rusqlite::Connection, sql: &str, types: &[String]) -> Vec<Row> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| text(r.get::<_, Value>(i).unwrap(), types.get(i).map_or("", |t| t.as_str())))
            .collect())
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

fn query_texts(conn: &rusqlite::Connection, sql: &str) -> Vec<Vec<Option<String>>> {
    sqlite_rows(conn, sql, &[])
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn export_equals_the_database_row_by_row() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    // Timestamps of every form PostgreSQL has, infinite ones included.
    inst.admin()
        .batch_execute(
            "UPDATE dashboard_app_testresult SET \"timestamp\" = 'infinity'
             WHERE id = (SELECT min(id) FROM dashboard_app_testresult);
             UPDATE dashboard_app_testresult SET \"timestamp\" = '-infinity'
             WHERE id = (SELECT max(id) FROM dashboard_app_testresult);
             UPDATE dashboard_app_testresult SET \"timestamp\" = '2016-03-04 12:34:56+00'
             WHERE id = (SELECT min(id) + 1 FROM dashboard_app_testresult);
             UPDATE lava_scheduler_app_testjob SET end_time = 'infinity'
             WHERE id = (SELECT min(id) FROM lava_scheduler_app_testjob WHERE NOT is_pipeline AND end_time IS NOT NULL)",
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = export_to(&inst, dir.path());
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!dir.path().join("v1.sqlite.incomplete").exists());
    let conn = open(&file);
    let mut client = inst.admin();

    // Every V1 table, every row, every column.
    for table in V1_TABLES {
        let (cols, want) = pg_rows(&mut client, table);
        let names: Vec<String> = cols.iter().map(|(c, _)| format!("\"{c}\"")).collect();
        let types: Vec<String> = cols.iter().map(|(_, t)| t.clone()).collect();
        let got = sqlite_rows(
            &conn,
            &format!("SELECT {} FROM \"{table}\" ORDER BY {}", names.join(", "), pk(&mut client, table)),
            &types,
        );
        assert_eq!(got.len(), want.len(), "{table}: rows");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{table}: a row differs");
        }
        let recorded: String = conn
            .query_row(
                "SELECT value FROM export_info WHERE key = ?1",
                [format!("source_rows.{table}")],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(recorded, want.len().to_string(), "{table}");
    }

    // The V1 jobs, with names instead of ids, and nothing of V2.
    client.batch_execute("SET TimeZone = 'UTC'").unwrap();
    let want: Vec<Vec<Option<String>>> = client
        .query(
            "SELECT j.id::text, u.username::text, j.actual_device_id::text,
                    coalesce(d.device_type_id, j.requested_device_type_id)::text, j.submit_time::text,
                    j.end_time::text, j.definition, j.results_bundle_id::text, j.status::text
             FROM lava_scheduler_app_testjob j JOIN auth_user u ON u.id = j.submitter_id
             LEFT JOIN lava_scheduler_app_device d ON d.hostname = j.actual_device_id
             WHERE NOT j.is_pipeline ORDER BY j.id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (0..9).map(|i| r.get::<_, Option<String>>(i)).collect())
        .collect();
    assert!(want.len() > 100, "{}", want.len());
    let types: Vec<String> =
        ["", "", "", "", "timestamptz", "timestamptz", "", "", ""].iter().map(|t| t.to_string()).collect();
    let got = sqlite_rows(
        &conn,
        "SELECT id, submitter, actual_device, device_type, submit_time, end_time, definition,
                results_bundle_id, status FROM testjob ORDER BY id",
        &types,
    );
    assert_eq!(got, want, "the V1 jobs");
    let tags: i64 = client
        .query_one(
            "SELECT count(*) FROM lava_scheduler_app_testjob_tags t JOIN lava_scheduler_app_testjob j
             ON j.id = t.testjob_id WHERE NOT j.is_pipeline",
            &[],
        )
        .unwrap()
        .get(0);
    let have: i64 = conn.query_row("SELECT count(*) FROM testjob_tag", [], |r| r.get(0)).unwrap();
    assert_eq!(have, tags);

    // No personal column beyond the user name: no password hash or
    // e-mail address of anyone anywhere in the file.
    let bytes = std::fs::read(&file).unwrap();
    let haystack = String::from_utf8_lossy(&bytes);
    for r in client.query("SELECT password, email FROM auth_user", &[]).unwrap() {
        for i in 0..2 {
            let secret: String = r.get(i);
            assert!(!haystack.contains(&secret), "{secret} is in the export");
        }
    }

    // The media: plain bundles as they are, compressed ones decompressed,
    // a broken gzip kept as it is, missing files listed.
    let media = inst.media_root();
    let mut checked = 0;
    for r in
        client.query("SELECT id, content, gz_content FROM dashboard_app_bundle ORDER BY id", &[]).unwrap()
    {
        let id: i32 = r.get(0);
        let (plain, gz): (Option<String>, Option<String>) = (r.get(1), r.get(2));
        for (field, rel) in [("content", plain), ("gz_content", gz)] {
            let Some(rel) = rel else { continue };
            let stored: Option<(Vec<u8>, i64, String)> = conn
                .query_row(
                    "SELECT content, decompressed, sha256 FROM media_bundle WHERE bundle_id = ?1 AND field = ?2",
                    rusqlite::params![id, field],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .ok();
            if id % 29 == 0 {
                assert!(stored.is_none(), "bundle {id}: the file is missing");
                let problem: String = conn
                    .query_row(
                        "SELECT problem FROM export_problems WHERE table_name = 'dashboard_app_bundle' AND row_id = ?1",
                        [id],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(problem, "missing");
                continue;
            }
            let (content, decompressed, sha) = stored.unwrap_or_else(|| panic!("bundle {id} {field}"));
            let on_disk = std::fs::read(media.join(&rel)).unwrap();
            if field == "gz_content" && id % 12 != 0 {
                assert_eq!(decompressed, 1);
                assert_eq!(content, lava_v1_testkit::instance::compressed_bundle_text(id).into_bytes());
            } else {
                assert_eq!(decompressed, 0, "bundle {id} {field}");
                assert_eq!(content, on_disk);
            }
            assert_eq!(sha, sha256(&content));
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
    let attachments: i64 = client
        .query_one("SELECT count(*) FROM dashboard_app_attachment WHERE content IS NOT NULL", &[])
        .unwrap()
        .get(0);
    let stored: i64 = conn.query_row("SELECT count(*) FROM media_attachment", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, attachments);
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A V1 history small enough to compute the views by hand: two V1 jobs
/// with bundles (one on a panda, one on a juno), a V1 job without one, a
/// V2 job, and a bundle uploaded without a job.
const HAND_SEED: &str = "
INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
VALUES (901, 'pbkdf2_sha256$36000$hand$alice-hash', false, 'alice', 'Alice', 'A', 'alice@example.org', false, true, '2015-01-01 00:00+00'),
       (902, 'pbkdf2_sha256$36000$hand$bob-hash', false, 'bob', 'Bob', 'B', 'bob@example.org', false, true, '2015-01-01 00:00+00');
INSERT INTO lava_scheduler_app_devicetype (name, display, owners_only, health_denominator, health_frequency, disable_health_check)
VALUES ('panda', true, false, 0, 24, false), ('juno', true, false, 0, 24, false);
INSERT INTO lava_scheduler_app_device (is_public, hostname, status, health_status, device_type_id, is_pipeline)
VALUES (true, 'panda-01', 0, 0, 'panda', false), (true, 'juno-01', 0, 0, 'juno', false);
INSERT INTO lava_scheduler_app_tag (id, name) VALUES (801, 'usb'), (802, 'hdmi');
INSERT INTO dashboard_app_bundlestream (id, is_public, slug, name, pathname, is_anonymous)
VALUES (701, true, '', '', '/anonymous/lab/', true);
INSERT INTO dashboard_app_bundle (id, uploaded_on, is_deserialized, content, gz_content, content_sha1, content_filename, bundle_stream_id)
VALUES (501, '2016-03-04 10:06+00', true, 'bundles/bundle-501', NULL, 'sha-501', 'a.json', 701),
       (502, '2016-04-10 08:31+00', true, NULL, 'compressed-bundles/bundle-502', 'sha-502', 'b.json', 701),
       (503, '2016-05-01 12:00+00', true, 'bundles/bundle-503', NULL, 'sha-503', 'c.json', 701);
INSERT INTO dashboard_app_test (id, test_id, name) VALUES (601, 'lava', 'LAVA'), (602, 'smoke', 'Smoke');
INSERT INTO dashboard_app_testcase (id, test_case_id, name, units, test_id)
VALUES (611, 'boot', 'Boot', '', 601), (612, 'net-speed', 'Network speed', 'Mbit/s', 602), (613, 'login', 'Login', '', 601);
INSERT INTO dashboard_app_testrun (id, analyzer_assigned_uuid, analyzer_assigned_date, import_assigned_date, time_check_performed, sw_image_desc, bundle_id, test_id)
VALUES (401, 'uuid-401', '2016-03-04 10:00+00', '2016-03-04 10:06+00', true, '', 501, 601),
       (402, 'uuid-402', '2016-03-04 10:02+00', '2016-03-04 10:06+00', true, '', 501, 602),
       (403, 'uuid-403', '2016-04-10 08:20+00', '2016-04-10 08:31+00', true, '', 502, 601),
       (404, 'uuid-404', '2016-05-01 11:00+00', '2016-05-01 12:00+00', true, '', 503, 601);
INSERT INTO dashboard_app_testresult (id, result, measurement, message, \"timestamp\", relative_index, test_case_id, test_run_id)
VALUES (301, 0, NULL, NULL, '2016-03-04 10:00:01+00', 1, 611, 401),
       (302, 1, NULL, 'login prompt not found', '2016-03-04 10:00:30+00', 2, 613, 401),
       (303, 0, '94.5', NULL, '2016-03-04 10:02:10+00', 1, 612, 402),
       (304, 3, NULL, NULL, NULL, 2, NULL, 402),
       (305, 1, NULL, 'no boot', '2016-04-10 08:21:00+00', 1, 611, 403),
       (306, 2, NULL, NULL, '2016-04-10 08:21:05+00', 2, 613, 403),
       (307, 0, NULL, NULL, '2016-05-01 11:00:01+00', 1, 611, 404);
INSERT INTO lava_scheduler_app_testjob (is_public, id, sub_id, health_check, submit_time, start_time, end_time, status, priority,
    definition, original_definition, multinode_definition, vmgroup_definition, admin_notifications, results_bundle_id,
    actual_device_id, requested_device_type_id, submitter_id, is_pipeline, visibility, pipeline_compatibility)
VALUES (true, 4711, '', false, '2016-03-04 09:55+00', '2016-03-04 09:56+00', '2016-03-04 10:05+00', 2, 50,
        '{\"job_name\": \"boot panda\"}', '{}', '', '', '', 501, 'panda-01', 'panda', 901, false, 0, 0),
       (true, 4712, '', false, '2016-04-10 08:10+00', '2016-04-10 08:11+00', '2016-04-10 08:30+00', 3, 50,
        '{\"job_name\": \"boot juno\"}', '{}', '', '', '', 502, 'juno-01', 'juno', 902, false, 0, 0),
       (true, 4713, '', false, '2016-04-11 08:10+00', NULL, NULL, 2, 50,
        'job_name: v2', 'x', '', '', '', NULL, 'panda-01', 'panda', 901, true, 0, 0),
       (true, 4714, '', false, '2016-06-01 00:00+00', NULL, '2016-06-01 00:10+00', 4, 50,
        '{\"job_name\": \"canceled\"}', '{}', '', '', '', NULL, NULL, 'panda', 902, false, 0, 0);
INSERT INTO lava_scheduler_app_testjob_tags (testjob_id, tag_id) VALUES (4711, 801), (4711, 802), (4712, 801), (4713, 802);
";

/// The instance of [`HAND_SEED`], with its media (bundle 503's file missing).
fn hand_seeded(cluster: &Cluster) -> Instance<'_> {
    let inst = Instance::new(cluster, Seed { scale: 0, media: false, django110_names: false });
    inst.cluster
        .client_as(lava_v1_testkit::cluster::LAVA_ROLE, &inst.db_name)
        .batch_execute(HAND_SEED)
        .unwrap();
    let media = inst.media_root();
    std::fs::create_dir_all(media.join("bundles")).unwrap();
    std::fs::create_dir_all(media.join("compressed-bundles")).unwrap();
    std::fs::write(media.join("bundles/bundle-501"), b"{\"test_runs\": []}\n").unwrap();
    std::fs::write(
        media.join("compressed-bundles/bundle-502"),
        lava_v1_testkit::instance::compressed_bundle(502),
    )
    .unwrap();
    inst
}

#[test]
fn views_answer_as_computed_by_hand() {
    let inst = hand_seeded(Cluster::shared());
    let dir = tempfile::tempdir().unwrap();
    let conn = open(&export_to(&inst, dir.path()));

    let results = query_texts(
        &conn,
        "SELECT job_id, submit_time, end_time, device, device_type, submitter, bundle_stream, test, test_case,
                result, measurement, units, message, timestamp FROM v1_results ORDER BY test_result_id",
    );
    let row = |job: Option<&str>,
               times: (Option<&str>, Option<&str>),
               dev: (Option<&str>, Option<&str>, Option<&str>),
               test: &str,
               case: Option<&str>,
               result: &str,
               m: Option<&str>,
               units: Option<&str>,
               msg: Option<&str>,
               ts: Option<&str>| {
        vec![
            job.map(str::to_owned),
            times.0.map(str::to_owned),
            times.1.map(str::to_owned),
            dev.0.map(str::to_owned),
            dev.1.map(str::to_owned),
            dev.2.map(str::to_owned),
            s("/anonymous/lab/"),
            s(test),
            case.map(str::to_owned),
            s(result),
            m.map(str::to_owned),
            units.map(str::to_owned),
            msg.map(str::to_owned),
            ts.map(str::to_owned),
        ]
    };
    let j4711 = (Some("2016-03-04T09:55:00.000000Z"), Some("2016-03-04T10:05:00.000000Z"));
    let j4712 = (Some("2016-04-10T08:10:00.000000Z"), Some("2016-04-10T08:30:00.000000Z"));
    let panda = (Some("panda-01"), Some("panda"), Some("alice"));
    let juno = (Some("juno-01"), Some("juno"), Some("bob"));
    assert_eq!(
        results,
        vec![
            row(
                Some("4711"),
                j4711,
                panda,
                "lava",
                Some("boot"),
                "pass",
                None,
                Some(""),
                None,
                Some("2016-03-04T10:00:01.000000Z")
            ),
            row(
                Some("4711"),
                j4711,
                panda,
                "lava",
                Some("login"),
                "fail",
                None,
                Some(""),
                Some("login prompt not found"),
                Some("2016-03-04T10:00:30.000000Z")
            ),
            row(
                Some("4711"),
                j4711,
                panda,
                "smoke",
                Some("net-speed"),
                "pass",
                Some("94.5"),
                Some("Mbit/s"),
                None,
                Some("2016-03-04T10:02:10.000000Z")
            ),
            row(Some("4711"), j4711, panda, "smoke", None, "unknown", None, None, None, None),
            row(
                Some("4712"),
                j4712,
                juno,
                "lava",
                Some("boot"),
                "fail",
                None,
                Some(""),
                Some("no boot"),
                Some("2016-04-10T08:21:00.000000Z")
            ),
            row(
                Some("4712"),
                j4712,
                juno,
                "lava",
                Some("login"),
                "skip",
                None,
                Some(""),
                None,
                Some("2016-04-10T08:21:05.000000Z")
            ),
            row(
                None,
                (None, None),
                (None, None, None),
                "lava",
                Some("boot"),
                "pass",
                None,
                Some(""),
                None,
                Some("2016-05-01T11:00:01.000000Z")
            ),
        ]
    );

    let runs = query_texts(
        &conn,
        "SELECT test_run_id, job_id, test, device_type, pass, fail, skip, unknown FROM v1_test_runs ORDER BY test_run_id",
    );
    let run = |v: [Option<&str>; 8]| v.iter().map(|x| x.map(str::to_owned)).collect::<Vec<_>>();
    assert_eq!(
        runs,
        vec![
            run([
                Some("401"),
                Some("4711"),
                Some("lava"),
                Some("panda"),
                Some("1"),
                Some("1"),
                Some("0"),
                Some("0")
            ]),
            run([
                Some("402"),
                Some("4711"),
                Some("smoke"),
                Some("panda"),
                Some("1"),
                Some("0"),
                Some("0"),
                Some("1")
            ]),
            run([
                Some("403"),
                Some("4712"),
                Some("lava"),
                Some("juno"),
                Some("0"),
                Some("1"),
                Some("1"),
                Some("0")
            ]),
            run([Some("404"), None, Some("lava"), None, Some("1"), Some("0"), Some("0"), Some("0")]),
        ]
    );

    let jobs = query_texts(
        &conn,
        "SELECT job_id, status, device, device_type, submitter, tags, bundle_id, test_runs, results FROM v1_jobs ORDER BY job_id",
    );
    let job = |v: [Option<&str>; 9]| v.iter().map(|x| x.map(str::to_owned)).collect::<Vec<_>>();
    assert_eq!(
        jobs,
        vec![
            job([
                Some("4711"),
                Some("complete"),
                Some("panda-01"),
                Some("panda"),
                Some("alice"),
                Some("hdmi, usb"),
                Some("501"),
                Some("2"),
                Some("4")
            ]),
            job([
                Some("4712"),
                Some("incomplete"),
                Some("juno-01"),
                Some("juno"),
                Some("bob"),
                Some("usb"),
                Some("502"),
                Some("1"),
                Some("2")
            ]),
            job([
                Some("4714"),
                Some("canceled"),
                None,
                Some("panda"),
                Some("bob"),
                None,
                None,
                Some("0"),
                Some("0")
            ]),
        ],
        "the V2 job 4713 is not a V1 job"
    );

    // The media, and the missing file listed.
    let bundles = query_texts(
        &conn,
        "SELECT bundle_id, field, decompressed, CAST(content AS TEXT) FROM media_bundle ORDER BY bundle_id",
    );
    assert_eq!(
        bundles,
        vec![
            vec![s("501"), s("content"), s("0"), s("{\"test_runs\": []}\n")],
            vec![
                s("502"),
                s("gz_content"),
                s("1"),
                Some(lava_v1_testkit::instance::compressed_bundle_text(502))
            ],
        ]
    );
    assert_eq!(
        query_texts(&conn, "SELECT table_name, row_id, field, path, problem FROM export_problems"),
        vec![vec![s("dashboard_app_bundle"), s("503"), s("content"), s("bundles/bundle-503"), s("missing")]]
    );

    // The three queries the documentation gives, as it gives them.
    for (query, want) in documented_queries() {
        assert_eq!(query_texts(&conn, query), want, "{query}");
    }
}

/// The example queries of the README, lava-v1(8) and README.Debian, with
/// what they answer on [`HAND_SEED`].
fn documented_queries() -> Vec<(&'static str, Vec<Row>)> {
    vec![
        (
            // All results of one job.
            "SELECT test, test_case, result, measurement, units FROM v1_results WHERE job_id = 4711 ORDER BY test_result_id;",
            vec![
                vec![s("lava"), s("boot"), s("pass"), None, s("")],
                vec![s("lava"), s("login"), s("fail"), None, s("")],
                vec![s("smoke"), s("net-speed"), s("pass"), s("94.5"), s("Mbit/s")],
                vec![s("smoke"), None, s("unknown"), None, None],
            ],
        ),
        (
            // The fail rate per device type per month.
            "SELECT device_type, substr(submit_time, 1, 7) AS month, count(*) AS results,
       round(100.0 * sum(result = 'fail') / count(*), 1) AS fail_percent
FROM v1_results WHERE job_id IS NOT NULL
GROUP BY device_type, month ORDER BY device_type, month;",
            vec![
                vec![s("juno"), s("2016-04"), s("2"), s("50")],
                vec![s("panda"), s("2016-03"), s("4"), s("25")],
            ],
        ),
        (
            // Every job that ran a given test case.
            "SELECT DISTINCT job_id, submit_time, device FROM v1_results
WHERE test = 'lava' AND test_case = 'boot' AND job_id IS NOT NULL ORDER BY job_id;",
            vec![
                vec![s("4711"), s("2016-03-04T09:55:00.000000Z"), s("panda-01")],
                vec![s("4712"), s("2016-04-10T08:10:00.000000Z"), s("juno-01")],
            ],
        ),
    ]
}

#[test]
fn the_documented_queries_are_the_documented_ones() {
    // The queries the tests run are, word for word, the ones the
    // documentation shows.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for doc in ["README.md", "debian/lava-v1.8", "debian/README.Debian"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let text = text.replace("\\-", "-").replace("\\(aq", "'").replace("\\e", "\\");
        for (query, _) in documented_queries() {
            for line in query.lines() {
                assert!(
                    text.contains(line.trim()),
                    "{doc} does not show this line of an example query: {line}"
                );
            }
        }
    }
}

#[test]
fn a_hostile_media_tree_is_listed_never_followed() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let media = inst.media_root();
    let outside = tempfile::tempdir().unwrap();
    lava_v1_testkit::hostile::precious_dir(outside.path());
    std::fs::write(outside.path().join("secret.txt"), b"OUTSIDE-SECRET-CONTENT\n").unwrap();
    let mut client = inst.admin();
    let ids: Vec<i32> = client
        .query("SELECT id FROM dashboard_app_bundle WHERE content IS NOT NULL AND id % 29 <> 0 ORDER BY id LIMIT 6", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let set = |id: i32, path: &str| {
        inst.admin()
            .execute("UPDATE dashboard_app_bundle SET content = $2 WHERE id = $1", &[&id, &path])
            .unwrap();
    };
    // A link out, in place of a bundle.
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), media.join("bundles/link-out")).unwrap();
    set(ids[0], "bundles/link-out");
    // A directory link on the way.
    std::os::unix::fs::symlink(outside.path(), media.join("bundles/dir-out")).unwrap();
    set(ids[1], "bundles/dir-out/secret.txt");
    // Climbing out, and an absolute path.
    set(ids[2], "../../../../../../../../../../etc/passwd");
    set(ids[3], &outside.path().join("secret.txt").display().to_string());
    // A name with newlines, readable.
    std::fs::write(media.join("bundles/new\nline\n"), b"bundle with a newline in its name\n").unwrap();
    set(ids[4], "bundles/new\nline\n");
    // A FIFO (never opened for reading: it would block).
    nix::unistd::mkfifo(
        &media.join("bundles/fifo"),
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .unwrap();
    set(ids[5], "bundles/fifo");
    // An unreadable file: only when not root (root reads anything).
    let unreadable = !nix::unistd::geteuid().is_root();
    let attachment: (i32, String) = {
        let r = client
            .query_one("SELECT id, content FROM dashboard_app_attachment WHERE content IS NOT NULL ORDER BY id LIMIT 1", &[])
            .unwrap();
        (r.get(0), r.get(1))
    };
    if unreadable {
        std::fs::set_permissions(media.join(&attachment.1), std::fs::Permissions::from_mode(0o000)).unwrap();
    } else {
        eprintln!(
            "note: running as root, which reads a mode-0000 file: the unreadable case is covered by the FIFO"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let file = export_to(&inst, dir.path());
    let conn = open(&file);
    let problem = |id: i32| -> String {
        conn.query_row(
            "SELECT problem FROM export_problems WHERE table_name = 'dashboard_app_bundle' AND row_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("no problem listed for bundle {id}: {e}"))
    };
    for id in &ids[..4] {
        let stored: i64 = conn
            .query_row("SELECT count(*) FROM media_bundle WHERE bundle_id = ?1", [id], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 0, "bundle {id}");
    }
    assert!(problem(ids[0]).contains("symbolic link"), "{}", problem(ids[0]));
    assert!(
        problem(ids[1]).contains("not read") || problem(ids[1]).contains("unreadable"),
        "{}",
        problem(ids[1])
    );
    assert!(problem(ids[2]).contains("not a plain relative path"), "{}", problem(ids[2]));
    assert!(problem(ids[3]).contains("not a plain relative path"), "{}", problem(ids[3]));
    assert!(problem(ids[5]).contains("not a regular file"), "{}", problem(ids[5]));
    let newline: String = conn
        .query_row(
            "SELECT CAST(content AS TEXT) FROM media_bundle WHERE path = ?1",
            ["bundles/new\nline\n"],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(newline, "bundle with a newline in its name\n");
    if unreadable {
        let p: String = conn
            .query_row(
                "SELECT problem FROM export_problems WHERE table_name = 'dashboard_app_attachment' AND row_id = ?1",
                [attachment.0],
                |r| r.get(0),
            )
            .unwrap();
        assert!(p.contains("unreadable"), "{p}");
    }
    let bytes = std::fs::read(&file).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("OUTSIDE-SECRET-CONTENT"), "a file outside was read");
    assert!(!String::from_utf8_lossy(&bytes).contains("root:x:0:0"), "/etc/passwd was read");
}

#[test]
fn a_killed_export_leaves_no_file_under_its_name_and_a_rerun_succeeds() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v1.sqlite");
    for point in ["export-after-table", "export-before-rename"] {
        let child = start_paused_at(&inst, &["export", "--output", file.to_str().unwrap()], point);
        kill_run(&inst, child);
        assert!(!file.exists(), "killed at {point}: a file under the final name");
        assert!(dir.path().join("v1.sqlite.incomplete").exists(), "killed at {point}");
    }
    let out = run(&inst, &["export", "--output", file.to_str().unwrap()]);
    assert_success(&out);
    assert!(stderr(&out).contains("interrupted export"), "{}", stderr(&out));
    assert!(file.exists());
    assert!(!dir.path().join("v1.sqlite.incomplete").exists());
    let rows: i64 = open(&file).query_row("SELECT count(*) FROM v1_results", [], |r| r.get(0)).unwrap();
    assert!(rows > 1000, "{rows}");
    // Never over an existing file.
    let again = run(&inst, &["export", "--output", file.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
}

#[test]
fn the_sqlite3_shell_and_python_open_it() {
    let inst = hand_seeded(Cluster::shared());
    let dir = tempfile::tempdir().unwrap();
    let file = export_to(&inst, dir.path());
    let shell = std::process::Command::new("sqlite3")
        .arg("-readonly")
        .arg(&file)
        .arg("PRAGMA integrity_check; SELECT group_concat(job_id) FROM (SELECT job_id FROM v1_jobs ORDER BY job_id);")
        .output();
    match shell {
        Ok(out) => {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n4711,4712,4714\n");
        }
        Err(e) => {
            if lava_v1_testkit::cannot_run(
                "the sqlite3 shell part",
                Some(format!("sqlite3: {e} (scripts/install-deps installs it)")),
            )
            .is_some()
            {
                return;
            }
        }
    }
    let python = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
             print(c.execute(\"SELECT count(*), sum(result = 'fail') FROM v1_results\").fetchone())\n",
        )
        .arg(&file)
        .output();
    match python {
        Ok(out) => {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout), "(7, 2)\n");
        }
        Err(e) => {
            lava_v1_testkit::cannot_run("the python3 part", Some(format!("python3: {e}")));
        }
    }
}

#[test]
fn an_instance_without_v1_data_gives_a_valid_empty_archive() {
    let inst = Instance::new(Cluster::shared(), Seed { scale: 0, media: false, django110_names: false });
    let dir = tempfile::tempdir().unwrap();
    // The core's default name, in a directory of the caller's.
    let made = export::export(&inst.paths, &ExportOptions { output: None, dir: dir.path().join("exports") })
        .unwrap();
    let name = made.path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("lava-v1-results-") && name.ends_with(".sqlite"), "{name}");
    assert_eq!(std::fs::metadata(&made.path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(made.tables.len(), V1_TABLES.len() + 2);
    assert!(made.tables.values().all(|&n| n == 0), "{:?}", made.tables);
    let conn = open(&made.path);
    for view in ["v1_results", "v1_jobs", "v1_test_runs"] {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {view}"), [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "{view}");
    }
    let notes: String =
        conn.query_row("SELECT value FROM export_info WHERE key = 'schema_notes'", [], |r| r.get(0)).unwrap();
    assert!(notes.contains("v1_results"));
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn a_database_past_the_drop_is_refused_saying_where_to_export_from() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    crate::util::drop_v1_by_sql(&mut inst.admin());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v1.sqlite");
    let out = run(&inst, &["export", "--output", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no V1 tables"), "{}", stderr(&out));
    assert!(stderr(&out).contains("lava-v1 restore"), "{}", stderr(&out));
    assert!(!file.exists());
    assert!(!dir.path().join("v1.sqlite.incomplete").exists());
}

#[test]
fn an_archive_instance_restored_from_a_backup_exports_the_same_results() {
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let dir = tempfile::tempdir().unwrap();
    let options =
        |name: &str| ExportOptions { output: Some(dir.path().join(name)), dir: dir.path().to_owned() };
    let original = export::export(&inst.paths, &options("original.sqlite")).unwrap();
    let backup_options = lava_v1_core::backup::BackupOptions {
        dir: dir.path().join("backups"),
        ..lava_v1_core::backup::BackupOptions::default()
    };
    let made = lava_v1_core::backup::backup(&inst.paths, &backup_options).unwrap();
    // An archive instance kept on 2017.10, without V1 data, into which the
    // backup is restored: its export holds the same results.
    let archive = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    crate::backup::without_v1_data(&archive);
    lava_v1_core::backup::restore(
        &archive.paths,
        &made.path,
        &lava_v1_core::backup::BackupOptions::default(),
    )
    .unwrap();
    let restored = export::export(&archive.paths, &options("restored.sqlite")).unwrap();
    assert_eq!(original.tables, restored.tables);
    let (a, b) = (open(&original.path), open(&restored.path));
    for query in [
        "SELECT * FROM v1_results ORDER BY test_result_id",
        "SELECT * FROM v1_jobs ORDER BY job_id",
        "SELECT * FROM v1_test_runs ORDER BY test_run_id",
    ] {
        let rows = query_texts(&a, query);
        assert!(!rows.is_empty(), "{query}");
        assert_eq!(rows, query_texts(&b, query), "{query}");
    }
}
