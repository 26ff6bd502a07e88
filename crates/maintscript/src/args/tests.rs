use super::*;

fn a(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn pv(p: &str, ver: &str) -> PackageVersion {
    PackageVersion { package: p.to_owned(), version: v(ver) }
}

fn ok(script: Script, words: &[&str]) -> Action {
    match parse(script, &a(words)) {
        Ok(action) => {
            assert_eq!(action.script(), script);
            // Display reproduces the call (modulo quoting of "" and triggers).
            let shown = action.to_string();
            assert!(shown.starts_with(&format!("{script} {}", words[0])), "{shown}");
            action
        }
        Err(e) => panic!("{script} {words:?}: {e}"),
    }
}

fn bad(script: Script, words: &[&str]) -> String {
    let args = a(words);
    match parse(script, &args) {
        Ok(action) => panic!("{script} {words:?} accepted as {action:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("{script}: unknown call form: {script} ")), "{msg}");
            for w in words {
                assert!(msg.contains(&format!("{w:?}")), "{msg} lacks {w:?}");
            }
            match e {
                Error::UnknownCallForm { script: s, args: got, .. } => {
                    assert_eq!(s, script);
                    assert_eq!(got, args);
                }
                other => panic!("wrong error variant {other:?}"),
            }
            msg
        }
    }
}

// ---------------------------------------------------------------- preinst

#[test]
fn preinst_install_fresh() {
    assert_eq!(
        ok(Script::Preinst, &["install"]),
        Action::Preinst(PreinstAction::Install { old: None, new: None })
    );
}

#[test]
fn preinst_install_over_config_files() {
    assert_eq!(
        ok(Script::Preinst, &["install", "2017.10-1"]),
        Action::Preinst(PreinstAction::Install { old: Some(v("2017.10-1")), new: None })
    );
    let act = ok(Script::Preinst, &["install", "2017.10-1", "2017.12-1"]);
    assert_eq!(
        act,
        Action::Preinst(PreinstAction::Install { old: Some(v("2017.10-1")), new: Some(v("2017.12-1")) })
    );
    assert_eq!(act.previous_version(), Some(&v("2017.10-1")));
    assert_eq!(act.to_string(), "preinst install 2017.10-1 2017.12-1");
}

#[test]
fn preinst_upgrade() {
    let act = ok(Script::Preinst, &["upgrade", "2017.10-1", "2017.12-1"]);
    assert_eq!(
        act,
        Action::Preinst(PreinstAction::Upgrade { old: v("2017.10-1"), new: Some(v("2017.12-1")) })
    );
    assert_eq!(act.to_string(), "preinst upgrade 2017.10-1 2017.12-1");
    assert!(!act.is_error_unwind());
    // dpkg < 1.18.5, and dpkg-reconfigure (`preinst upgrade CURRENT`).
    assert_eq!(
        ok(Script::Preinst, &["upgrade", "2017.12-1"]),
        Action::Preinst(PreinstAction::Upgrade { old: v("2017.12-1"), new: None })
    );
}

#[test]
fn preinst_abort_upgrade() {
    let act = ok(Script::Preinst, &["abort-upgrade", "2017.12-1"]);
    assert_eq!(act, Action::Preinst(PreinstAction::AbortUpgrade { new: v("2017.12-1") }));
    assert!(act.is_error_unwind());
    assert_eq!(act.previous_version(), None);
}

#[test]
fn preinst_garbage() {
    bad(Script::Preinst, &[]);
    bad(Script::Preinst, &["configure", "1.0"]);
    bad(Script::Preinst, &["Install"]);
    bad(Script::Preinst, &["install", "1.0", "2.0", "3.0"]);
    bad(Script::Preinst, &["install", ""]);
    bad(Script::Preinst, &["install", "1.0", ""]);
    bad(Script::Preinst, &["upgrade"]);
    bad(Script::Preinst, &["upgrade", ""]);
    bad(Script::Preinst, &["upgrade", "1.0", "2.0", "extra"]);
    bad(Script::Preinst, &["upgrade", "not a version"]);
    bad(Script::Preinst, &["upgrade", "1.0", "-"]);
    bad(Script::Preinst, &["abort-upgrade"]);
    bad(Script::Preinst, &["abort-upgrade", "1.0", "2.0"]);
    bad(Script::Preinst, &["--upgrade", "1.0"]);
    let msg = bad(Script::Preinst, &["upgrade", "x1.0"]);
    assert!(msg.contains("does not start with digit"), "{msg}");
    let msg = bad(Script::Preinst, &["frobnicate", "1.0"]);
    assert!(msg.contains("unknown action \"frobnicate\""), "{msg}");
}

// --------------------------------------------------------------- postinst

#[test]
fn postinst_configure() {
    let fresh = ok(Script::Postinst, &["configure", ""]);
    assert_eq!(fresh, Action::Postinst(PostinstAction::Configure { most_recently_configured: None }));
    assert_eq!(fresh.to_string(), "postinst configure \"\"");
    assert_eq!(fresh.previous_version(), None);
    let up = ok(Script::Postinst, &["configure", "2017.10-1"]);
    assert_eq!(
        up,
        Action::Postinst(PostinstAction::Configure { most_recently_configured: Some(v("2017.10-1")) })
    );
    assert_eq!(up.previous_version(), Some(&v("2017.10-1")));
}

#[test]
fn postinst_abort_upgrade() {
    assert_eq!(
        ok(Script::Postinst, &["abort-upgrade", "2017.12-1"]),
        Action::Postinst(PostinstAction::AbortUpgrade { new: v("2017.12-1") })
    );
}

#[test]
fn postinst_abort_remove() {
    let act = ok(Script::Postinst, &["abort-remove"]);
    assert_eq!(act, Action::Postinst(PostinstAction::AbortRemove));
    assert!(act.is_error_unwind());
    let act = ok(Script::Postinst, &["abort-remove", "in-favour", "lava-server-ng", "1.0-1"]);
    assert_eq!(
        act,
        Action::Postinst(PostinstAction::AbortRemoveInFavour { in_favour: pv("lava-server-ng", "1.0-1") })
    );
    assert_eq!(act.to_string(), "postinst abort-remove in-favour lava-server-ng 1.0-1");
}

#[test]
fn postinst_abort_deconfigure() {
    assert_eq!(
        ok(Script::Postinst, &["abort-deconfigure", "in-favour", "libfoo2", "2.0-1"]),
        Action::Postinst(PostinstAction::AbortDeconfigure {
            in_favour: pv("libfoo2", "2.0-1"),
            removing: None
        })
    );
    let act = ok(
        Script::Postinst,
        &["abort-deconfigure", "in-favour", "libfoo2:amd64", "2.0-1", "removing", "libfoo1", "1:1.0-3"],
    );
    assert_eq!(
        act,
        Action::Postinst(PostinstAction::AbortDeconfigure {
            in_favour: pv("libfoo2:amd64", "2.0-1"),
            removing: Some(pv("libfoo1", "1:1.0-3"))
        })
    );
    assert_eq!(
        act.to_string(),
        "postinst abort-deconfigure in-favour libfoo2:amd64 2.0-1 removing libfoo1 1:1.0-3"
    );
}

#[test]
fn postinst_triggered() {
    let act = ok(Script::Postinst, &["triggered", "/usr/share/lava-server"]);
    assert_eq!(
        act,
        Action::Postinst(PostinstAction::Triggered { triggers: vec!["/usr/share/lava-server".to_owned()] })
    );
    assert_eq!(
        ok(Script::Postinst, &["triggered", "ldconfig /usr/lib/python3 "]),
        Action::Postinst(PostinstAction::Triggered {
            triggers: vec!["ldconfig".to_owned(), "/usr/lib/python3".to_owned()]
        })
    );
}

#[test]
fn postinst_garbage() {
    bad(Script::Postinst, &[]);
    bad(Script::Postinst, &["configure"]);
    bad(Script::Postinst, &["configure", "1.0", "2.0"]);
    bad(Script::Postinst, &["configure", "1.0-"]);
    bad(Script::Postinst, &["configure", " "]);
    bad(Script::Postinst, &["reconfigure", "1.0"]);
    bad(Script::Postinst, &["upgrade", "1.0"]);
    bad(Script::Postinst, &["abort-upgrade"]);
    bad(Script::Postinst, &["abort-upgrade", ""]);
    bad(Script::Postinst, &["abort-remove", "x"]);
    bad(Script::Postinst, &["abort-remove", "in-favour", "pkg"]);
    bad(Script::Postinst, &["abort-remove", "in-favour", "Pkg", "1.0"]);
    bad(Script::Postinst, &["abort-remove", "in-favour", "pkg", "1.0", "x"]);
    bad(Script::Postinst, &["abort-remove", "in-favor", "pkg", "1.0"]);
    bad(Script::Postinst, &["abort-deconfigure"]);
    bad(Script::Postinst, &["abort-deconfigure", "in-favour", "pkg"]);
    bad(Script::Postinst, &["abort-deconfigure", "in-favour", "pkg", "1.0", "removing", "old"]);
    bad(Script::Postinst, &["abort-deconfigure", "in-favour", "pkg", "1.0", "replacing", "old", "1.0"]);
    bad(Script::Postinst, &["abort-deconfigure", "in-favour", "-pkg", "1.0"]);
    bad(
        Script::Postinst,
        &["abort-deconfigure", "in-favour", "pkg", "1.0", "removing", "old", "bad version"],
    );
    bad(Script::Postinst, &["triggered"]);
    bad(Script::Postinst, &["triggered", ""]);
    bad(Script::Postinst, &["triggered", "  "]);
    bad(Script::Postinst, &["triggered", "a", "b"]);
}

// ------------------------------------------------------------------ prerm

#[test]
fn prerm_remove() {
    assert_eq!(ok(Script::Prerm, &["remove"]), Action::Prerm(PrermAction::Remove));
    assert_eq!(
        ok(Script::Prerm, &["remove", "in-favour", "other", "2.0"]),
        Action::Prerm(PrermAction::RemoveInFavour { in_favour: pv("other", "2.0") })
    );
}

#[test]
fn prerm_upgrade() {
    let act = ok(Script::Prerm, &["upgrade", "2017.12-1"]);
    assert_eq!(act, Action::Prerm(PrermAction::Upgrade { new: v("2017.12-1") }));
    assert_eq!(act.to_string(), "prerm upgrade 2017.12-1");
}

#[test]
fn prerm_failed_upgrade() {
    assert_eq!(
        ok(Script::Prerm, &["failed-upgrade", "2017.10-1", "2017.12-1"]),
        Action::Prerm(PrermAction::FailedUpgrade { old: v("2017.10-1"), new: Some(v("2017.12-1")) })
    );
    let act = ok(Script::Prerm, &["failed-upgrade", "2017.10-1"]);
    assert_eq!(act, Action::Prerm(PrermAction::FailedUpgrade { old: v("2017.10-1"), new: None }));
    assert!(act.is_error_unwind());
}

#[test]
fn prerm_deconfigure() {
    assert_eq!(
        ok(Script::Prerm, &["deconfigure", "in-favour", "pkg-b", "2.0"]),
        Action::Prerm(PrermAction::Deconfigure { in_favour: pv("pkg-b", "2.0"), removing: None })
    );
    let act = ok(Script::Prerm, &["deconfigure", "in-favour", "pkg-b", "2.0", "removing", "pkg-c", "1.0"]);
    assert_eq!(
        act,
        Action::Prerm(PrermAction::Deconfigure {
            in_favour: pv("pkg-b", "2.0"),
            removing: Some(pv("pkg-c", "1.0"))
        })
    );
    assert_eq!(act.to_string(), "prerm deconfigure in-favour pkg-b 2.0 removing pkg-c 1.0");
}

#[test]
fn prerm_garbage() {
    bad(Script::Prerm, &[]);
    bad(Script::Prerm, &["remove", "now"]);
    bad(Script::Prerm, &["remove", "in-favour", "pkg", "1.0", "x"]);
    bad(Script::Prerm, &["purge"]);
    bad(Script::Prerm, &["upgrade"]);
    bad(Script::Prerm, &["upgrade", "1.0", "2.0"]);
    bad(Script::Prerm, &["failed-upgrade"]);
    bad(Script::Prerm, &["failed-upgrade", "1.0", "2.0", "3.0"]);
    bad(Script::Prerm, &["failed-upgrade", "1.0", "2.0 "]);
    bad(Script::Prerm, &["deconfigure"]);
    bad(Script::Prerm, &["deconfigure", "in-favour", "p", "1.0"]);
    bad(Script::Prerm, &["abort-upgrade", "1.0"]);
}

// ----------------------------------------------------------------- postrm

#[test]
fn postrm_remove_purge() {
    assert_eq!(ok(Script::Postrm, &["remove"]), Action::Postrm(PostrmAction::Remove));
    assert_eq!(ok(Script::Postrm, &["purge"]), Action::Postrm(PostrmAction::Purge));
}

#[test]
fn postrm_upgrade() {
    assert_eq!(
        ok(Script::Postrm, &["upgrade", "2017.12-1"]),
        Action::Postrm(PostrmAction::Upgrade { new: v("2017.12-1") })
    );
}

#[test]
fn postrm_disappear() {
    let act = ok(Script::Postrm, &["disappear", "lava-server-new", "1:2.0-1"]);
    assert_eq!(act, Action::Postrm(PostrmAction::Disappear { overwriter: pv("lava-server-new", "1:2.0-1") }));
    assert_eq!(act.to_string(), "postrm disappear lava-server-new 1:2.0-1");
}

#[test]
fn postrm_failed_upgrade() {
    assert_eq!(
        ok(Script::Postrm, &["failed-upgrade", "2017.10-1", "2017.12-1"]),
        Action::Postrm(PostrmAction::FailedUpgrade { old: v("2017.10-1"), new: Some(v("2017.12-1")) })
    );
    assert_eq!(
        ok(Script::Postrm, &["failed-upgrade", "2017.10-1"]),
        Action::Postrm(PostrmAction::FailedUpgrade { old: v("2017.10-1"), new: None })
    );
}

#[test]
fn postrm_abort_install() {
    let act = ok(Script::Postrm, &["abort-install"]);
    assert_eq!(act, Action::Postrm(PostrmAction::AbortInstall { old: None, new: None }));
    assert!(act.is_error_unwind());
    assert_eq!(
        ok(Script::Postrm, &["abort-install", "2017.10-1"]),
        Action::Postrm(PostrmAction::AbortInstall { old: Some(v("2017.10-1")), new: None })
    );
    assert_eq!(
        ok(Script::Postrm, &["abort-install", "2017.10-1", "2017.12-1"]),
        Action::Postrm(PostrmAction::AbortInstall { old: Some(v("2017.10-1")), new: Some(v("2017.12-1")) })
    );
}

#[test]
fn postrm_abort_upgrade() {
    // As seen when a LAVA-style preinst exits 42: `postrm abort-upgrade 1.0 2.0`.
    let act = ok(Script::Postrm, &["abort-upgrade", "2017.10-1", "2017.12-1"]);
    assert_eq!(
        act,
        Action::Postrm(PostrmAction::AbortUpgrade { old: v("2017.10-1"), new: Some(v("2017.12-1")) })
    );
    assert_eq!(act.to_string(), "postrm abort-upgrade 2017.10-1 2017.12-1");
    assert_eq!(
        ok(Script::Postrm, &["abort-upgrade", "2017.10-1"]),
        Action::Postrm(PostrmAction::AbortUpgrade { old: v("2017.10-1"), new: None })
    );
}

#[test]
fn postrm_garbage() {
    bad(Script::Postrm, &[]);
    bad(Script::Postrm, &[""]);
    bad(Script::Postrm, &["remove", "x"]);
    bad(Script::Postrm, &["purge", "now"]);
    bad(Script::Postrm, &["upgrade"]);
    bad(Script::Postrm, &["upgrade", "1.0", "2.0"]);
    bad(Script::Postrm, &["disappear", "pkg"]);
    bad(Script::Postrm, &["disappear", "pkg", "1.0", "x"]);
    bad(Script::Postrm, &["disappear", "PKG", "1.0"]);
    bad(Script::Postrm, &["failed-upgrade"]);
    bad(Script::Postrm, &["abort-install", "1.0", "2.0", "3.0"]);
    bad(Script::Postrm, &["abort-install", ""]);
    bad(Script::Postrm, &["abort-upgrade"]);
    bad(Script::Postrm, &["abort-upgrade", "1.0", "2.0", "3.0"]);
    bad(Script::Postrm, &["abort-upgrade", "1:"]);
    bad(Script::Postrm, &["abort-remove"]);
}

// ----------------------------------------------------------------- config

#[test]
fn config_configure() {
    let fresh = ok(Script::Config, &["configure", ""]);
    assert_eq!(fresh, Action::Config(ConfigAction::Configure { most_recently_configured: None }));
    assert_eq!(
        ok(Script::Config, &["configure", "2017.10-1"]),
        Action::Config(ConfigAction::Configure { most_recently_configured: Some(v("2017.10-1")) })
    );
}

#[test]
fn config_reconfigure() {
    let act = ok(Script::Config, &["reconfigure", "2017.12-1"]);
    assert_eq!(act, Action::Config(ConfigAction::Reconfigure { version: v("2017.12-1") }));
    assert_eq!(act.previous_version(), Some(&v("2017.12-1")));
}

#[test]
fn config_garbage() {
    bad(Script::Config, &[]);
    bad(Script::Config, &["configure"]);
    bad(Script::Config, &["configure", "1.0", "2.0"]);
    bad(Script::Config, &["reconfigure"]);
    bad(Script::Config, &["reconfigure", ""]);
    bad(Script::Config, &["install"]);
}

// ----------------------------------------------------------------- common

#[test]
fn non_utf8_argument() {
    use std::os::unix::ffi::OsStringExt;
    let args = vec![OsString::from("upgrade"), OsString::from_vec(b"1.0\xff".to_vec())];
    for script in Script::ALL {
        let err = parse(script, &args).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("unknown call form"), "{msg}");
        assert!(msg.contains(r#""upgrade" "1.0\xFF""#), "{msg}");
        assert!(msg.contains("argument 2 is not valid UTF-8"), "{msg}");
    }
}

#[test]
fn empty_argv_for_every_script() {
    for script in Script::ALL {
        let msg = bad(script, &[]);
        assert!(msg.contains("(no arguments)"), "{msg}");
        assert!(msg.contains("no action given"), "{msg}");
    }
}

#[test]
fn typed_helpers() {
    assert!(parse_preinst_args(&a(&["install"])).is_ok());
    assert!(parse_postinst_args(&a(&["abort-remove"])).is_ok());
}

#[test]
fn script_names() {
    for script in Script::ALL {
        assert_eq!(script.as_str().parse::<Script>().unwrap(), script);
    }
    assert!("templates".parse::<Script>().is_err());
    let p = |s: &str| Script::from_program_path(Path::new(s));
    assert_eq!(p("/var/lib/dpkg/info/lava-server.postinst"), Some(Script::Postinst));
    assert_eq!(p("/var/lib/dpkg/tmp.ci/preinst"), Some(Script::Preinst));
    assert_eq!(p("/var/cache/debconf/tmp.ci/lava-server.config.Ab12Cd"), Some(Script::Config));
    assert_eq!(p("postrm"), Some(Script::Postrm));
    assert_eq!(p("/usr/bin/lava-server"), None);
    assert_eq!(p("/var/lib/dpkg/info/foo.config.postinst"), Some(Script::Postinst));
    assert_eq!(p("/var/lib/dpkg/info/python3.11.prerm"), Some(Script::Prerm));
    assert_eq!(p("/var/lib/dpkg/info/lava-server.templates"), None);
}

#[test]
fn package_names() {
    for good in ["lava-server", "g++", "libc6", "0ad", "libfoo1:amd64", "a.b"] {
        validate_package_name(good).unwrap();
    }
    for badname in ["", "a", "-x", "Lava", "lava server", "lava_server", "x:", "xy:AMD64", "+x"] {
        assert!(validate_package_name(badname).is_err(), "{badname}");
    }
}
