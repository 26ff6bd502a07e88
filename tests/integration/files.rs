//! `lava-v1 files rm`: the V1 media directories, once the V1 tables are
//! gone, removed safely.

use lava_v1_testkit::hostile;
use lava_v1_testkit::{Cluster, Instance, Seed};

use crate::util::*;

#[test]
fn files_rm_refuses_while_the_v1_tables_exist() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    let before = hostile::listing(&inst.media_root());
    for args in [&["files", "rm"][..], &["files", "rm", "--dry-run"][..]] {
        let out = run(&inst, args);
        assert_failure(&out, 1);
        let err = stderr(&out);
        assert!(err.contains("V1 tables still exist") && err.contains("lava-v1 drop --yes"), "{err}");
    }
    assert_eq!(before, hostile::listing(&inst.media_root()));
}

#[test]
fn files_rm_removes_the_v1_directories_and_nothing_else() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    drop_v1_by_sql(&mut inst.admin());
    let status: serde_json::Value =
        serde_json::from_slice(&run(&inst, &["status", "--json"]).stdout).unwrap();
    let media = inst.media_root();
    let before = hostile::listing(&media);

    let dry = run(&inst, &["files", "rm", "--dry-run", "--json"]);
    assert_success(&dry);
    let dry: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(before, hostile::listing(&media), "the dry run changed something");
    for (measured, planned) in status["media"].as_array().unwrap().iter().zip(dry["dirs"].as_array().unwrap())
    {
        assert_eq!(measured["name"], planned["name"]);
        assert_eq!(measured["files"], planned["freed"]["files"]);
        assert_eq!(measured["bytes"], planned["freed"]["bytes"]);
    }

    let out = run(&inst, &["files", "rm", "--json"]);
    assert_success(&out);
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["freed"], dry["freed"]);
    assert!(done["freed"]["files"].as_u64().unwrap() > 100);
    for name in lava_v1_core::schema::V1_MEDIA_DIRS {
        assert!(!media.join(name).exists(), "{name}");
    }
    let after = hostile::listing(&media);
    let kept: Vec<_> = before
        .iter()
        .filter(|(p, _)| !lava_v1_core::schema::V1_MEDIA_DIRS.iter().any(|d| p.starts_with(d)))
        .collect();
    assert_eq!(kept, after.iter().collect::<Vec<_>>(), "something else changed");

    let again = run(&inst, &["files", "rm"]);
    assert_success(&again);
    assert!(stdout(&again).contains("absent"), "{}", stdout(&again));
    let journal = std::fs::read_to_string(inst.paths.state_dir.join("journal.log")).unwrap();
    assert!(journal.contains("files rm: done"), "{journal}");
}

#[test]
fn files_rm_in_a_hostile_tree_touches_nothing_outside() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    drop_v1_by_sql(&mut inst.admin());
    let media = inst.media_root();
    let outside = tempfile::tempdir().unwrap();
    hostile::precious_dir(outside.path());
    // Hostile entries inside bundles/, and attachments/ itself a link to a
    // directory outside.
    hostile::hostile_contents(&media.join("bundles/hostile"), outside.path());
    let attachments = outside.path().join("attachments");
    std::fs::rename(media.join("attachments"), &attachments).unwrap();
    std::os::unix::fs::symlink(&attachments, media.join("attachments")).unwrap();
    // And one file that cannot be removed, with a newline in its name.
    let stuck = media.join("testdef/stuck\nforged.yaml");
    let shown = fdsafe::remove::display_path(&stuck);
    assert!(shown.ends_with("stuck\\x0aforged.yaml"), "{shown}");
    let immutable = hostile::make_unremovable(&stuck);
    let outside_before = hostile::listing(outside.path());
    let job_output = hostile::listing(&media.join("job-output"));

    let out = run(&inst, &["files", "rm", "--json"]);
    assert_failure(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outside_before, hostile::listing(outside.path()));
    assert_eq!(job_output, hostile::listing(&media.join("job-output")));
    assert!(!media.join("bundles").exists() && !media.join("compressed-bundles").exists());
    assert!(std::fs::symlink_metadata(media.join("attachments")).is_err(), "the link is unlinked");
    let left: Vec<&str> = v["left"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    if immutable {
        assert_eq!(left, [shown.as_str()], "{v}");
    } else {
        assert!(left.contains(&shown.as_str()), "{v}");
    }
    let text = stderr(&out);
    assert!(text.contains("could not be removed") && text.contains(&shown), "{text}");
    // The name cannot forge a line of its own.
    assert!(!text.lines().chain(stdout(&out).lines()).any(|l| l.starts_with("forged")), "{text}");

    // Once the admin deals with it, a rerun removes what is left.
    hostile::undo_unremovable(&stuck);
    let out = run(&inst, &["files", "rm"]);
    assert_success(&out);
    assert!(!media.join("testdef").exists());
    assert_eq!(outside_before, hostile::listing(outside.path()));
}

