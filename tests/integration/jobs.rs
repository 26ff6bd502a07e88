//! `lava-v1 jobs rm --v1`: the database effect of LAVA's `jobs rm --v1`
//! (checked row by row against the reference's rules applied naively to an
//! identical copy), the output directories by both path rules, hostile
//! trees, interruptions, and the dry run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lava_v1_testkit::hostile;
use lava_v1_testkit::{Cluster, Instance, Seed};

use crate::util::*;

/// Results, a notification and generic rows for one finished V1 job:
/// 2017.10 code never creates them, but a database edited by hand may
/// have them, and LAVA's command would cascade through them.
const V1_EXTRAS: &str = "DO $$ DECLARE j int; s int; t int; c int; c2 int; d int; n int; BEGIN
    SELECT min(id) INTO j FROM lava_scheduler_app_testjob WHERE NOT is_pipeline AND status IN (2, 3);
    INSERT INTO lava_results_app_testsuite (name, job_id) VALUES ('v1-by-hand', j) RETURNING id INTO s;
    INSERT INTO lava_results_app_testset (name, suite_id) VALUES ('set-v1', s) RETURNING id INTO t;
    INSERT INTO lava_results_app_testcase (name, units, result, measurement, metadata, logged, suite_id, test_set_id)
    VALUES ('case-v1', '', 1, NULL, NULL, TIMESTAMPTZ '2017-09-01 00:00:00+00', s, t) RETURNING id INTO c;
    -- Edited by hand: a case of a V2 job's suite, in the V1 job's test set
    -- (Django deletes it with the set).
    INSERT INTO lava_results_app_testcase (name, units, result, measurement, metadata, logged, suite_id, test_set_id)
    SELECT 'case-cross', '', 1, NULL, NULL, TIMESTAMPTZ '2017-09-01 00:00:00+00', min(s2.id), t
    FROM lava_results_app_testsuite s2 JOIN lava_scheduler_app_testjob j2 ON j2.id = s2.job_id WHERE j2.is_pipeline
    RETURNING id INTO c2;
    INSERT INTO lava_results_app_actiondata (action_name, action_level, action_summary, action_description,
        yaml_line, description_line, log_section, duration, timeout, count, max_retries, meta_type_id,
        testcase_id, testdata_id)
    SELECT 'c', '1', 's', 'd', 1, 1, NULL, 1, 1, NULL, NULL, min(id), c2, NULL FROM lava_results_app_metatype;
    INSERT INTO lava_results_app_testdata (testjob_id) VALUES (j) RETURNING id INTO d;
    UPDATE lava_scheduler_app_device SET current_job_id = j
    WHERE hostname = (SELECT min(hostname) FROM lava_scheduler_app_device WHERE current_job_id IS NULL);
    INSERT INTO lava_results_app_actiondata (action_name, action_level, action_summary, action_description,
        yaml_line, description_line, log_section, duration, timeout, count, max_retries, meta_type_id,
        testcase_id, testdata_id)
    SELECT 'a', '1', 's', 'd', 1, 1, NULL, 1, 1, NULL, NULL, min(id), c, NULL FROM lava_results_app_metatype;
    INSERT INTO lava_results_app_actiondata (action_name, action_level, action_summary, action_description,
        yaml_line, description_line, log_section, duration, timeout, count, max_retries, meta_type_id,
        testcase_id, testdata_id)
    SELECT 'b', '1', 's', 'd', 1, 1, NULL, 1, 1, NULL, NULL, min(id), NULL, d FROM lava_results_app_metatype;
    INSERT INTO lava_results_app_namedtestattribute (name, value, object_id, content_type_id)
    SELECT 'kernel', 'v1', d, id FROM django_content_type WHERE app_label = 'lava_results_app' AND model = 'testdata'
    UNION ALL
    SELECT 'dangling', 'v1', j, id FROM django_content_type WHERE app_label = 'lava_scheduler_app' AND model = 'testjob';
    INSERT INTO lava_scheduler_app_notification (type, job_status_trigger, verbosity, template, time_sent,
        query_name, conditions, entity_id, query_owner_id, test_job_id, blacklist, callback_content_type,
        callback_dataset, callback_method, callback_token, callback_url)
    VALUES (NULL, 'finished', 1, 'testjob.txt', TIMESTAMPTZ '2017-09-01 00:00:00+00', NULL, NULL, NULL, NULL, j, NULL, NULL, NULL, NULL, NULL, NULL)
    RETURNING id INTO n;
    INSERT INTO lava_scheduler_app_notificationrecipient (email, irc_handle, irc_server, status, method,
        notification_id, user_id) VALUES ('v1@example.org', NULL, NULL, 1, 0, n, NULL);
    INSERT INTO django_admin_log (action_time, object_id, object_repr, action_flag, change_message,
        content_type_id, user_id)
    SELECT TIMESTAMPTZ '2017-09-01 00:00:00+00', j::text, 'v1 job', 2, '[]', ct.id, (SELECT min(id) FROM auth_user)
    FROM django_content_type ct WHERE ct.app_label = 'lava_scheduler_app' AND ct.model = 'testjob';
