use super::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

const STATUS_DB: &str = "\
Package: lava-server
Status: install ok half-configured
Priority: optional
Section: net
Maintainer: X <x@example.org>
Architecture: all
Version: 2017.12-1
Config-Version: 2017.10-1
Description: test

Package: gone
Status: deinstall ok config-files
Architecture: all
Version: 1.0-1
Maintainer: X <x@example.org>
Description: test

Package: held
Status: hold ok installed
Architecture: all
Version: 1:2.0~rc1-1
Maintainer: X <x@example.org>
Description: test

Package: broken
Status: install reinstreq half-installed
Architecture: all
Version: 3.0
Maintainer: X <x@example.org>
Description: test

Package: purged
Status: purge ok not-installed
Architecture: all
";

fn admindir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("status"), STATUS_DB).unwrap();
    dir
}

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Writes an executable shell stub.
fn stub(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "#!/bin/sh\n{body}").unwrap();
    f.sync_all().unwrap();
    drop(f);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Runs `f`, retrying while a freshly written stub is "text file busy"
/// (another test thread may have forked while it was open for writing).
fn retry_busy<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    for _ in 0..50 {
        match f() {
            Err(Error::Spawn { source, .. }) if source.raw_os_error() == Some(26) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
    f()
}

#[test]
fn parse_lines() {
    let s = PackageStatus::parse_line("lava-server", "ii \t2017.12-1\tinstall ok installed").unwrap();
    assert_eq!(s.want, Want::Install);
    assert_eq!(s.eflag, Eflag::Ok);
    assert_eq!(s.status, Status::Installed);
    assert_eq!(s.version, Some(Version::parse("2017.12-1").unwrap()));
    assert!(s.is_installed() && s.is_unpacked() && !s.is_held() && !s.is_broken());
    assert_eq!(s.abbrev(), "ii ");
    assert_eq!(s.to_string(), "lava-server install ok installed 2017.12-1");

    let s = PackageStatus::parse_line("x", "un \t\tunknown ok not-installed").unwrap();
    assert_eq!(s, PackageStatus::not_installed("x"));
    assert!(!s.is_unpacked());

    let s = PackageStatus::parse_line("x", "iHR\t3.0\tinstall reinstreq half-installed").unwrap();
    assert_eq!(s.eflag, Eflag::ReinstReq);
    assert!(s.is_broken());

    let s = PackageStatus::parse_line("x", "iF \t2.0\tinstall ok half-configured").unwrap();
    assert_eq!(s.status, Status::HalfConfigured);
    assert!(s.is_broken() && !s.is_installed());

    for line in ["W", "tt \t1.0\tinstall ok triggers-pending", "it \t1.0\tinstall ok triggers-pending"] {
        let r = PackageStatus::parse_line("x", line);
        if line.starts_with("it ") {
            assert_eq!(r.unwrap().status, Status::TriggersPending);
        } else {
            assert!(r.is_err(), "{line}");
        }
    }
    for bad in [
        "",
        "ii \t1.0",
        "ii \t1.0\tinstall ok",
        "ii \t1.0\tinstall ok installed extra",
        "ii \t1.0\tinstall fine installed",
        "ii \t1.0\twanted ok installed",
        "ii \t1.0\tinstall ok gone",
        "hi \t1.0\tinstall ok installed",
        "ii \tbad version\tinstall ok installed",
        "ii \t1.0\tinstall ok installed\textra",
    ] {
        assert!(PackageStatus::parse_line("x", bad).is_err(), "{bad:?}");
    }
}

#[test]
fn word_enums_round_trip() {
    for w in [Want::Unknown, Want::Install, Want::Hold, Want::Deinstall, Want::Purge] {
        assert_eq!(Want::from_word(w.as_word()), Some(w));
    }
    for e in [Eflag::Ok, Eflag::ReinstReq] {
        assert_eq!(Eflag::from_word(&e.to_string()), Some(e));
    }
    for s in [
        Status::NotInstalled,
        Status::ConfigFiles,
        Status::HalfInstalled,
        Status::Unpacked,
        Status::HalfConfigured,
        Status::TriggersAwaited,
        Status::TriggersPending,
        Status::Installed,
    ] {
        assert_eq!(Status::from_word(s.as_word()), Some(s));
    }
}

#[test]
fn status_from_private_admindir() {
    if !have("dpkg-query") {
        return;
    }
    let dir = admindir();
    let q = DpkgQuery::new().with_admindir(dir.path());
    assert_eq!(q.admindir(), Some(dir.path()));

    let s = q.status("lava-server").unwrap();
    assert_eq!(s.abbrev(), "iF ");
    assert_eq!(s.status, Status::HalfConfigured);
    assert_eq!(s.version.unwrap().as_str(), "2017.12-1");

    let s = q.status("gone").unwrap();
    assert_eq!((s.want, s.status), (Want::Deinstall, Status::ConfigFiles));
    assert_eq!(s.version.unwrap().as_str(), "1.0-1");

    let s = q.status("held").unwrap();
    assert!(s.is_held() && s.is_installed());
    assert_eq!(s.version.unwrap().as_str(), "1:2.0~rc1-1");

    let s = q.status("broken").unwrap();
    assert_eq!(s.abbrev(), "iHR");

    // Known to dpkg but not installed: dpkg prints "un" and no version.
    let s = q.status("purged").unwrap();
    assert_eq!(s.status, Status::NotInstalled);
    assert_eq!(s.version, None);

    // Unknown to dpkg: exit 1, "no packages found matching".
    assert_eq!(q.status("no-such-package").unwrap(), PackageStatus::not_installed("no-such-package"));
}

#[test]
fn status_of_host_dpkg_read_only() {
    if !have("dpkg-query") {
        return;
    }
    let s = status("dpkg").unwrap();
    assert!(s.is_installed(), "{s}");
    assert!(s.version.is_some());
}

#[test]
fn missing_admindir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = DpkgQuery::new().with_admindir(dir.path().join("nope")).status("dpkg").unwrap_err();
    assert!(matches!(err, Error::NoDpkgDatabase { .. }), "{err}");
    assert!(err.to_string().contains("no status file"));
}

