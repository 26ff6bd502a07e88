//! Backups of the V1 data: complete, private, verified, restorable, and
//! never exposing the password.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use lava_v1_core::backup::{self, BackupOptions};
use lava_v1_core::schema::V1_TABLES;
use lava_v1_testkit::cluster::{LAVA_PASSWORD, LAVA_ROLE};
use lava_v1_testkit::{Cluster, Instance, Seed};

fn options(dir: &Path) -> BackupOptions {
    BackupOptions { dir: dir.to_owned(), ..BackupOptions::default() }
}

/// Every command line and environment of every process, from /proc.
fn all_cmdlines() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            for what in ["cmdline", "environ"] {
                if let Ok(c) = std::fs::read(e.path().join(what)) {
                    out.push(String::from_utf8_lossy(&c).replace('\0', " "));
                }
            }
        }
    }
    out
}

#[test]
fn backup_is_private_verified_and_restores_the_same_v1_data() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let before = backup::v1_fingerprint(&mut inst.admin()).unwrap();
    assert!(before["dashboard_app_testresult"].0 > 0);
    let dir = tempfile::tempdir().unwrap();

    // Watch every process's argv while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen_pg_dump = false;
            while !stop.load(Ordering::Relaxed) {
                for c in all_cmdlines() {
                    assert!(!c.contains(LAVA_PASSWORD), "password in argv or environment: {c}");
                    seen_pg_dump |= c.contains("pg_dump");
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            seen_pg_dump
        })
    };
    let made = backup::backup(&inst.paths, &options(dir.path())).unwrap();
    stop.store(true, Ordering::Relaxed);
    let saw_pg_dump = watcher.join().unwrap();
    eprintln!("pg_dump observed while watching argv: {saw_pg_dump}");

    // Modes: the directory 0700, every file 0600; no passfile left.
    assert_eq!(std::fs::metadata(&made.path).unwrap().permissions().mode() & 0o777, 0o700);
    let mut files = 0;
    for entry in walk(&made.path) {
        let meta = std::fs::metadata(&entry).unwrap();
        if meta.is_file() {
            files += 1;
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", entry.display());
            let content = std::fs::read(&entry).unwrap();
            assert!(
                !String::from_utf8_lossy(&content).contains(LAVA_PASSWORD),
                "password in {}",
                entry.display()
            );
        }
    }
    assert!(files >= 10, "{files}");
    assert!(!made.path.join(".pgpass").exists());
    assert_eq!(made.manifest.tables.len(), 45);
    assert_eq!(made.manifest.tables["dashboard_app_testresult"], before["dashboard_app_testresult"].0);
    assert!(made.path.join("media.tar").exists());
    backup::verify(&made.path, &BackupOptions::default()).unwrap();

    // A corrupted file is caught.
    let copy = tempfile::tempdir().unwrap();
    let status =
        std::process::Command::new("cp").arg("-a").arg(&made.path).arg(copy.path()).status().unwrap();
    assert!(status.success());
    let broken = copy.path().join(made.path.file_name().unwrap());
    let job_file = broken.join("jobs/lava_scheduler_app_testjob.copy");
    let mut text = std::fs::read(&job_file).unwrap();
    text[10] ^= 1;
    std::fs::write(&job_file, text).unwrap();
    let err = backup::verify(&broken, &BackupOptions::default()).unwrap_err().to_string();
    assert!(err.contains("checksum"), "{err}");

    // Restore into a fresh cluster: a 2017.10 instance without V1 data.
    let other = Cluster::start();
    let target = Instance::new(&other, Seed { media: false, ..Seed::default() });
    without_v1_data(&target);
    let summary = backup::restore(&target.paths, &made.path, &BackupOptions::default()).unwrap();
    assert!(!summary.created_schema);
    assert_eq!(summary.tables, 45);
    let after = backup::v1_fingerprint(&mut target.admin()).unwrap();
    assert_eq!(before, after);

    // A second restore refuses: the V1 tables now hold data.
    let err = backup::restore(&target.paths, &made.path, &BackupOptions::default()).unwrap_err().to_string();
    assert!(err.contains("already holds V1 data"), "{err}");
    assert_eq!(backup::v1_fingerprint(&mut target.admin()).unwrap(), before);
}

