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
    // And one file that cannot be removed.
    let stuck = media.join("testdef/stuck.yaml");
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
        assert_eq!(left, [stuck.display().to_string()], "{v}");
    } else {
        assert!(left.contains(&stuck.display().to_string().as_str()), "{v}");
    }
    let text = stderr(&out);
    assert!(text.contains("could not be removed"), "{text}");

    // Once the admin deals with it, a rerun removes what is left.
    hostile::undo_unremovable(&stuck);
    let out = run(&inst, &["files", "rm"]);
    assert_success(&out);
    assert!(!media.join("testdef").exists());
    assert_eq!(outside_before, hostile::listing(outside.path()));
}