#[test]
fn bad_package_name_is_rejected_before_running() {
    let q = DpkgQuery::new().with_dpkg_query_program("/nonexistent/dpkg-query");
    let err = q.status("--admindir=/tmp").unwrap_err();
    assert!(matches!(err, Error::InvalidPackageName { .. }), "{err}");
}

#[test]
fn process_errors_name_the_command() {
    let err = DpkgQuery::new()
        .with_dpkg_query_program("/nonexistent/dpkg-query")
        .status("lava-server")
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Spawn { .. }));
    assert!(
        msg.contains(
            "/nonexistent/dpkg-query -W '-f=${db:Status-Abbrev}\\t${Version}\\t${Status}\\n' -- lava-server"
        ),
        "{msg}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let fail = stub(tmp.path(), "dpkg-query", "echo 'dpkg-query: error: boom' >&2; exit 2");
    let q = DpkgQuery::new().with_dpkg_query_program(&fail);
    let err = retry_busy(|| q.status("lava-server")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::CommandFailed { .. }), "{msg}");
    assert!(msg.contains(&fail.display().to_string()), "{msg}");
    assert!(msg.contains("exit status 2"), "{msg}");
    assert!(msg.contains("dpkg-query: error: boom"), "{msg}");

    let two = stub(
        tmp.path(),
        "dpkg-query-2",
        "printf 'ii \\t1.0\\tinstall ok installed\\nii \\t1.0\\tinstall ok installed\\n'",
    );
    let q = DpkgQuery::new().with_dpkg_query_program(&two);
    let err = retry_busy(|| q.status("libfoo")).unwrap_err();
    assert!(matches!(err, Error::UnexpectedOutput { .. }), "{err}");
    assert!(err.to_string().contains("libfoo:ARCH"), "{err}");

    let garbage = stub(tmp.path(), "dpkg-query-3", "echo garbage");
    let q = DpkgQuery::new().with_dpkg_query_program(&garbage);
    let err = retry_busy(|| q.status("libfoo")).unwrap_err();
    assert!(matches!(err, Error::UnexpectedOutput { .. }), "{err}");
    assert!(err.to_string().contains(&garbage.display().to_string()), "{err}");
}

#[test]
fn compare_versions_with_dpkg() {
    if !have("dpkg") {
        return;
    }
    let q = DpkgQuery::new();
    let a = Version::parse("2017.12~rc1").unwrap();
    let b = Version::parse("2017.12").unwrap();
    assert!(q.compare_versions(&a, "lt", &b).unwrap());
    assert!(!q.compare_versions(&a, "gt", &b).unwrap());
    let err = q.compare_versions(&a, "bogus", &b).unwrap_err();
    assert!(err.to_string().contains("dpkg --compare-versions"), "{err}");
}

