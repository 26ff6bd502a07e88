//! `lava-v1 maintenance`: the holding page, against a real (private)
//! Apache started by each test (see `lava_v1_testkit::apache`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use lava_v1_holdpage::{self as holdpage, OnOutcome, Options};
use lava_v1_testkit::apache::{self, Apache, Response, PAGES};

/// URLs the holding page must answer, beyond the fake site's pages.
const MORE_URLS: [&str; 3] =
    ["/lava-maintenance.html", "/static/lava_server/css/bootstrap.css", "/accounts/login/?next=/"];

fn lava_v1(a: &Apache, args: &[&str]) -> Output {
    Command::new(lava_v1_testkit::program("lava-v1"))
        .arg("--state-dir")
        .arg(a.state_dir())
        .arg("maintenance")
        .args(args)
        .arg("--apache-root")
        .arg(a.root())
        .arg("--apachectl")
        .arg(apache::apachectl())
        .arg("--page-dir")
        .arg(a.page_dir())
        .env("RUST_LOG", "info")
        .output()
        .expect("run lava-v1")
}

fn show(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn ok(out: Output) -> String {
    assert!(out.status.success(), "lava-v1 failed: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn refused(out: Output) -> String {
    assert_eq!(out.status.code(), Some(1), "expected a refusal: {}", show(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_holding(r: &Response, url: &str) {
    assert_eq!(r.status, 503, "{url}: {r:?}");
    assert_eq!(r.header("Retry-After"), Some("600"), "{url}: {r:?}");
    assert_eq!(r.header("Cache-Control"), Some("no-store"), "{url}: {r:?}");
    assert!(r.header("Content-Type").is_some_and(|t| t.starts_with("text/html")), "{url}: {r:?}");
    assert!(r.body.contains("<title>Upgrade in progress"), "{url}: {}", r.body);
    assert!(r.body.contains("This LAVA instance is being upgraded"), "{url}: {}", r.body);
    assert!(r.body.contains("try again in about 10 minutes"), "{url}: {}", r.body);
}

#[track_caller]
fn assert_original(a: &Apache) {
    for (url, _, body) in PAGES {
        let r = a.wait_for(url, 200);
        assert_eq!(r.body, body, "{url}");
        assert_eq!(r.header("Retry-After"), None, "{url}");
    }
}

/// Waits for the holding page, then checks every URL (and a POST).
fn assert_holding_everywhere(a: &Apache) {
    assert_holding(&a.wait_for("/", 503), "/");
    for url in PAGES.iter().map(|p| p.0).chain(MORE_URLS) {
        assert_holding(&a.get(url), url);
    }
    let post = a.request("POST", "/scheduler/jobs/submit").expect("POST");
    assert_holding(&post, "POST /scheduler/jobs/submit");
}

#[test]
fn holding_page_answers_every_url_and_off_restores_exactly() {
    let a = Apache::start();
    assert_original(&a);
    let before = a.snapshot();
    assert!(ok(lava_v1(&a, &["status"])).contains("maintenance: off"));

    let out = ok(lava_v1(&a, &["on"]));
    assert!(out.contains("maintenance on: every URL of the lava-server site now answers 503"), "{out}");
    assert!(out.contains("disabled:     sites-enabled/lava-server.conf"), "{out}");
    assert!(out.contains("mod_rewrite, mod_headers"), "{out}");
    assert_holding_everywhere(&a);

    // The Debian way: a site of its own, linked as a2ensite links, the
    // original link gone, the modules linked as a2enmod links them.
    let root = a.root();
    assert_eq!(
        std::fs::read_link(root.join("sites-enabled/lava-server-maintenance.conf")).unwrap(),
        Path::new("../sites-available/lava-server-maintenance.conf")
    );
    assert!(root.join("sites-enabled/lava-server.conf").symlink_metadata().is_err());
    assert!(root.join("sites-available/lava-server.conf").exists(), "the site file stays");
    assert_eq!(
        std::fs::read_link(root.join("mods-enabled/rewrite.load")).unwrap(),
        Path::new("../mods-available/rewrite.load")
    );
    let conf = std::fs::read_to_string(root.join("sites-available/lava-server-maintenance.conf")).unwrap();
    assert!(conf.contains(&format!("<VirtualHost *:{}>", a.port)), "the site's own address:\n{conf}");
    assert!(
        conf.contains("ServerName lava.test") && conf.contains("ServerAlias localhost 127.0.0.1"),
        "{conf}"
    );

    let st = ok(lava_v1(&a, &["status"]));
    assert!(st.contains("maintenance: on since "), "{st}");
    assert!(st.contains("sites-enabled/lava-server.conf -> ../sites-available/lava-server.conf"), "{st}");
    let json: serde_json::Value = serde_json::from_str(&ok(lava_v1(&a, &["status", "--json"]))).unwrap();
    assert_eq!(json["state"], "on");
    assert_eq!(json["enabled_modules"], serde_json::json!(["rewrite", "headers"]));

    let out = ok(lava_v1(&a, &["off"]));
    assert!(
        out.contains("maintenance off: the lava-server site is back (sites-enabled/lava-server.conf)"),
        "{out}"
    );
    assert!(out.contains("disabled again: mod_rewrite, mod_headers"), "{out}");
    assert_original(&a);
    assert_eq!(a.snapshot(), before, "off restores the Apache tree exactly");
    assert!(!a.state_dir().join("maintenance").exists());
    assert!(ok(lava_v1(&a, &["status"])).contains("maintenance: off"));
    assert!(ok(lava_v1(&a, &["off"])).contains("maintenance is not on; nothing changed"));
    let journal = std::fs::read_to_string(a.state_dir().join("journal.log")).unwrap();
    assert!(
        journal.contains("maintenance on: holding page served")
            && journal.contains("maintenance off: restored")
    );
}

#[test]
fn on_twice_is_idempotent_and_survives_a_package_re_enabling_the_site() {
    let a = Apache::start();
    let before = a.snapshot();
    ok(lava_v1(&a, &["on"]));
    assert_holding_everywhere(&a);
    let during = a.snapshot();
    let record = std::fs::read_to_string(a.state_dir().join("maintenance")).unwrap();

    let out = ok(lava_v1(&a, &["on"]));
    assert!(out.contains("maintenance is already on (since "), "{out}");
    assert_eq!(a.snapshot(), during);
    assert_eq!(std::fs::read_to_string(a.state_dir().join("maintenance")).unwrap(), record);
    assert_holding(&a.get("/results/1234"), "/results/1234");

    // A package upgrade runs `a2ensite lava-server` meanwhile; the holding
    // site still wins (it sorts first), status notices, `on` fixes it.
    let link = a.root().join("sites-enabled/lava-server.conf");
    std::os::unix::fs::symlink("../sites-available/lava-server.conf", &link).unwrap();
    let st = ok(lava_v1(&a, &["status"]));
    assert!(
        st.contains("maintenance: inconsistent") && st.contains("the lava-server site is enabled again"),
        "{st}"
    );
    let out = ok(lava_v1(&a, &["on"]));
    assert!(out.contains("disabled:     sites-enabled/lava-server.conf"), "{out}");
    assert_eq!(a.snapshot(), during);
    assert!(ok(lava_v1(&a, &["status"])).contains("maintenance: on since "));

    ok(lava_v1(&a, &["off"]));
    assert_original(&a);
    assert_eq!(a.snapshot(), before);
}

#[test]
fn a_broken_apache_configuration_is_refused_before_switching() {
    let a = Apache::start();
    let broken = a.root().join("conf-enabled/local.conf");
    std::fs::write(&broken, "ThisIsNotAnApacheDirective on\n").unwrap();
    let before = a.snapshot();
    let err = refused(lava_v1(&a, &["on"]));
    assert!(
        err.contains("configtest` fails before switching to the holding page; nothing was changed"),
        "{err}"
    );
    assert!(err.contains("ThisIsNotAnApacheDirective"), "apachectl's own words:\n{err}");
    assert!(err.contains("hint: fix Apache's configuration first"), "{err}");
    assert_eq!(a.snapshot(), before);
    assert!(!a.state_dir().join("maintenance").exists());
    assert_original(&a);

    // `off` refuses the same way while the holding page is on.
    std::fs::remove_file(&broken).unwrap();
    ok(lava_v1(&a, &["on"]));
    assert_holding_everywhere(&a);
    std::fs::write(&broken, "ThisIsNotAnApacheDirective on\n").unwrap();
    let during = a.snapshot();
    let err = refused(lava_v1(&a, &["off"]));
    assert!(err.contains("fails before switching back; nothing was changed"), "{err}");
    assert_eq!(a.snapshot(), during);
    assert_holding(&a.get("/"), "/");
    std::fs::remove_file(&broken).unwrap();
    ok(lava_v1(&a, &["off"]));
    assert_original(&a);
}

#[test]
fn a_holding_configuration_apache_rejects_is_undone() {
    let a = Apache::start();
    let headers_load = a.root().join("mods-available/headers.load");
    let good = std::fs::read(&headers_load).unwrap();
    // mod_headers is broken on this system: the configuration only fails
    // once the holding page enables it.
    std::fs::write(
        a.root().join("mods-available/headers.load"),
        "LoadModule headers_module /nonexistent/mod_headers.so\n",
    )
    .unwrap();
    let before = a.snapshot();
    let err = refused(lava_v1(&a, &["on"]));
    assert!(err.contains("fails with the holding page in place; nothing was changed"), "{err}");
    assert!(err.contains("/nonexistent/mod_headers.so"), "{err}");
    assert_eq!(a.snapshot(), before, "every change undone");
    assert!(!a.state_dir().join("maintenance").exists());
    assert_original(&a);
    assert!(ok(lava_v1(&a, &["status"])).contains("maintenance: off"));

    // Holding-page addresses Apache rejects are refused too.
    std::fs::write(&headers_load, good).unwrap();
    let before = a.snapshot();
    let err = refused(lava_v1(&a, &["on", "--server-name", "two words"]));
    assert!(err.contains("fails with the holding page in place"), "{err}");
    assert_eq!(a.snapshot(), before);
    assert_original(&a);
}

#[test]
fn the_postinst_entry_point_only_acts_on_an_enabled_site() {
    let a = Apache::start();
    let opts = Options {
        apache_root: a.root(),
        apachectl: apache::apachectl(),
        page_dir: a.page_dir(),
        state_dir: a.state_dir(),
        ..Options::default()
    };
    let link = a.root().join("sites-enabled/lava-server.conf");
    std::fs::remove_file(&link).unwrap();
    let before = a.snapshot();
    assert_eq!(holdpage::enable_if_site_enabled(&opts).unwrap(), None);
    assert_eq!(a.snapshot(), before);

    std::os::unix::fs::symlink("../sites-available/lava-server.conf", &link).unwrap();
    match holdpage::enable_if_site_enabled(&opts).unwrap() {
        Some(OnOutcome::Enabled { disabled_sites, .. }) => assert_eq!(disabled_sites, ["lava-server.conf"]),
        other => panic!("expected the holding page to be switched on, got {other:?}"),
    }
    assert_holding_everywhere(&a);
    assert!(matches!(holdpage::enable_if_site_enabled(&opts).unwrap(), Some(OnOutcome::AlreadyOn { .. })));
    holdpage::off(&opts).unwrap();
    assert_original(&a);
}

fn target_dir() -> PathBuf {
    // …/target/<profile>/deps/integration-<hash>
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors().nth(3).expect("the target directory").to_owned()
}

#[test]
fn screenshot_of_the_holding_page() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
        .unwrap_or_else(|| panic!("chromium is not installed (it takes the holding page's screenshot): run scripts/install-deps"));
    let a = Apache::start();
    ok(lava_v1(&a, &["on"]));
    assert_holding(&a.wait_for("/", 503), "/");

    let tmp = tempfile::tempdir().unwrap();
    let png = tmp.path().join("maintenance-page.png");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1024,768",
        ])
        .arg(format!("--user-data-dir={}", tmp.path().join("profile").display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("http://127.0.0.1:{}/scheduler/", a.port))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Never hang the suite on a wedged browser.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("wait for chromium").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took more than 90 s to take the screenshot");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("chromium's output");
    let bytes = std::fs::read(&png).unwrap_or_else(|e| {
        panic!("chromium wrote no screenshot ({e}): {}", show(&out));
    });
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {}", show(&out));
    // 1024×768 from the IHDR chunk.
    assert_eq!(&bytes[12..16], b"IHDR");
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 1024);
    assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 768);
    // A blank or error page compresses to almost nothing; text and a card
    // do not.
    assert!(bytes.len() > 8_000, "the screenshot is suspiciously small ({} bytes)", bytes.len());
    let keep = target_dir().join("maintenance-page.png");
    std::fs::copy(&png, &keep).unwrap_or_else(|e| panic!("copy the screenshot to {}: {e}", keep.display()));
    eprintln!("holding page screenshot: {}", keep.display());
    ok(lava_v1(&a, &["off"]));
}