#[test]
fn restore_is_all_or_nothing() {
    // An instance without the users the V1 rows reference: pg_restore's
    // single transaction fails as a whole, with the reason, and leaves
    // nothing behind.
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let dir = tempfile::tempdir().unwrap();
    let made = backup::backup(&inst.paths, &options(dir.path())).unwrap();
    let target = Instance::new(Cluster::shared(), Seed { scale: 0, media: false, django110_names: false });
    target
        .admin()
        .batch_execute(&format!("DROP TABLE {} CASCADE", lava_v1_core::schema::V1_TABLES.join(", ")))
        .unwrap();
    let err = backup::restore(&target.paths, &made.path, &BackupOptions::default()).unwrap_err().to_string();
    assert!(err.contains("pg_restore") && err.contains("auth_user"), "{err}");
    let n: i64 = target
        .admin()
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'dashboard\\_app\\_%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[test]
fn a_pg_dump_that_cannot_say_its_version_is_refused_and_nothing_is_kept() {
    // The manifest records pg_dump's version; a tool that fails even that
    // is refused with what it said, before anything is written.
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let work = tempfile::tempdir().unwrap();
    let fake = work.path().join("pg_dump");
    std::fs::write(&fake, "#!/bin/sh\necho 'pg_dump: cannot load libpq.so.5' >&2\nexit 127\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = work.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let options = BackupOptions { pg_dump: fake, ..options(&dir) };
    let err = backup::backup(&inst.paths, &options).unwrap_err().to_string();
    assert!(err.contains("--version") && err.contains("cannot load libpq.so.5"), "{err}");
    let left: Vec<_> = walk(&dir).into_iter().filter(|p| p.is_file()).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn too_small_a_disk_fails_clearly_and_writes_nothing() {
    if lava_v1_testkit::needs_root("too_small_a_disk_fails_clearly_and_writes_nothing (mounts a tmpfs)") {
        return;
    }
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let mnt = lava_v1_testkit::paused::Tmpfs::mount("64k");
    let result = backup::backup(&inst.paths, &options(&mnt.path().join("backups")));
    let listing: Vec<_> = std::fs::read_dir(mnt.path()).unwrap().flatten().map(|e| e.path()).collect();
    drop(mnt);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("not enough free space") && err.contains("nothing was dropped"), "{err}");
    assert!(listing.is_empty(), "{listing:?}");
}

#[test]
fn a_disk_that_fills_up_during_the_backup_is_a_clear_error_and_a_rerun_completes() {
    if lava_v1_testkit::needs_root("a_disk_that_fills_up_during_the_backup… (mounts a tmpfs)") {
        return;
    }
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let before = lava_v1_testkit::world::World::read(&mut inst.admin());
    let mnt = lava_v1_testkit::paused::Tmpfs::mount("256m");
    let backups = mnt.path().join("backups");
    let dir_arg = backups.to_str().unwrap().to_owned();

    // The space check passes; then something else fills the disk.
    let paused = crate::util::start_resumable(
        &inst,
        &["backup", "--backup-dir", &dir_arg],
        "backup-after-space-check",
    );
    let filler = mnt.fill();
    paused.resume();
    let (status, err) = paused.finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("the disk holding `{}` filled up", backups.display()))
            && err.contains("nothing was dropped")
            && err.contains("free some space"),
        "{err}"
    );
    assert!(!err.contains(lava_v1_testkit::cluster::LAVA_PASSWORD), "{err}");
    let left: Vec<_> = std::fs::read_dir(&backups).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "the incomplete backup was left: {left:?}");
    assert_eq!(lava_v1_testkit::world::World::read(&mut inst.admin()).diff(&before), Vec::<String>::new());

    // Once there is room, a plain rerun completes.
    std::fs::remove_file(&filler).unwrap();
    let out = crate::util::run(&inst, &["backup", "--backup-dir", &dir_arg]);
    crate::util::assert_success(&out);
    let made: Vec<_> = std::fs::read_dir(&backups).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(made.len(), 1, "{made:?}");
    backup::verify(&made[0], &options(&backups)).unwrap();
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn backup_leaves_out_what_is_bind_mounted_into_the_v1_media() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let media = inst.media_root();
    let outside = tempfile::tempdir().unwrap();
    lava_v1_testkit::hostile::precious_dir(outside.path());
    let point = media.join("bundles/shared");
    std::fs::create_dir(&point).unwrap();
    let backups = tempfile::tempdir().unwrap();
    let out = crate::util::run_with_bind_mounts(
        &inst,
        &[(outside.path(), point.as_path())],
        &["backup", "--backup-dir", backups.path().to_str().unwrap()],
    );
    crate::util::assert_success(&out);
    assert!(crate::util::stderr(&out).contains("not backing up"), "{}", crate::util::stderr(&out));
    let taken = std::fs::read_dir(backups.path()).unwrap().next().unwrap().unwrap().path();
    let listed = std::process::Command::new("tar").arg("-tf").arg(taken.join("media.tar")).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.lines().any(|l| l.starts_with("bundles/bundle")), "{listed}");
    assert!(!listed.contains("bundles/shared"), "the bind mount was backed up:\n{listed}");
}

