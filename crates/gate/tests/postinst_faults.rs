//! The postinst under interruption and contention, on a live instance:
//! an admin's command and dpkg's postinst never work at once (each
//! refuses naming the other's pid, a killed postinst's rerun completes),
//! and a disk that fills during the postinst's backup fails clearly and
//! the rerun completes.  The postinst runs as dpkg runs it, under a
//! `DPKG_ROOT` holding the instance's configuration and a decision to
//! remove; the workspace's `lava-v1` is the admin.

use std::process::Output;
use std::time::{Duration, Instant};

use lava_v1_testkit::cluster::LAVA_PASSWORD;
use lava_v1_testkit::paused::{kill_run, postinst_under, spawn_paused_command, Tmpfs};
use lava_v1_testkit::world::World;
use lava_v1_testkit::{Cluster, Instance, Seed};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_failure(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", stderr(out));
}

#[track_caller]
fn assert_no_secret(out: &Output) {
    for text in [String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)] {
        assert!(!text.contains(LAVA_PASSWORD), "the password leaked:\n{text}");
    }
}

fn world(inst: &Instance<'_>) -> World {
    World::read(&mut inst.admin())
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

#[test]
fn the_postinst_and_an_admin_never_work_at_once() {
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let root = inst.dpkg_root();
    let before = world(&inst);
    let v2_before = lava_v1_core::fingerprint::v2(&mut inst.admin()).unwrap();

    // An admin's drop holds the lock: dpkg's postinst refuses at once,
    // naming the holder, and changes nothing.
    let (admin, _) = spawn_paused_command(admin_under(&root, &["drop", "--yes"]), "after-lock", None);
    let started = Instant::now();
    let out = postinst_under(&root).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "the postinst waited for the lock");
    assert_failure(&out, 1);
    assert!(stderr(&out).contains(&format!("pid {}", admin.id())), "{}", stderr(&out));
    kill_run(&inst, admin);
    assert_eq!(world(&inst).diff(&before), Vec::<String>::new());

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
    assert_eq!(world(&inst).diff(&before), Vec::<String>::new());

    // The killed postinst's lock died with it: dpkg --configure -a reruns
    // the postinst, and it completes.
    let out = postinst_under(&root).output().unwrap();
    assert_no_secret(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(inst.v1_table_count(), 0);
    let v2_after = lava_v1_core::fingerprint::v2(&mut inst.admin()).unwrap();
    assert_eq!(v2_before.diff(&v2_after), Vec::<String>::new(), "V2 data changed");
}

#[test]
fn the_postinst_on_a_disk_that_fills_during_its_backup_fails_clearly_and_the_rerun_completes() {
    if lava_v1_testkit::needs_root("the_postinst_on_a_disk_that_fills… (mounts a tmpfs)") {
        return;
    }
    // A live instance; the backup directory on a small disk that another
    // writer fills once the postinst's space check has passed.
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let before = world(&inst);
    let root = inst.dpkg_root();
    let mnt = Tmpfs::mount("64m");
    std::fs::create_dir_all(root.join("var/backups")).unwrap();
    std::os::unix::fs::symlink(mnt.path(), root.join("var/backups/lava-server")).unwrap();

    let resume = inst.dir.path().join("resume-postinst");
    let mut cmd = postinst_under(&root);
    cmd.env("RUST_LOG", "warn");
    let (mut child, stderr) = spawn_paused_command(cmd, "backup-after-space-check", Some(&resume));
    let filler = mnt.fill();
    std::fs::write(&resume, "").unwrap();
    let status = child.wait().unwrap();
    let err = stderr.join().unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("filled up") && err.contains("free some space"), "{err}");
    assert!(err.contains("no data was removed") && err.contains("dpkg --configure -a"), "{err}");
    assert!(!err.contains(lava_v1_testkit::cluster::LAVA_PASSWORD), "{err}");
    assert_eq!(world(&inst).diff(&before), Vec::<String>::new());
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
