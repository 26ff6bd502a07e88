//! `lava-v1 status`: the read-only report.

use lava_v1_testkit::{Cluster, Instance, Seed};

use crate::util::*;

#[test]
fn status_reports_every_kind_of_v1_data() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let before = snapshot(&inst);
    let out = run(&inst, &["status", "--json"]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "present");
    assert_eq!(v["v1_tables"].as_array().unwrap().len(), 45);
    let mut c = inst.admin();
    let results: i64 = c.query_one("SELECT count(*) FROM dashboard_app_testresult", &[]).unwrap().get(0);
    let reported =
        v["v1_tables"].as_array().unwrap().iter().find(|t| t["name"] == "dashboard_app_testresult").unwrap()
            ["rows"]
            .as_i64()
            .unwrap();
    assert_eq!(reported, results);
    let v1: i64 = c
        .query_one("SELECT count(*) FROM lava_scheduler_app_testjob WHERE NOT is_pipeline", &[])
        .unwrap()
        .get(0);
    assert_eq!(v["v1_jobs"]["total"].as_i64().unwrap(), v1);
    for status in ["submitted", "running", "complete", "incomplete", "canceled", "canceling"] {
        assert!(v["v1_jobs"]["by_status"][status].as_i64().unwrap() > 0, "{status}");
    }
    let with_bundle: i64 =
        c.query_one("SELECT count(results_bundle_id) FROM lava_scheduler_app_testjob", &[]).unwrap().get(0);
    assert_eq!(v["results_bundle_column"]["jobs_with_bundle"].as_i64().unwrap(), with_bundle);
    let views: Vec<&str> =
        v["dependent_views"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(views, ["query_1", "query_2"]);
    assert!(v["blockers"].as_array().unwrap().is_empty());
    assert!(v["migrations"].as_array().unwrap().iter().all(|m| m["applied"].is_null()));
    let media = v["media"].as_array().unwrap();
    for dir in media {
        assert_eq!(dir["exists"], true, "{dir}");
        assert!(dir["files"].as_u64().unwrap() > 0, "{dir}");
    }
    // Read-only.
    assert_eq!(before, snapshot(&inst));

    let human = run(&inst, &["status"]);
    assert_success(&human);
    let text = stdout(&human);
    assert!(text.contains("state: present"), "{text}");
    assert!(text.contains("dashboard_app_testresult"), "{text}");
    assert!(text.contains("lava-v1 drop --yes"), "{text}");
}

#[test]
fn status_after_the_drop_says_removed() {
    let inst = live(Cluster::shared(), Seed::default());
    assert_success(&run(&inst, &["drop", "--yes"]));
    let out = run(&inst, &["status", "--json"]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "removed");
    assert!(v["v1_tables"].as_array().unwrap().is_empty());
    assert!(v["results_bundle_column"].is_null());
    let text = stdout(&run(&inst, &["status"]));
    assert!(text.contains("state: removed") && text.contains("V1 files above remain"), "{text}");
}

#[test]
fn not_a_lava_database_is_a_clear_error() {
    let cluster = Cluster::shared();
    let inst = Instance::new(cluster, Seed { scale: 0, media: false, django110_names: false });
    // Point the instance at other databases.
    let mut admin = cluster.client("postgres");
    let empty = format!("{}_empty", inst.db_name);
    let other = format!("{}_other", inst.db_name);
    admin.batch_execute(&format!("CREATE DATABASE {empty} OWNER lavaserver")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {other} OWNER lavaserver")).unwrap();
    cluster
        .client_as("lavaserver", &other)
        .batch_execute("CREATE TABLE invoices (id int); CREATE TABLE customers (id int)")
        .unwrap();
    let conf = std::fs::read_to_string(&inst.paths.instance_conf).unwrap();
    for (db, expect) in [(&empty, "the database is empty"), (&other, "customers, invoices")] {
        std::fs::write(&inst.paths.instance_conf, conf.replace(&inst.db_name, db)).unwrap();
        for args in [&["status"][..], &["drop", "--yes"][..]] {
            let out = run(&inst, args);
            assert_failure(&out, 1);
            let err = stderr(&out);
            assert!(err.contains("is not a LAVA database") && err.contains(expect), "{err}");
            assert!(err.contains("LAVA_DB_NAME"), "{err}");
        }
    }
    let tables: i64 = cluster
        .client_as("lavaserver", &other)
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[])
        .unwrap()
        .get(0);
    assert_eq!(tables, 2);
    admin.batch_execute(&format!("DROP DATABASE {empty}")).unwrap();
    admin.batch_execute(&format!("DROP DATABASE {other}")).unwrap();
}

#[test]
fn an_older_lava_is_refused() {
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    inst.admin()
        .batch_execute("DELETE FROM django_migrations WHERE app = 'lava_scheduler_app' AND name >= '0021'")
        .unwrap();
    let before = snapshot(&inst);
    let out = run(&inst, &["drop", "--yes"]);
    assert_failure(&out, 1);
    assert!(stderr(&out).contains("older than 2017.10"), "{}", stderr(&out));
    assert_eq!(before, snapshot(&inst));
}

#[test]
fn unreachable_database_and_bad_config_are_clear_errors() {
    let inst = Instance::new(Cluster::shared(), Seed { scale: 0, media: false, django110_names: false });
    let conf = std::fs::read_to_string(&inst.paths.instance_conf).unwrap();
    // A wrong password.
    std::fs::write(
        &inst.paths.instance_conf,
        conf.replace(lava_v1_testkit::cluster::LAVA_PASSWORD, "wrong-password-xyz"),
    )
    .unwrap();
    let out = run(&inst, &["status"]);
    assert_failure(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("cannot connect") && err.contains("lavaserver"), "{err}");
    assert!(!err.contains("wrong-password-xyz"), "{err}");
    // Garbage in instance.conf names the line.
    std::fs::write(&inst.paths.instance_conf, format!("{conf}}}{{ garbage\n")).unwrap();
    let out = run(&inst, &["status"]);
    assert_failure(&out, 1);
    let line = conf.lines().count() + 1;
    assert!(stderr(&out).contains(&format!("instance.conf:{line}")), "{}", stderr(&out));
    // A missing file.
    std::fs::remove_file(&inst.paths.instance_conf).unwrap();
    let out = run(&inst, &["status"]);
    assert_failure(&out, 1);
    assert!(stderr(&out).contains("instance configuration"), "{}", stderr(&out));
}

#[test]
fn help_on_everything() {
    for args in [&["--help"][..], &["status", "--help"][..], &["drop", "--help"][..]] {
        let out =
            std::process::Command::new(lava_v1_testkit::program("lava-v1")).args(args).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("--instance-conf") && text.contains("--state-dir"), "{text}");
    }
}