#[test]
fn files_rm_never_crosses_a_bind_mount() {
    let inst = Instance::new(Cluster::shared(), Seed::default());
    drop_v1_by_sql(&mut inst.admin());
    let media = inst.media_root();
    let outside = tempfile::tempdir().unwrap();
    hostile::precious_dir(outside.path());
    let outside_before = hostile::listing(outside.path());
    // A directory outside bind-mounted inside bundles/ (same file system,
    // so the same st_dev: only the mount id tells it apart).
    let point = media.join("bundles/shared");
    std::fs::create_dir(&point).unwrap();
    let mounts = [(outside.path(), point.as_path())];

    let plain: serde_json::Value = serde_json::from_slice(&run(&inst, &["status", "--json"]).stdout).unwrap();
    let out = run_with_bind_mounts(&inst, &mounts, &["status", "--json"]);
    assert_success(&out);
    let mounted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (p, m) = (&plain["media"][0], &mounted["media"][0]);
    assert_eq!(m["name"], "bundles");
    assert_eq!((&m["files"], &m["bytes"]), (&p["files"], &p["bytes"]), "counted what is behind the mount");
    assert_eq!(m["skipped"], 1, "{m}");

    removal_leaving_only_a_mount_point(&inst, &mounts, &["files", "rm", "--json"], &point);
    assert_eq!(outside_before, hostile::listing(outside.path()), "removed through the bind mount");
    // Everything else went; the mount point (empty once unmounted) and
    // bundles/ holding it stay.
    assert_eq!(std::fs::read_dir(media.join("bundles")).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(&point).unwrap().count(), 0);
    assert!(!media.join("attachments").exists());

    // Unmounted, a plain rerun finishes.
    assert_success(&run(&inst, &["files", "rm"]));
    assert!(!media.join("bundles").exists());
    assert_eq!(outside_before, hostile::listing(outside.path()));
}

#[test]
fn a_link_swapped_in_while_the_walk_runs_is_never_followed() {
    let inst = Instance::new(Cluster::shared(), Seed { media: false, ..Seed::default() });
    drop_v1_by_sql(&mut inst.admin());
    let media = inst.media_root();
    let outside = tempfile::tempdir().unwrap();
    hostile::precious_dir(outside.path());
    let victim = media.join("bundles/victim");
    std::fs::create_dir_all(victim.join("sub/deeper")).unwrap();
    std::fs::write(victim.join("sub/a.json"), b"{}").unwrap();
    std::fs::write(victim.join("sub/deeper/b.json"), b"{}").unwrap();
    let outside_before = hostile::listing(outside.path());

    // Paused once `victim` has been read and before `sub` is entered: swap
    // `sub` for a link to the directory outside (an attacker's move).
    let paused = start_resumable(&inst, &["files", "rm", "--json"], "remove-after-scan");
    let moved = outside.path().join("moved-away");
    std::fs::rename(victim.join("sub"), &moved).unwrap();
    std::os::unix::fs::symlink(outside.path(), victim.join("sub")).unwrap();
    let moved_before = hostile::listing(&moved);
    paused.resume();
    let (status, err) = paused.finish();
    assert!(status.success(), "{err}");
    // The link was unlinked as an entry; what it points at is untouched,
    // and so is the directory moved out of the tree.
    let mut outside_after = hostile::listing(outside.path());
    outside_after.retain(|p, _| !p.starts_with("moved-away"));
    assert_eq!(outside_before, outside_after);
    assert_eq!(moved_before, hostile::listing(&moved));
    assert!(std::fs::symlink_metadata(media.join("bundles")).is_err());
}

#[test]
fn ten_thousand_levels_and_hostile_names_are_measured_backed_up_and_removed() {
    let inst = live(Cluster::shared(), Seed::default());
    let media = inst.media_root();
    let outside = tempfile::tempdir().unwrap();
    hostile::precious_dir(outside.path());
    hostile::hostile_contents(&media.join("bundles/hostile"), outside.path());
    let len = hostile::nested(&media.join("attachments"), "deep", 10_000, "d");
    assert!(len > 20_000);
    let outside_before = hostile::listing(outside.path());

    let status: serde_json::Value =
        serde_json::from_slice(&run(&inst, &["status", "--json"]).stdout).unwrap();
    let attachments =
        status["media"].as_array().unwrap().iter().find(|m| m["name"] == "attachments").unwrap();
    assert!(attachments["dirs"].as_u64().unwrap() > 10_000, "{attachments}");
    assert_eq!(attachments["skipped"], 0, "{attachments}");
    let bundles = &status["media"][0];
    assert_eq!(bundles["skipped"], 0, "{bundles}");

    // The backup takes all of it, links as links.
    let backups = tempfile::tempdir().unwrap();
    let out = run(&inst, &["backup", "--backup-dir", backups.path().to_str().unwrap()]);
    assert_success(&out);
    let tar = std::fs::read_dir(backups.path()).unwrap().next().unwrap().unwrap().path().join("media.tar");
    let listed = std::process::Command::new("tar").arg("-tvf").arg(&tar).output().unwrap();
    assert!(listed.status.success());
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.lines().any(|l| l.ends_with("/d/bottom.txt")), "the deepest file is not in the backup");
    assert!(listed.contains("bundles/hostile/l1/l2/l3/escape -> "), "links are stored as links");

    assert_success(&run(&inst, &["drop", "--yes"]));
    let out = run(&inst, &["files", "rm", "--json"]);
    assert_success(&out);
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(done["freed"]["dirs"].as_u64().unwrap() > 10_000, "{done}");
    for name in lava_v1_core::schema::V1_MEDIA_DIRS {
        assert!(std::fs::symlink_metadata(media.join(name)).is_err(), "{name}");
    }
    assert_eq!(outside_before, hostile::listing(outside.path()));
}