#[test]
fn a_file_hard_linked_in_the_v1_media_is_backed_up_as_two_whole_copies() {
    // tar runs with --hard-dereference (so that it keeps no table of every
    // file archived): a file linked twice is stored twice, in full, and
    // extracts as two files, neither depending on the other.
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let media = inst.media_root();
    let first = media.join("bundles/linked-bundle");
    std::fs::write(&first, "one bundle, two names\n").unwrap();
    std::fs::hard_link(&first, media.join("attachments/linked-attachment")).unwrap();
    let backups = tempfile::tempdir().unwrap();
    let out = crate::util::run(&inst, &["backup", "--backup-dir", backups.path().to_str().unwrap()]);
    crate::util::assert_success(&out);
    let taken = std::fs::read_dir(backups.path()).unwrap().next().unwrap().unwrap().path();
    let listed = std::process::Command::new("tar").arg("-tvf").arg(taken.join("media.tar")).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for name in ["bundles/linked-bundle", "attachments/linked-attachment"] {
        let line = listed.lines().find(|l| l.ends_with(name)).unwrap_or_else(|| panic!("{name}:\n{listed}"));
        assert!(line.starts_with('-'), "{name} is not stored as a file of its own: {line}");
    }
    let into = tempfile::tempdir().unwrap();
    let extracted = std::process::Command::new("tar")
        .arg("-xf")
        .arg(taken.join("media.tar"))
        .arg("-C")
        .arg(into.path())
        .args(["bundles/linked-bundle", "attachments/linked-attachment"])
        .status()
        .unwrap();
    assert!(extracted.success());
    for name in ["bundles/linked-bundle", "attachments/linked-attachment"] {
        assert_eq!(std::fs::read_to_string(into.path().join(name)).unwrap(), "one bundle, two names\n");
    }
}

#[test]
fn a_backup_killed_before_it_is_whole_never_carries_a_backups_name() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let backups = tempfile::tempdir().unwrap();
    let dir_arg = backups.path().to_str().unwrap().to_owned();
    let names = || -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(backups.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };

    // Killed with everything written and verified, just before the rename.
    let child =
        crate::util::start_paused_at(&inst, &["backup", "--backup-dir", &dir_arg], "backup-before-rename");
    crate::util::kill_run(&inst, child);
    let left = names();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("lava-v1-") && left[0].ends_with(".incomplete"), "{left:?}");
    let partial = backups.path().join(&left[0]);
    assert_eq!(std::fs::metadata(&partial).unwrap().permissions().mode() & 0o777, 0o700);

    // The rerun names what the killed run left, and makes a whole backup.
    let out = crate::util::run(&inst, &["backup", "--backup-dir", &dir_arg]);
    crate::util::assert_success(&out);
    let err = crate::util::stderr(&out);
    assert!(err.contains(&format!("{} is what an interrupted backup left", partial.display())), "{err}");
    let now = names();
    let whole: Vec<&String> = now.iter().filter(|n| !n.ends_with(".incomplete")).collect();
    assert_eq!((now.len(), whole.len()), (2, 1), "{now:?}");
    let m = backup::verify(&backups.path().join(whole[0]), &options(backups.path())).unwrap();
    let rows = backup::v1_fingerprint(&mut inst.admin()).unwrap();
    assert_eq!(m.tables.len(), 45, "every V1 table");
    for (t, n) in &m.tables {
        assert_eq!(*n, rows[t].0, "{t}");
    }
}