END $$";

fn apply_reference_rules(inst: &Instance<'_>, filter: &str) {
    lava_v1_testkit::world::apply_jobs_rm_reference(&mut inst.admin(), filter);
}

/// Two identical live instances: `ours` (with media) and `expected`
/// (without), both with the extra V1 rows.  On 2017.10 (`dropped` false)
/// the unfinished V1 jobs are finished first, as `jobs rm` requires there
/// (a V1 dispatcher may still run them); past the drop they are left
/// submitted, running and canceling, stuck for good, and `jobs rm`
/// removes them like the rest.
fn pair(dropped: bool) -> (Instance<'static>, Instance<'static>) {
    let ours = Instance::new(Cluster::shared(), Seed::default());
    let expected = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    for inst in [&ours, &expected] {
        let mut c = inst.admin();
        if !dropped {
            finish_v1_jobs(&mut c);
        }
        c.batch_execute(V1_EXTRAS).unwrap();
        if dropped {
            drop_v1_by_sql(&mut c);
        }
    }
    (ours, expected)
}

/// `(id, is V2, legacy path, dated path)` of every job.
fn job_dirs(inst: &Instance<'_>) -> Vec<(i32, bool, PathBuf, PathBuf)> {
    let media = inst.media_root();
    inst.admin()
        .query(
            "SELECT id, is_pipeline, to_char(submit_time AT TIME ZONE 'UTC', 'YYYY/MM/DD') FROM lava_scheduler_app_testjob",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let id: i32 = r.get(0);
            let day: String = r.get(2);
            (
                id,
                r.get(1),
                media.join(format!("job-output/job-{id}")),
                media.join(format!("job-output/{day}/{id}")),
            )
        })
        .collect()
}

const V2_SUITES: &str = "SELECT s.id FROM lava_results_app_testsuite s
    JOIN lava_scheduler_app_testjob j ON j.id = s.job_id WHERE j.is_pipeline";
/// V2 cases: of a V2 suite, and not in a V1 job's test set.
const V2_CASES: &str = "SELECT c.id FROM lava_results_app_testcase c
    WHERE c.suite_id IN (SELECT s.id FROM lava_results_app_testsuite s
        JOIN lava_scheduler_app_testjob j ON j.id = s.job_id WHERE j.is_pipeline)
    AND NOT EXISTS (SELECT 1 FROM lava_results_app_testset t JOIN lava_results_app_testsuite s ON s.id = t.suite_id
        JOIN lava_scheduler_app_testjob j ON j.id = s.job_id WHERE t.id = c.test_set_id AND NOT j.is_pipeline)";