/// A link at `path` to `target`, owned by `nobody` (a user who can write
/// to the directory holding it, as LAVA's user can in deployments that
/// `chown -R` the instance directory).
fn planted_link(target: &std::path::Path, path: &std::path::Path) {
    std::os::unix::fs::symlink(target, path).unwrap();
    let nobody = nix::unistd::Uid::from_raw(65534);
    nix::unistd::fchownat(None, path, Some(nobody), None, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .expect("chown the link (needs root: run the suite as root, scripts/test does)");
}

#[test]
fn the_media_root_swapped_for_a_link_never_leads_root_outside_it() {
    if lava_v1_testkit::needs_root("the_media_root_swapped_for_a_link… (plants a link owned by nobody)") {
        return;
    }
    let inst = Instance::new(Cluster::shared(), Seed::default());
    drop_v1_by_sql(&mut inst.admin());
    let media = inst.media_root();
    let real = inst.dir.path().join("media.real");
    // A root-only directory that looks like a media root.
    let outside = tempfile::tempdir().unwrap();
    for d in ["bundles", "attachments"] {
        hostile::precious_dir(&outside.path().join(d));
    }
    let outside_before = hostile::listing(outside.path());

    // Before the run: `media` is a link planted by another user.  Refused,
    // naming it; nothing anywhere changes.
    std::fs::rename(&media, &real).unwrap();
    planted_link(outside.path(), &media);
    let real_before = hostile::listing(&real);
    for args in [&["files", "rm"][..], &["jobs", "rm", "--v1"][..], &["files", "rm", "--dry-run"][..]] {
        let out = run(&inst, args);
        assert_failure(&out, 1);
        assert!(stderr(&out).contains("not followed"), "{args:?}: {}", stderr(&out));
    }
    // Nor is anything behind it read into a backup.
    let backups = tempfile::tempdir().unwrap();
    let dir_arg = backups.path().join("b");
    let out = run(&inst, &["backup", "--backup-dir", dir_arg.to_str().unwrap()]);
    assert_failure(&out, 1);
    assert!(stderr(&out).contains("not followed"), "{}", stderr(&out));
    assert!(std::fs::read_dir(&dir_arg).map_or(true, |mut d| d.next().is_none()), "a backup was left");
    assert_eq!(outside_before, hostile::listing(outside.path()));
    assert_eq!(real_before, hostile::listing(&real));

    // The admin's own link (owned by root) is followed as configured.
    std::fs::remove_file(&media).unwrap();
    std::os::unix::fs::symlink(&real, &media).unwrap();
    let out = run(&inst, &["files", "rm", "--dry-run", "--json"]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["freed"]["files"].as_u64().unwrap() > 0, "{v}");
    std::fs::remove_file(&media).unwrap();
    std::fs::rename(&real, &media).unwrap();

    // During the walk: the media root is moved away and a planted link
    // put in its place.  The run goes on below the directory it opened,
    // now under its new name, and never reaches the link's target.
    std::fs::create_dir_all(media.join("bundles/sub/deeper")).unwrap();
    std::fs::write(media.join("bundles/sub/deeper/b.json"), b"{}").unwrap();
    let paused = start_resumable(&inst, &["files", "rm", "--json"], "remove-after-scan");
    std::fs::rename(&media, &real).unwrap();
    planted_link(outside.path(), &media);
    paused.resume();
    let (status, err) = paused.finish();
    assert!(status.success(), "{err}");
    assert_eq!(outside_before, hostile::listing(outside.path()), "root removed files outside the media root");
    for d in ["bundles", "attachments", "compressed-bundles", "testdef"] {
        assert!(std::fs::symlink_metadata(real.join(d)).is_err(), "{d} left in the real media root");
    }
    assert!(real.join("job-output").is_dir());
}