/// Rows per table (`schema.table`, as pg_restore names it) in a backup's
/// archive, read back from the archive itself.
fn archive_rows(dump: &Path) -> std::collections::BTreeMap<String, i64> {
    let out = std::process::Command::new("pg_restore")
        .args(["--data-only", "--file=-"])
        .arg(dump)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut rows = std::collections::BTreeMap::new();
    let mut table: Option<String> = None;
    for line in out.stdout.split(|&b| b == b'\n') {
        match &table {
            Some(t) if line == b"\\." => {
                rows.entry(t.clone()).or_insert(0);
                table = None;
            }
            Some(t) => *rows.entry(t.clone()).or_insert(0) += 1,
            None if line.starts_with(b"COPY ") => {
                let name = String::from_utf8_lossy(&line[5..]).split(' ').next().unwrap().to_owned();
                rows.entry(name.clone()).or_insert(0);
                table = Some(name);
            }
            None => {}
        }
    }
    rows
}

#[test]
fn backup_reads_the_schema_the_drop_works_on_not_public() {
    // LAVA's tables in a schema named like the role, first on the default
    // search_path ("$user", public), and empty copies of the V1 tables in
    // public.
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let mut admin = inst.admin();
    admin
        .batch_execute(&format!(
            "ALTER SCHEMA public RENAME TO {LAVA_ROLE}; CREATE SCHEMA public AUTHORIZATION {LAVA_ROLE}"
        ))
        .unwrap();
    for t in V1_TABLES {
        admin
            .batch_execute(&format!(
                "CREATE TABLE public.{t} (LIKE {LAVA_ROLE}.{t}); ALTER TABLE public.{t} OWNER TO {LAVA_ROLE}"
            ))
            .unwrap();
    }
    // What LAVA (and the drop) sees: the role's schema.
    let live = backup::v1_fingerprint(&mut inst.cluster.client_as(LAVA_ROLE, &inst.db_name)).unwrap();
    assert!(live["dashboard_app_testresult"].0 > 0);

    let dir = tempfile::tempdir().unwrap();
    match backup::backup(&inst.paths, &options(dir.path())) {
        Ok(made) => {
            let rows = archive_rows(&made.path.join("v1-tables.dump"));
            for t in V1_TABLES {
                assert_eq!(
                    rows.get(&format!("{LAVA_ROLE}.{t}")),
                    Some(&live[t].0),
                    "{t}: the archive holds {rows:?}"
                );
                assert_eq!(made.manifest.tables[t], live[t].0, "{t}");
            }
            assert_eq!(rows.len(), V1_TABLES.len(), "{rows:?}");
            for copy in &made.manifest.job_rows {
                assert_eq!(copy.rows, live[&format!("{} (V1 jobs)", copy.table)].0, "{}", copy.table);
            }
        }
        Err(e) => {
            // Refusing is fine too, as long as nothing carries a backup's name.
            eprintln!("refused: {e}");
            let named: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".incomplete"))
                .collect();
            assert!(named.is_empty(), "{named:?}");
        }
    }
}

#[test]
fn verify_counts_every_tables_rows_in_the_archive() {
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let dir = tempfile::tempdir().unwrap();
    let made = backup::backup(&inst.paths, &options(dir.path())).unwrap();
    let edited = |edit: &dyn Fn(&mut serde_json::Value)| {
        let copy = tempfile::tempdir().unwrap();
        let status =
            std::process::Command::new("cp").arg("-a").arg(&made.path).arg(copy.path()).status().unwrap();
        assert!(status.success());
        let path = copy.path().join(made.path.file_name().unwrap());
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path.join("manifest.json")).unwrap()).unwrap();
        edit(&mut m);
        std::fs::write(path.join("manifest.json"), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        let result = backup::verify(&path, &BackupOptions::default()).map(|_| ()).map_err(|e| e.to_string());
        drop(copy);
        result
    };
    // A count that differs from the archive's.
    let err = edited(&|m| {
        let n = m["tables"]["dashboard_app_testresult"].as_i64().unwrap();
        m["tables"]["dashboard_app_testresult"] = (n + 1).into();
    })
    .unwrap_err();
    assert!(err.contains("rows of") && err.contains("dashboard_app_testresult"), "{err}");
    // A table in the archive the manifest does not list.
    let err = edited(&|m| {
        m["tables"].as_object_mut().unwrap().remove("dashboard_app_tag");
    })
    .unwrap_err();
    assert!(err.contains("dashboard_app_tag"), "{err}");
    edited(&|_| {}).unwrap();
}

