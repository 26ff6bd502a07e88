//! `lava-v1 backup`, `report`, `hold` and `unhold` through the binary.

use std::os::unix::fs::PermissionsExt;

use lava_v1_testkit::cluster::LAVA_PASSWORD;
use lava_v1_testkit::{Cluster, Instance, Seed};

use crate::util::*;

#[test]
fn backup_command_prints_the_path_and_journals_it() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let dir = tempfile::tempdir().unwrap();
    let out = run(&inst, &["backup", "--backup-dir", dir.path().to_str().unwrap()]);
    assert_success(&out);
    let text = stdout(&out);
    let path = text.lines().last().unwrap().trim().to_owned();
    assert!(std::path::Path::new(&path).join("manifest.json").exists(), "{text}");
    assert!(text.contains("45 tables"), "{text}");
    let last = std::fs::read_to_string(inst.paths.state_dir.join("last-backup")).unwrap();
    assert_eq!(last.trim(), path);
    let journal = std::fs::read_to_string(inst.paths.state_dir.join("journal.log")).unwrap();
    assert!(journal.contains("backup: done: verified"), "{journal}");
}

#[test]
fn report_holds_the_error_of_a_failed_drop_and_no_password() {
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
    // A failed drop: another session holds a lock.
    let mut other = inst.admin();
    let mut tx = other.transaction().unwrap();
    tx.batch_execute("SELECT count(*) FROM dashboard_app_bundle").unwrap();
    assert_failure(&run(&inst, &["drop", "--yes", "--lock-timeout", "1"]), 1);
    tx.rollback().unwrap();

    let logs = tempfile::tempdir().unwrap();
    std::fs::write(
        logs.path().join("history.log"),
        format!("Start-Date: 2017-12-20\nCommandline: apt-get upgrade\nError: Sub-process /usr/bin/dpkg returned an error code (1)\nPGPASSWORD={LAVA_PASSWORD}\n"),
    )
    .unwrap();
    std::fs::write(
        logs.path().join("term.log"),
        format!("Setting up lava-server ...\nconnecting with {LAVA_PASSWORD}\n"),
    )
    .unwrap();
    let target = logs.path().join("report.txt");
    let out = run(
        &inst,
        &["report", "--output", target.to_str().unwrap(), "--apt-log-dir", logs.path().to_str().unwrap()],
    );
    assert_success(&out);
    assert_eq!(stdout(&out).trim(), target.to_str().unwrap());
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(!text.contains(LAVA_PASSWORD), "password in the report");
    assert!(text.contains("timed out") && text.contains("FAILED"), "{text}");
    assert!(text.contains("returned an error code (1)"), "{text}");
    assert!(text.contains("\"state\": \"present\""), "{text}");
    assert!(text.contains("LAVA_DB_PASSWORD=********"), "{text}");
    assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn hold_refuses_inside_a_maintainer_script_and_reports_apt_mark() {
    let inst = Instance::new(Cluster::shared(), Seed { scale: 0, media: false, django110_names: false });
    let out = command(&inst).arg("hold").env("DPKG_MAINTSCRIPT_NAME", "postinst").output().unwrap();
    assert_failure(&out, 1);
    assert!(stderr(&out).contains("inside a maintainer script"), "{}", stderr(&out));
    assert!(stderr(&out).contains("apt-mark hold lava-server"), "{}", stderr(&out));

    // A stand-in apt-mark (the real one would change this machine's dpkg
    // selections; the chroot tests use the real one).
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("calls");
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> {}\ncase \"$1\" in hold) echo \"lava-server set on hold.\";; unhold) echo \"Canceled hold on lava-server.\";; esac\n",
        log.display()
    );
    std::fs::write(bin.path().join("apt-mark"), script).unwrap();
    std::fs::set_permissions(bin.path().join("apt-mark"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    for (verb, expect) in [("hold", "now on hold"), ("unhold", "no longer on hold")] {
        let out = command(&inst)
            .arg(verb)
            .env("PATH", &path)
            .env_remove("DPKG_MAINTSCRIPT_NAME")
            .env_remove("DPKG_FRONTEND_LOCKED")
            .output()
            .unwrap();
        assert_success(&out);
        assert!(stdout(&out).contains(expect), "{}", stdout(&out));
    }
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.contains("hold") && calls.contains("lava-server") && calls.contains("unhold"), "{calls}");
}
