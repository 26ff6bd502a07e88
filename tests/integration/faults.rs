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

/// `lava-v1` with the configuration and state directory the postinst uses
/// under the `DPKG_ROOT` `root`.
fn admin_under(root: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(lava_v1_testkit::program("lava-v1"));
    c.arg("--instance-conf")
        .arg(root.join("etc/lava-server/instance.conf"))
        .arg("--settings-conf")
        .arg(root.join("etc/lava-server/settings.conf"))
        .arg("--state-dir")
        .arg(root.join("var/lib/lava-server/v1-removal"))
        .args(args)
        .env_remove("LAVA_V1_FAULT_PAUSE")
        .env("RUST_LOG", "info");
    c
}

/// The postinst, as dpkg runs it for `configure` (the workspace builds it
/// beside `lava-v1`).
pub(crate) fn postinst_under(root: &std::path::Path) -> std::process::Command {
    let bin = lava_v1_testkit::program("lava-server-postinst");
    let mut c = std::process::Command::new(bin);
    c.args(["configure", "2017.10-1"])
        .env("DPKG_ROOT", root)
        .env("DPKG_MAINTSCRIPT_NAME", "postinst")
        .env("DPKG_MAINTSCRIPT_PACKAGE", "lava-server")
        .env_remove("DEBIAN_HAS_FRONTEND")
        .env_remove("LAVA_V1_FAULT_PAUSE")
        .stdin(std::process::Stdio::null());
    c
}

#[test]
fn the_postinst_and_an_admin_never_work_at_once() {
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let root = inst.dpkg_root();
    let before = snapshot(&inst);

    // An admin's drop holds the lock: dpkg's postinst refuses at once,
    // naming the holder, and changes nothing.
    let (admin, _) = spawn_paused_command(admin_under(&root, &["drop", "--yes"]), "after-lock", None);
    let started = Instant::now();
    let out = postinst_under(&root).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "the postinst waited for the lock");
    assert_failure(&out, 1);
    assert!(stderr(&out).contains(&format!("pid {}", admin.id())), "{}", stderr(&out));
    kill_run(&inst, admin);
    assert_eq!(before, snapshot(&inst));

    // The other way round: while the postinst works, every destructive
    // admin command refuses, naming the postinst's pid.
    let (postinst, _) = spawn_paused_command(postinst_under(&root), "after-lock", None);
    let backups = root.join("var/backups/lava-server");
    let backup = ["backup", "--backup-dir", backups.to_str().unwrap()];
    for args in [&["drop", "--yes"][..], &["jobs", "rm", "--v1"], &["files", "rm"], &backup] {
        let out = admin_under(&root, args).output().unwrap();
        assert_no_secret(&out);
        assert_failure(&out, 1);
        assert!(stderr(&out).contains(&format!("pid {}", postinst.id())), "{args:?}: {}", stderr(&out));
    }
    kill_run(&inst, postinst);
    assert_eq!(before, snapshot(&inst));

    // The killed postinst's lock died with it: dpkg --configure -a reruns
    // the postinst, and it completes.
    let out = postinst_under(&root).output().unwrap();
    assert_no_secret(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let after = snapshot(&inst);
    assert!(after.tables.is_empty() && !after.column && after.rows.len() == 2);
    assert_eq!(before.fingerprint.diff(&after.fingerprint), Vec::<String>::new());
}

#[test]
fn the_postinst_on_a_disk_that_fills_during_its_backup_fails_clearly_and_the_rerun_completes() {
    if lava_v1_testkit::needs_root("the_postinst_on_a_disk_that_fills… (mounts a tmpfs)") {
        return;
    }
    // A live instance; the backup directory on a small disk that another
    // writer fills once the postinst's space check has passed.
    let inst = live(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let before = lava_v1_testkit::world::World::read(&mut inst.admin());
    let root = inst.dpkg_root();
    let mnt = crate::backup::Tmpfs::mount("64m");
    std::fs::create_dir_all(root.join("var/backups")).unwrap();
    std::os::unix::fs::symlink(mnt.path(), root.join("var/backups/lava-server")).unwrap();

    let resume = inst.dir.path().join("resume-postinst");
    let mut cmd = postinst_under(&root);
    cmd.env("RUST_LOG", "warn");
    let (mut child, stderr) = spawn_paused_command(cmd, "backup-after-space-check", Some(&resume));
    let filler = mnt.path().join("filler");
    let filled = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "status=none"])
        .arg(format!("of={}", filler.display()))
        .status()
        .unwrap();
    assert!(!filled.success(), "dd stops when the disk is full");
    std::fs::write(&resume, "").unwrap();
    let status = child.wait().unwrap();
    let err = stderr.join().unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("filled up") && err.contains("free some space"), "{err}");
    assert!(err.contains("no data was removed") && err.contains("dpkg --configure -a"), "{err}");
    assert!(!err.contains(lava_v1_testkit::cluster::LAVA_PASSWORD), "{err}");
    assert_eq!(lava_v1_testkit::world::World::read(&mut inst.admin()).diff(&before), Vec::<String>::new());
    let left: Vec<_> = std::fs::read_dir(mnt.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("filler")], "the incomplete backup was left");

    // Room again: what `dpkg --configure -a` runs completes.
    std::fs::remove_file(&filler).unwrap();
    let out = postinst_under(&root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(inst.v1_table_count(), 0);
    let made: Vec<_> = std::fs::read_dir(mnt.path()).unwrap().flatten().collect();
    assert_eq!(made.len(), 1, "one verified backup");
}