/// Empties `inst` of V1 data, as an archive instance kept on 2017.10 that
/// a backup is restored into.
pub(crate) fn without_v1_data(inst: &Instance<'_>) {
    inst
        .admin()
        .batch_execute(&format!(
            "UPDATE lava_scheduler_app_testjob SET results_bundle_id = NULL;
             {}
             DELETE FROM lava_scheduler_app_notificationrecipient WHERE notification_id IN
               (SELECT id FROM lava_scheduler_app_notification WHERE test_job_id IN
                 (SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline));
             DELETE FROM lava_scheduler_app_notification WHERE test_job_id IN (SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline);
             DELETE FROM lava_scheduler_app_testjob_tags WHERE testjob_id IN (SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline);
             DELETE FROM lava_scheduler_app_testjob_viewing_groups WHERE testjob_id IN (SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline);
             DELETE FROM lava_scheduler_app_testjob_failure_tags WHERE testjob_id IN (SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline);
             DELETE FROM lava_scheduler_app_testjobuser WHERE test_job_id IN (SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline);
             DELETE FROM lava_scheduler_app_devicestatetransition WHERE job_id IN (SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline);
             UPDATE lava_scheduler_app_device SET current_job_id = NULL WHERE current_job_id IN (SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline);
             UPDATE lava_scheduler_app_device SET last_health_report_job_id = NULL WHERE last_health_report_job_id IN (SELECT id FROM lava_scheduler_app_testjob WHERE NOT is_pipeline);
             DELETE FROM lava_scheduler_app_testjob WHERE NOT is_pipeline;",
            lava_v1_core::schema::V1_TABLES.iter().map(|t| format!("DELETE FROM {t};")).collect::<String>()
        ))
        .unwrap();
}

/// A copy of the backup `made`, its manifest changed by `edit` (given the
/// copy's directory), as a crafted backup directory would be.
fn crafted(
    made: &Path,
    edit: impl FnOnce(&Path, &mut serde_json::Value),
) -> (tempfile::TempDir, std::path::PathBuf) {
    let copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp").arg("-a").arg(made).arg(copy.path()).status().unwrap();
    assert!(status.success());
    let dir = copy.path().join(made.file_name().unwrap());
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    edit(&dir, &mut m);
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    (copy, dir)
}

/// Lists `name` in the manifest with the size and checksum of `file`.
fn list_file(m: &mut serde_json::Value, name: &str, file: &Path) {
    let data = std::fs::read(file).unwrap();
    let out = std::process::Command::new("sha256sum").arg(file).output().unwrap();
    let sha = String::from_utf8_lossy(&out.stdout).split(' ').next().unwrap().to_owned();
    let files = m["files"].as_array_mut().unwrap();
    files.retain(|f| f["name"] != name);
    files.push(serde_json::json!({"name": name, "bytes": data.len(), "sha256": sha}));
}

/// `lava-v1 restore DIR` into `inst`, given 60 s: (exit code, stderr), or
/// `None` for a run that hung and was killed.
fn restore_within_a_minute(inst: &Instance<'_>, dir: &Path) -> Option<(i32, String)> {
    use std::io::Read;
    let mut child = crate::util::command(inst)
        .arg("restore")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!err.contains(LAVA_PASSWORD), "{err}");
    Some((child.wait().unwrap().code().unwrap_or(-1), err))
}