const V2_DATA: &str = "SELECT d.id FROM lava_results_app_testdata d
    JOIN lava_scheduler_app_testjob j ON j.id = d.testjob_id WHERE j.is_pipeline";

/// A V2 fingerprint: every row that belongs to the V2 world, with pointers
/// at V1 jobs read as NULL (what LAVA's command makes them).  Unchanged by
/// a correct `jobs rm --v1`.
fn v2_world(client: &mut postgres::Client) -> BTreeMap<String, String> {
    let tables: Vec<String> = client
        .query(
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
             AND relname NOT LIKE 'dashboard\\_app\\_%' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let v2 = |col: &str| {
        format!("(SELECT j.id FROM lava_scheduler_app_testjob j WHERE j.id = x.{col} AND j.is_pipeline)")
    };
    let mut out = BTreeMap::new();
    for t in tables {
        let rows = match t.as_str() {
            "lava_scheduler_app_testjob" => format!("SELECT (to_jsonb(x) - 'results_bundle_id')::text FROM {t} x WHERE is_pipeline"),
            "lava_scheduler_app_device" => format!(
                "SELECT (to_jsonb(x) || jsonb_build_object('current_job_id', {}, 'last_health_report_job_id', {}))::text FROM {t} x",
                v2("current_job_id"),
                v2("last_health_report_job_id")
            ),
            "lava_scheduler_app_devicestatetransition" => {
                format!("SELECT (to_jsonb(x) || jsonb_build_object('job_id', {}))::text FROM {t} x", v2("job_id"))
            }
            "lava_results_app_testset" => format!("SELECT x::text FROM {t} x WHERE x.suite_id IN ({V2_SUITES})"),
            "lava_results_app_testcase" => format!("SELECT x::text FROM {t} x WHERE x.id IN ({V2_CASES})"),
            "lava_results_app_actiondata" => format!(
                "SELECT x::text FROM {t} x WHERE x.testdata_id IN ({V2_DATA})
                 OR x.testcase_id IN ({V2_CASES})
                 OR (x.testdata_id IS NULL AND x.testcase_id IS NULL)"
            ),
            "lava_results_app_namedtestattribute" => format!(
                "SELECT x::text FROM {t} x WHERE NOT (x.content_type_id = (SELECT id FROM django_content_type
                 WHERE app_label = 'lava_results_app' AND model = 'testdata')
                 AND x.object_id IN (SELECT d.id FROM lava_results_app_testdata d
                     JOIN lava_scheduler_app_testjob j ON j.id = d.testjob_id WHERE NOT j.is_pipeline))"
            ),
            "lava_scheduler_app_notificationrecipient" => format!(
                "SELECT x::text FROM {t} x WHERE x.notification_id IN (SELECT n.id FROM lava_scheduler_app_notification n
                 JOIN lava_scheduler_app_testjob j ON j.id = n.test_job_id WHERE j.is_pipeline)"
            ),
            _ => {
                let col = lava_v1_core::jobs::TESTJOB_REFERENCES.iter().find(|(rt, _)| *rt == t).map(|(_, c)| *c);
                match col {
                    Some(c) => format!("SELECT x::text FROM {t} x WHERE {} IS NOT NULL", v2(c)),
                    None => format!("SELECT x::text FROM {t} x"),
                }
            }
        };
        let hash: String = client
            .query_one(
                &format!("SELECT coalesce(md5(string_agg(r, '|' ORDER BY r)), '') FROM ({rows}) s(r)"),
                &[],
            )
            .unwrap()
            .get(0);
        out.insert(t, hash);
    }
    out
}