#[test]
fn apt_mark_outcomes_with_stub() {
    let tmp = tempfile::tempdir().unwrap();
    // Answers like apt-mark 2.6 does, and records its arguments.
    let log = tmp.path().join("args");
    let body = format!(
        r#"echo "$@" >> '{log}'
[ "$2" = "--" ] || exit 64
case "$1:$3" in
  hold:new) echo "$3 set on hold." ;;
  hold:old) echo "$3 was already set on hold." ;;
  unhold:old) echo "Canceled hold on $3." ;;
  unhold:new) echo "$3 was already not on hold." ;;
  showhold:old) echo "$3" ;;
  showhold:new) ;;
  hold:locked)
    echo "dpkg: error: dpkg frontend lock was locked by another process with pid 7" >&2
    echo "E: Executing dpkg failed. Are you root?" >&2
    exit 100 ;;
  *) echo "something else" ;;
esac"#,
        log = log.display()
    );
    let prog = stub(tmp.path(), "apt-mark", &body);
    let m = AptMark::with_program(&prog);
    let run = |op, pkg: &str| retry_busy(|| m.run(op, pkg)).unwrap();

    assert_eq!(run(AptMarkOp::Hold, "new"), AptMarkOutcome::Held);
    assert_eq!(run(AptMarkOp::Hold, "old"), AptMarkOutcome::AlreadyHeld);
    assert_eq!(run(AptMarkOp::Unhold, "old"), AptMarkOutcome::Unheld);
    assert_eq!(run(AptMarkOp::Unhold, "new"), AptMarkOutcome::AlreadyNotHeld);
    assert_eq!(run(AptMarkOp::Showhold, "old"), AptMarkOutcome::ShowHold { held: true });
    assert_eq!(run(AptMarkOp::Showhold, "new"), AptMarkOutcome::ShowHold { held: false });
    assert_eq!(
        run(AptMarkOp::Unhold, "other"),
        AptMarkOutcome::Other { stdout: "something else\n".to_owned() }
    );

    let failed = run(AptMarkOp::Hold, "locked");
    assert!(!failed.is_success());
    match &failed {
        AptMarkOutcome::Failed { command, status, stderr } => {
            assert_eq!(command, &format!("{} hold -- locked", prog.display()));
            assert_eq!(status, "exit status 100");
            assert!(stderr.contains("Are you root?"), "{stderr}");
        }
        other => panic!("{other:?}"),
    }
    let err = failed.into_result().unwrap_err();
    assert!(err.to_string().contains("hold -- locked"), "{err}");
    assert!(run(AptMarkOp::Hold, "new").into_result().is_ok());

    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(seen.starts_with("hold -- new\nhold -- old\nunhold -- old\n"), "{seen}");

    assert!(matches!(m.run(AptMarkOp::Hold, "-o"), Err(Error::InvalidPackageName { .. })));
    let err =
        AptMark::with_program("/nonexistent/apt-mark").run(AptMarkOp::Showhold, "lava-server").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/apt-mark showhold -- lava-server"), "{err}");
}

#[test]
fn real_apt_mark_showhold_is_read_only() {
    if !have("apt-mark") {
        return;
    }
    match apt_mark(AptMarkOp::Showhold, "dpkg").unwrap() {
        AptMarkOutcome::ShowHold { .. } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn list_and_audit_from_private_admindir() {
    if !have("dpkg-query") || !have("dpkg") {
        return;
    }
    let dir = admindir();
    // dpkg -C reads the info directory and the update journal too.
    std::fs::create_dir_all(dir.path().join("info")).unwrap();
    std::fs::create_dir_all(dir.path().join("updates")).unwrap();
    let q = DpkgQuery::new().with_admindir(dir.path());
    let text = q.list(&["lava-*", "held"]);
    assert_eq!(text, "hi  held 1:2.0~rc1-1\niF  lava-server 2017.12-1\n");
    let text = q.list(&["no-such-*"]);
    assert!(text.contains("no packages found matching no-such-*"), "{text}");
    assert!(text.ends_with(": exit status: 1)\n"), "{text}");
    assert!(text.contains(&format!("(dpkg-query --admindir={} -W -f=", dir.path().display())), "{text}");
    let audit = q.audit();
    assert!(audit.contains("lava-server") && audit.contains("broken"), "{audit}");
}

#[test]
fn a_transcript_holds_stdout_stderr_and_how_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let prog = stub(dir.path(), "talk", "echo out; echo err >&2; exit 3");
    let mut text = transcript(&prog, &["a".to_owned(), "b".to_owned()]);
    for _ in 0..50 {
        // A freshly written stub may be "text file busy" for a moment.
        if !text.contains("busy") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        text = transcript(&prog, &["a".to_owned(), "b".to_owned()]);
    }
    assert_eq!(text, format!("out\nerr\n({} a b: exit status: 3)\n", prog.display()));
    let missing = transcript(Path::new("/nonexistent/program"), &[]);
    assert!(missing.starts_with("(cannot run /nonexistent/program: "), "{missing}");
}