#[test]
fn a_crafted_backup_directory_is_refused_and_changes_nothing() {
    use serde_json::Value;
    let source = Instance::new(Cluster::shared(), Seed::default());
    let backups = tempfile::tempdir().unwrap();
    let made = backup::backup(&source.paths, &options(backups.path())).unwrap();
    let target = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    without_v1_data(&target);
    let before = lava_v1_testkit::world::World::read(&mut target.admin());
    let job = |m: &mut Value, table: &str| -> usize {
        m["job_rows"].as_array().unwrap().iter().position(|c| c["table"] == table).unwrap()
    };

    type Edit<'a> = Box<dyn FnOnce(&Path, &mut Value) + 'a>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "SQL in a job table's name",
            Box::new(move |_, m| {
                let i = job(m, "lava_scheduler_app_testjob_tags");
                m["job_rows"][i]["table"] =
                    "lava_scheduler_app_testjob_tags WITH NO DATA; CREATE TABLE public.pwned (); --".into();
            }),
            "which is not one of the V1 job tables",
        ),
        (
            "auth_user as a job table",
            Box::new(move |dir, m| {
                let i = job(m, "lava_scheduler_app_testjob_tags");
                m["job_rows"][i]["table"] = "auth_user".into();
                m["job_rows"][i]["columns"] = serde_json::json!(["id", "password", "username"]);
                m["job_rows"][i]["rows"] = 1.into();
                let file = dir.join("jobs/auth_user.copy");
                std::fs::write(&file, "999\tpbkdf2_sha256$x\tintruder\n").unwrap();
                list_file(m, "jobs/auth_user.copy", &file);
            }),
            "which is not one of the V1 job tables",
        ),
        (
            "auth_user as a V1 table",
            Box::new(|_, m| {
                m["tables"]["auth_user"] = 0.into();
            }),
            "as a V1 table, and it is not one",
        ),
        (
            "an absolute file name",
            Box::new(|_, m| {
                m["files"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"name": "/dev/zero", "bytes": 1, "sha256": "00"}));
            }),
            "\"/dev/zero\", which is not a file of a backup",
        ),
        (
            "a file outside the backup",
            Box::new(|dir, m| {
                let outside = dir.parent().unwrap().join("x");
                std::fs::write(&outside, "outside\n").unwrap();
                m["files"].as_array_mut().unwrap().push(serde_json::json!({"name": "../x"}));
                list_file(m, "../x", &outside);
            }),
            "\"../x\", which is not a file of a backup",
        ),
        (
            "a file that is a symbolic link",
            Box::new(|dir, _| {
                // The same bytes, elsewhere: only following the link would
                // find them.
                let elsewhere = dir.parent().unwrap().join("media.tar");
                std::fs::rename(dir.join("media.tar"), &elsewhere).unwrap();
                std::os::unix::fs::symlink(&elsewhere, dir.join("media.tar")).unwrap();
            }),
            "`media.tar` is a symbolic link",
        ),
        (
            "an archive holding another table and a view",
            Box::new(|dir, m| {
                let mut admin = source.admin();
                admin.batch_execute("CREATE VIEW public.dashboard_app_v AS SELECT 1 AS x").unwrap();
                let dump = dir.join("v1-tables.dump");
                std::fs::remove_file(&dump).unwrap();
                let out = std::process::Command::new("pg_dump")
                    .arg("--host")
                    .arg(source.cluster.socket_dir())
                    .arg(format!("--port={}", source.cluster.port))
                    .args(["--username=postgres", "--format=custom", "--table=public.dashboard_app_*"])
                    .args(["--table=public.auth_user", "--exclude-table-data=public.auth_user"])
                    .arg(format!("--file={}", dump.display()))
                    .arg(&source.db_name)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                admin.batch_execute("DROP VIEW public.dashboard_app_v").unwrap();
                list_file(m, "v1-tables.dump", &dump);
            }),
            "the archive holds something other than the V1 tables",
        ),
    ];
    for (what, edit, expected) in cases {
        let (_keep, dir) = crafted(&made.path, edit);
        let result = restore_within_a_minute(&target, &dir);
        let (code, err) = result.unwrap_or_else(|| panic!("{what}: the restore hung"));
        assert_eq!(code, 1, "{what}: {err}");
        assert!(err.contains(expected), "{what}: {err}");
        assert_eq!(
            lava_v1_testkit::world::World::read(&mut target.admin()).diff(&before),
            Vec::<String>::new(),
            "{what}: the database changed"
        );
    }
    // The backup itself restores.
    let (code, err) = restore_within_a_minute(&target, &made.path).unwrap();
    assert_eq!(code, 0, "{err}");
}