fn counts(rows: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, u64> {
    rows.iter().map(|(k, v)| (k.clone(), v.len() as u64)).collect()
}

fn check_removal(dropped: bool) {
    let (ours, expected) = pair(dropped);
    let mut c = ours.admin();
    let before_rows = all_rows(&mut c);
    let before_fp = lava_v1_core::fingerprint::v2(&mut c).unwrap();
    let before_v2 = v2_world(&mut c);
    let before_fks = testjob_fks(&mut c);
    assert_eq!(before_fks.len(), 10, "{before_fks:?}");
    let dirs = job_dirs(&ours);
    let v1: Vec<_> = dirs.iter().filter(|d| !d.1).collect();
    assert!(v1.iter().any(|d| d.2.is_dir()) && v1.iter().any(|d| d.3.is_dir()), "the seed has both layouts");
    let media_before = hostile::listing(&ours.media_root());
    let bundles_before = hostile::listing(&ours.media_root().join("bundles"));

    let stuck: i64 = c
        .query_one(
            "SELECT count(*) FROM lava_scheduler_app_testjob WHERE NOT is_pipeline AND status IN (0, 1, 5)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(stuck > 0, dropped, "the live seed has stuck V1 jobs, finished only on 2017.10");
    let out = run(&ours, &["jobs", "rm", "--v1", "--json", "--batch-size", "97"]);
    assert_success(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    apply_reference_rules(&expected, "true");

    // Every row of every table as the reference's rules leave it.
    let after_rows = all_rows(&mut c);
    let want = all_rows(&mut expected.admin());
    assert_eq!(differing(&after_rows, &want), Vec::<String>::new());
    // The V2 world, the sequences and the schema (constraint definitions
    // included) are unchanged.
    assert_eq!(before_v2, v2_world(&mut c));
    let after_fp = lava_v1_core::fingerprint::v2(&mut c).unwrap();
    assert_eq!(before_fp.sequences, after_fp.sequences);
    assert_eq!(before_fp.schema, after_fp.schema);
    assert_eq!(before_fks, testjob_fks(&mut c));

    // The report's numbers are the rows that went.
    let (b, a) = (counts(&before_rows), counts(&after_rows));
    assert_eq!(report["jobs_removed"].as_u64().unwrap(), v1.len() as u64);
    assert_eq!(report["v1_jobs_remaining"], 0);
    assert_eq!(report["stuck_jobs"].as_i64().unwrap(), stuck, "{report}");
    assert!(report["batches"].as_u64().unwrap() > 5);
    for (table, n) in report["rows_deleted"].as_object().unwrap() {
        assert_eq!(b[table] - a[table], n.as_u64().unwrap(), "{table}");
    }
    for table in b.keys().filter(|t| b[*t] != a[*t] && !t.starts_with("query_")) {
        assert!(report["rows_deleted"].get(table).is_some(), "{table} lost rows the report does not list");
    }
    for col in ["current_job_id", "last_health_report_job_id"] {
        let key = format!("lava_scheduler_app_device.{col}");
        assert!(report["rows_set_null"][&key].as_u64().unwrap() > 0, "{key}: {report}");
    }

    // Files: every V1 output directory gone, by both rules; V2 ones and
    // everything else untouched; no empty date directory left where V1
    // jobs were.
    for (id, _, legacy, dated) in &v1 {
        assert!(!legacy.exists() && !dated.exists(), "job {id}");
    }
    let media_after = hostile::listing(&ours.media_root());
    let v1_prefixes: Vec<PathBuf> = v1
        .iter()
        .flat_map(|d| [d.2.clone(), d.3.clone()])
        .map(|p| p.strip_prefix(ours.media_root()).unwrap().to_owned())
        .collect();
    let v1_set: BTreeSet<&PathBuf> = v1_prefixes.iter().collect();
    for (path, what) in &media_before {
        let under_v1 = path.ancestors().any(|p| v1_set.contains(&p.to_path_buf()));
        if under_v1 {
            assert!(!media_after.contains_key(path), "{} survived", path.display());
        } else if !what.starts_with("dir") {
            assert_eq!(media_after.get(path), Some(what), "{} changed", path.display());
        }
    }
    let media = ours.media_root();
    for (path, what) in &media_after {
        if what.starts_with("dir") && path.starts_with("job-output") && path.components().count() <= 4 {
            assert!(
                std::fs::read_dir(media.join(path)).unwrap().next().is_some(),
                "{} is empty",
                path.display()
            );
        }
    }
    assert!(report["output_dirs"]["empty_date_dirs_removed"].as_u64().unwrap() > 0);
    assert_eq!(report["output_dirs"]["found"].as_u64().unwrap(), v1.len() as u64);
    assert_eq!(bundles_before, hostile::listing(&media.join("bundles")));

    // A second run has nothing to do.
    let again = run(&ours, &["jobs", "rm", "--v1"]);
    assert_success(&again);
    assert!(stdout(&again).contains("V1 jobs removed: 0 of 0"), "{}", stdout(&again));
    let journal = std::fs::read_to_string(ours.paths.state_dir.join("journal.log")).unwrap();
    assert!(journal.contains("jobs rm --v1: done") && journal.contains("batch 1 committed"), "{journal}");
}

#[test]
fn jobs_rm_has_lavas_effect_on_a_2017_10_database() {
    check_removal(false);
}

#[test]
fn jobs_rm_has_lavas_effect_on_a_database_past_the_drop() {
    check_removal(true);
}

#[test]
fn jobs_rm_refuses_while_v1_jobs_are_unfinished() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let mut c = inst.admin();
    let before = all_rows(&mut c);
    let media = hostile::listing(&inst.media_root());
    let out = run(&inst, &["jobs", "rm", "--v1"]);
    assert_failure(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("still submitted, running or canceling"), "{err}");
    for status in ["(submitted", "(running", "(canceling"] {
        assert!(err.contains(status), "{status}: {err}");
    }
    let running: i32 = c
        .query_one("SELECT min(id) FROM lava_scheduler_app_testjob WHERE NOT is_pipeline AND status = 1", &[])
        .unwrap()
        .get(0);
    assert!(err.contains(&format!("job {running} (running")), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(differing(&before, &all_rows(&mut c)), Vec::<String>::new());
    assert_eq!(media, hostile::listing(&inst.media_root()));
    // Without --v1 it refuses too.
    assert_failure(&run(&inst, &["jobs", "rm"]), 2);
}

#[test]
fn dry_run_changes_nothing_and_predicts_the_run() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let mut c = inst.admin();
    finish_v1_jobs(&mut c);
    let before = all_rows(&mut c);
    let media = hostile::listing(&inst.media_root());
    let out = run(&inst, &["jobs", "rm", "--v1", "--dry-run", "--json"]);
    assert_success(&out);
    let dry: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(differing(&before, &all_rows(&mut c)), Vec::<String>::new());
    assert_eq!(media, hostile::listing(&inst.media_root()));
    assert!(!inst.paths.state_dir.join(lava_v1_core::jobs::PENDING_FILE).exists());
    let human = run(&inst, &["jobs", "rm", "--v1", "--dry-run"]);
    assert_success(&human);
    let text = stdout(&human);
    assert!(text.contains("Dry run: nothing was changed") && text.contains("job-output/job-"), "{text}");
    assert_eq!(media, hostile::listing(&inst.media_root()));

    let out = run(&inst, &["jobs", "rm", "--v1", "--json"]);
    assert_success(&out);
    let real: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dry["jobs_selected"], real["jobs_removed"]);
    assert_eq!(dry["rows_deleted"], real["rows_deleted"]);
    assert_eq!(dry["rows_set_null"], real["rows_set_null"]);
    assert_eq!(dry["output_dirs"]["found"], real["output_dirs"]["found"]);
    assert_eq!(dry["output_dirs"]["freed"], real["output_dirs"]["freed"]);
    assert_eq!(
        dry["planned"].as_array().unwrap().len() as u64,
        dry["output_dirs"]["found"].as_u64().unwrap()
    );
}

#[test]
fn older_than_selects_as_lava_does() {
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let mut c = inst.admin();
    finish_v1_jobs(&mut c);
    // A finished job without end_time is never "older than" anything.
    c.batch_execute(
        "UPDATE lava_scheduler_app_testjob SET end_time = NULL
         WHERE id IN (SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline ORDER BY id LIMIT 3)",
    )
    .unwrap();
    let out = run(&inst, &["jobs", "rm", "--v1", "--older-than", "36500d", "--json"]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["jobs_removed"], 0);
    let out = run(&inst, &["jobs", "rm", "--v1", "--older-than", "24h", "--json"]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["jobs_removed"].as_u64().unwrap() > 500);
    assert_eq!(v["v1_jobs_remaining"], 3);
    // Not an age: a usage error, before anything is opened.
    let bad = run(&inst, &["jobs", "rm", "--v1", "--older-than", "2w"]);
    assert_failure(&bad, 2);
    assert!(stderr(&bad).contains("<N>h or <N>d"), "{}", stderr(&bad));
}

#[test]
fn hostile_output_directories() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let mut c = inst.admin();
    finish_v1_jobs(&mut c);
    let outside = tempfile::tempdir().unwrap();
    hostile::precious_dir(outside.path());
    let dirs = job_dirs(&inst);
    let legacy: Vec<_> = dirs.iter().filter(|d| !d.1 && d.2.is_dir()).collect();
    let dated: Vec<_> = dirs.iter().filter(|d| !d.1 && d.3.is_dir()).collect();
    // 1. a job directory full of hostile entries;
    hostile::hostile_contents(&legacy[0].2, outside.path());
    // 2. a job directory that is a symlink to a directory outside;
    let target = outside.path().join("linked-job");
    std::fs::rename(&legacy[1].2, &target).unwrap();
    std::os::unix::fs::symlink(&target, &legacy[1].2).unwrap();
    // 3. a dated job directory with an entry that cannot be removed;
    let stuck = dated[0].3.join("stuck.txt");
    let immutable = hostile::make_unremovable(&stuck);
    let listing_outside = hostile::listing(outside.path());

    let out = run(&inst, &["jobs", "rm", "--v1", "--json"]);
    assert_failure(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(stderr(&out).contains("could not be removed"), "{}", stderr(&out));
    // Nothing outside was touched; the link is gone, its target is not.
    assert_eq!(listing_outside, hostile::listing(outside.path()));
    assert!(std::fs::symlink_metadata(&legacy[1].2).is_err());
    assert!(!legacy[0].2.exists());
    // What was left is reported, and only that.
    let left: Vec<String> =
        v["left"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap().to_owned()).collect();
    if immutable {
        assert_eq!(left, [stuck.display().to_string()], "{v}");
    } else {
        // Not root: the read-only directories keep their entries too.
        assert!(left.contains(&stuck.display().to_string()), "{v}");
    }
    assert!(stuck.exists());
    // The rows are gone anyway (as with LAVA's command), but the job whose
    // directory is not all gone stays recorded: a rerun retries it, and
    // once the admin dealt with the file, finishes it.
    assert_eq!(v["v1_jobs_remaining"], 0);
    let pending = inst.paths.state_dir.join(lava_v1_core::jobs::PENDING_FILE);
    assert!(pending.exists(), "the unfinished job is not recorded");
    let again = run(&inst, &["jobs", "rm", "--v1"]);
    assert_failure(&again, 1);
    assert!(stderr(&again).contains("could not be removed") && stuck.exists(), "{}", stderr(&again));
    hostile::undo_unremovable(&stuck);
    let done = run(&inst, &["jobs", "rm", "--v1", "--json"]);
    assert_success(&done);
    let v: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(v["recovered_jobs"].as_u64(), Some(1), "{v}");
    assert!(std::fs::symlink_metadata(&dated[0].3).is_err(), "{} is left", dated[0].3.display());
    assert!(!pending.exists());
}

#[test]
fn sigkill_at_any_point_then_a_rerun_completes_and_removes_nothing_else() {
    let (ours, expected) = pair(false);
    let mut c = ours.admin();
    let fks = testjob_fks(&mut c);
    let schema = lava_v1_core::fingerprint::v2(&mut c).unwrap().schema;
    let dirs = job_dirs(&ours);
    let args = ["jobs", "rm", "--v1", "--batch-size", "150"];
    for point in [
        "jobs-after-pending",
        "jobs-after-fk-drop",
        "jobs-after-delete",
        "jobs-before-commit",
        "jobs-after-commit",
        "jobs-mid-dirs",
        "jobs-before-pending-clear",
        "jobs-after-commit",
    ] {
        let child = start_paused_at(&ours, &args, point);
        kill_run(&ours, child);
        // The constraints are all there, with identical definitions; past
        // a committed batch they may be NOT VALID (still enforced for
        // every row written), which the rerun ends.
        let now = testjob_fks(&mut c);
        let unvalidated = now.iter().filter(|(_, _, d)| d.ends_with(" NOT VALID")).count();
        let as_valid: Vec<_> = now
            .into_iter()
            .map(|(t, n, d)| (t, n, d.strip_suffix(" NOT VALID").map(str::to_owned).unwrap_or(d)))
            .collect();
        assert_eq!(fks, as_valid, "after a kill at {point}");
        if unvalidated == 0 {
            assert_eq!(schema, lava_v1_core::fingerprint::v2(&mut c).unwrap().schema);
        }
        // No directory of a job that still exists was touched, nor any V2 one.
        let existing: BTreeSet<i32> = c
            .query("SELECT id FROM lava_scheduler_app_testjob", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for (id, v2, legacy, dated) in &dirs {
            if *v2 || existing.contains(id) {
                assert!(legacy.is_dir() || dated.is_dir(), "job {id} lost its directory at {point}");
            }
        }
    }
    assert!(ours.paths.state_dir.join(lava_v1_core::jobs::PENDING_FILE).exists());
    let out = run(&ours, &["jobs", "rm", "--v1", "--json"]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["recovered_jobs"].as_u64().unwrap() > 0, "{v}");
    assert!(!ours.paths.state_dir.join(lava_v1_core::jobs::PENDING_FILE).exists());
    apply_reference_rules(&expected, "true");
    assert_eq!(differing(&all_rows(&mut c), &all_rows(&mut expected.admin())), Vec::<String>::new());
    assert_eq!(fks, testjob_fks(&mut c));
    for (id, v2, legacy, dated) in &dirs {
        if *v2 {
            assert!(legacy.is_dir() || dated.is_dir(), "V2 job {id}");
        } else {
            assert!(!legacy.exists() && !dated.exists(), "V1 job {id}");
        }
    }
}

#[test]
fn killed_before_the_validation_the_constraints_hold_and_a_rerun_validates_them() {
    let (ours, expected) = pair(false);
    let mut c = ours.admin();
    let fks = testjob_fks(&mut c);
    let child =
        start_paused_at(&ours, &["jobs", "rm", "--v1", "--batch-size", "150"], "jobs-before-validate");
    kill_run(&ours, child);
    // Every batch committed; the constraints are there, NOT VALID.
    let now = testjob_fks(&mut c);
    assert_eq!(now.len(), fks.len());
    for ((t, n, d), (t2, n2, d2)) in fks.iter().zip(&now) {
        assert_eq!((t, n, format!("{d} NOT VALID")), (t2, n2, d2.clone()));
    }
    // NOT VALID, they still refuse a row naming a job that is gone.
    let e = c
        .execute(
            "INSERT INTO lava_scheduler_app_testjob_tags (testjob_id, tag_id)
             SELECT -1, min(id) FROM lava_scheduler_app_tag",
            &[],
        )
        .unwrap_err();
    assert_eq!(e.code(), Some(&postgres::error::SqlState::FOREIGN_KEY_VIOLATION), "{e}");
    // A rerun with no job left to remove validates them.
    let out = run(&ours, &["jobs", "rm", "--v1", "--json"]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["jobs_selected"], 0, "{v}");
    assert_eq!(fks, testjob_fks(&mut c));
    apply_reference_rules(&expected, "true");
    assert_eq!(differing(&all_rows(&mut c), &all_rows(&mut expected.admin())), Vec::<String>::new());
}

#[test]
fn pending_work_of_another_instance_is_refused() {
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    finish_v1_jobs(&mut inst.admin());
    std::fs::create_dir_all(&inst.paths.state_dir).unwrap();
    let pending = inst.paths.state_dir.join(lava_v1_core::jobs::PENDING_FILE);
    std::fs::write(
        &pending,
        "lava-v1 jobs-rm pending 1\ndatabase `other` on x:1 as `y`\nmedia-root /m\n12 2016/01/01\n",
    )
    .unwrap();
    let out = run(&inst, &["jobs", "rm", "--v1"]);
    assert_failure(&out, 1);
    assert!(stderr(&out).contains("unfinished work of another instance"), "{}", stderr(&out));
    assert!(pending.exists());
    let _: &Path = &pending;
}

#[test]
fn jobs_rm_goes_through_a_mounted_job_output_but_never_into_a_bind_mount_below_it() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    finish_v1_jobs(&mut inst.admin());
    let outside = tempfile::tempdir().unwrap();
    hostile::precious_dir(outside.path());
    let outside_before = hostile::listing(outside.path());
    let dirs = job_dirs(&inst);
    let v1: Vec<PathBuf> = dirs
        .iter()
        .filter(|d| !d.1)
        .filter_map(|d| [&d.2, &d.3].into_iter().find(|p| p.is_dir()).cloned())
        .collect();
    let v2_files: Vec<PathBuf> = dirs
        .iter()
        .filter(|d| d.1)
        .flat_map(|d| [d.2.join("output.yaml"), d.3.join("output.yaml")])
        .collect();
    let v2_files: Vec<PathBuf> = v2_files.into_iter().filter(|f| f.exists()).collect();
    assert!(v1.len() > 2 && !v2_files.is_empty());
    // job-output on a mount of its own (the admin's layout: logs on their
    // own disk), and a directory outside bind-mounted into one V1 job's.
    let job_output = inst.media_root().join("job-output");
    let point = v1[0].join("shared-logs");
    std::fs::create_dir(&point).unwrap();
    let mounts = [(job_output.as_path(), job_output.as_path()), (outside.path(), point.as_path())];

    let v = removal_leaving_only_a_mount_point(&inst, &mounts, &["jobs", "rm", "--v1", "--json"], &point);
    assert_eq!(outside_before, hostile::listing(outside.path()), "removed through the bind mount");
    assert!(point.is_dir() && !v1[0].join("output.txt").exists());
    for d in &v1[1..] {
        assert!(!d.exists(), "{} was not removed through the mounted job-output", d.display());
    }
    for f in &v2_files {
        assert!(f.exists(), "{}", f.display());
    }
    assert_eq!(v["v1_jobs_remaining"], 0);
}

#[test]
fn verbose_says_where_the_time_went() {
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    drop_v1_by_sql(&mut inst.admin());
    let out = run(&inst, &["jobs", "rm", "--v1", "--verbose", "--batch-size", "200", "--json"]);
    assert_success(&out);
    let err = stderr(&out);
    for phase in [
        "Time per phase:",
        "select a batch",
        "delete the rows",
        "drop the foreign keys",
        "re-create the foreign keys",
        "validate the foreign keys",
        "commit",
        "total",
    ] {
        assert!(err.contains(phase), "{phase}: {err}");
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["phases_us"]["delete the rows"].as_u64().unwrap() > 0, "{v}");
}