/// Every file under `dir` (links not followed) whose name is `.pgpass` or
/// whose content holds the password.
fn files_with_the_password(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file()
                && (e.file_name() == ".pgpass"
                    || std::fs::read(&p).is_ok_and(|c| String::from_utf8_lossy(&c).contains(LAVA_PASSWORD)))
            {
                found.push(p);
            }
        }
    }
    found
}

/// A stand-in for `program` (pg_dump or pg_restore) in `bin`: the real one
/// for `--version` and for any call whose arguments do not hold `trap`;
/// otherwise it records its pid and what PGPASSFILE is (the name, where
/// the name leads, its mode and type, and how many lines it has, never
/// its content) in `mark`, and sleeps, to be killed.
fn stand_in(bin: &Path, program: &str, trap: &str, mark: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let real =
        std::process::Command::new("sh").args(["-c", &format!("command -v {program}")]).output().unwrap();
    let real = String::from_utf8_lossy(&real.stdout).trim().to_owned();
    assert!(!real.is_empty(), "{program} not found");
    let script = bin.join(program);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             case \" $* \" in *\" --version \"*|*\" --list \"*) exec {real} \"$@\";; esac\n\
             case \" $* \" in *{trap}*) ;; *) exec {real} \"$@\";; esac\n\
             {{ echo $$; echo \"$PGPASSFILE\"; readlink \"$PGPASSFILE\"; stat -L -c '%a %F' \"$PGPASSFILE\"; grep -c . \"$PGPASSFILE\"; }} > {mark}.tmp\n\
             mv {mark}.tmp {mark}\n\
             exec sleep 600\n",
            mark = mark.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs `lava-v1 <args>` with the stand-ins of `bin` first on PATH and
/// TMPDIR at `tmp`, waits until a stand-in has written `mark`, checks that
/// no file under `watched` holds the password, SIGKILLs the run and the
/// stand-in, checks again, and returns the stand-in's record.
fn kill_while_the_tool_runs(
    inst: &Instance<'_>,
    args: &[&str],
    bin: &Path,
    tmp: &Path,
    mark: &Path,
    watched: &[&Path],
) -> Vec<String> {
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut child = crate::util::command(inst)
        .args(args)
        .env("PATH", path)
        .env("TMPDIR", tmp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !mark.exists() {
        assert!(child.try_wait().unwrap().is_none(), "lava-v1 {args:?} ended before the stand-in ran");
        assert!(std::time::Instant::now() < deadline, "the stand-in never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let record: Vec<String> = std::fs::read_to_string(mark).unwrap().lines().map(str::to_owned).collect();
    let while_running: Vec<_> = watched.iter().flat_map(|d| files_with_the_password(d)).collect();
    let kill = |pid: i32| {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    };
    kill(child.id() as i32);
    kill(record[0].parse().unwrap());
    let _ = child.wait();
    assert!(inst.wait_for_lava_v1_sessions_to_end());
    assert_eq!(while_running, Vec::<std::path::PathBuf>::new(), "while the tool runs");
    for dir in watched {
        assert_eq!(files_with_the_password(dir), Vec::<std::path::PathBuf>::new(), "after the kill");
    }
    record
}

#[test]
fn the_password_never_lands_on_disk_even_when_a_run_is_killed() {
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    let work = tempfile::tempdir().unwrap();
    let (bin, tmp, backups) = (work.path().join("bin"), work.path().join("tmp"), work.path().join("backups"));
    for d in [&bin, &tmp, &backups] {
        std::fs::create_dir(d).unwrap();
    }
    let check_record = |record: &[String]| {
        // The passfile is an anonymous memory file the program inherited:
        // a regular file, mode 0600, one line, on no file system.
        assert!(record[1].starts_with("/proc/self/fd/"), "{record:?}");
        assert!(record.get(2).is_some_and(|l| l.starts_with("/memfd:")), "{record:?}");
        assert_eq!(record.get(3).map(String::as_str), Some("600 regular file"), "{record:?}");
        assert_eq!(record.get(4).map(String::as_str), Some("1"), "{record:?}");
    };

    // A backup killed while pg_dump runs.
    let mark = work.path().join("pg_dump.mark");
    stand_in(&bin, "pg_dump", "--snapshot=", &mark);
    let args = ["backup", "--backup-dir", backups.to_str().unwrap()];
    let record = kill_while_the_tool_runs(&inst, &args, &bin, &tmp, &mark, &[&backups, &tmp]);
    check_record(&record);
    let left: Vec<_> = std::fs::read_dir(&backups).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left.len(), 1, "the killed run's incomplete backup: {left:?}");

    // A restore killed while pg_restore runs.
    std::fs::remove_file(bin.join("pg_dump")).unwrap();
    let out = crate::util::run(&inst, &args);
    crate::util::assert_success(&out);
    let made = std::fs::read_dir(&backups)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| !p.to_string_lossy().ends_with(".incomplete"))
        .unwrap();
    let target = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    without_v1_data(&target);
    let mark = work.path().join("pg_restore.mark");
    stand_in(&bin, "pg_restore", "--dbname=", &mark);
    let record = kill_while_the_tool_runs(
        &target,
        &["restore", made.to_str().unwrap()],
        &bin,
        &tmp,
        &mark,
        &[&backups, &tmp],
    );
    check_record(&record);
}

#[test]
fn the_postinst_reuses_a_backup_only_of_this_database_with_its_rows_as_they_are() {
    let backups = tempfile::tempdir().unwrap();
    let seed = Seed { media: false, ..Seed::default() };
    // Runs the postinst of `inst` with `last-backup` naming `offered`;
    // returns the backup it reports, and its journal.
    let postinst_offered = |inst: &Instance<'_>, offered: &Path| -> (String, String) {
        let root = inst.dpkg_root();
        let state = root.join("var/lib/lava-server/v1-removal");
        std::fs::write(state.join("last-backup"), format!("{}\n", offered.display())).unwrap();
        let out = lava_v1_testkit::paused::postinst_under(&root).output().unwrap();
        crate::util::assert_success(&out);
        let text = format!("{}{}", crate::util::stdout(&out), crate::util::stderr(&out));
        assert!(!text.contains(LAVA_PASSWORD));
        let used = text
            .split("backed up to ")
            .nth(1)
            .and_then(|r| r.split(" (verified").next())
            .unwrap_or_else(|| panic!("no backup reported: {text}"))
            .to_owned();
        (used, std::fs::read_to_string(state.join("journal.log")).unwrap())
    };

    // Another database with the very same rows (the same seed): its backup
    // verifies and was taken after the decision, but is not of this one.
    let other = crate::util::live(Cluster::shared(), seed);
    let theirs = backup::backup(&other.paths, &options(backups.path())).unwrap();
    let inst = crate::util::live(Cluster::shared(), seed);
    let (used, journal) = postinst_offered(&inst, &theirs.path);
    assert_ne!(used, theirs.path.display().to_string(), "another database's backup was reused");
    assert!(journal.contains("not reusing the backup") && journal.contains("it is a backup of"), "{journal}");
    assert_eq!(
        backup::verify(Path::new(&used), &BackupOptions::default()).unwrap().tables,
        theirs.manifest.tables
    );

    // This database's own backup, but rows changed since it was taken.
    let inst = crate::util::live(Cluster::shared(), seed);
    let own = backup::backup(&inst.paths, &options(backups.path())).unwrap();
    inst.admin()
        .batch_execute("INSERT INTO dashboard_app_tag (id, name) VALUES (999999, 'added later')")
        .unwrap();
    let (used, journal) = postinst_offered(&inst, &own.path);
    assert_ne!(used, own.path.display().to_string(), "a backup that lacks rows was reused");
    assert!(journal.contains("dashboard_app_tag: "), "{journal}");
    let taken = backup::verify(Path::new(&used), &BackupOptions::default()).unwrap();
    assert_eq!(taken.tables["dashboard_app_tag"], own.manifest.tables["dashboard_app_tag"] + 1);

    // This database's own backup, nothing changed: reused.
    let inst = crate::util::live(Cluster::shared(), seed);
    let own = backup::backup(&inst.paths, &options(backups.path())).unwrap();
    let (used, journal) = postinst_offered(&inst, &own.path);
    assert_eq!(used, own.path.display().to_string());
    assert!(journal.contains("reusing the verified backup"), "{journal}");
}
