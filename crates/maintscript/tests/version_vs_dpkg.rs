//! Cross-checks `Version` ordering against the real `dpkg --compare-versions`.

use std::cmp::Ordering;
use std::process::Command;

use lava_v1_maintscript::Version;

/// Pairs whose order is checked both ways.
const PAIRS: &[(&str, &str)] = &[
    ("1.0", "1.0"),
    ("1.0", "1.0-0"),
    ("1.0", "0:1.0"),
    ("1.0", "1.00"),
    ("1.0", "1.0-1"),
    ("1.0-1", "1.0-2"),
    ("1.0-1", "1.0-10"),
    ("1.0-9", "1.0-10"),
    ("1.2", "1.10"),
    ("1.0", "1.0.0"),
    ("1.0", "1.0a"),
    ("1.0a", "1.0b"),
    ("1.0a", "1.0A"),
    ("1.0Z", "1.0a"),
    ("1.0+", "1.0a"),
    ("1.0+", "1.0."),
    ("1.0-~", "1.0"),
    ("1.0~", "1.0"),
    ("1.0~~", "1.0~"),
    ("1.0~~a", "1.0~"),
    ("1.0~rc1", "1.0~rc2"),
    ("1.0~rc10", "1.0~rc9"),
    ("1.0~beta", "1.0~rc"),
    ("1.0-1~bpo1", "1.0-1"),
    ("1.0-1~bpo1", "1.0-0.1"),
    ("1.0-1+b1", "1.0-1"),
    ("1.0-1+deb9u1", "1.0-1+deb9u2"),
    ("1.0-1+deb9u1", "1.0-2"),
    ("1.0+dfsg-1", "1.0-1"),
    ("1.0+dfsg-1", "1.0.1-1"),
    ("1:0.1", "9.9"),
    ("1:0.1", "2:0.0"),
    ("0:9.9", "9.9"),
    ("10:1", "9:2"),
    ("2017.12~rc1", "2017.12"),
    ("2017.12", "2017.12-1"),
    ("2017.12~rc1-1", "2017.12-1"),
    ("2017.12~rc1-1", "2017.12~"),
    ("2017.10-1", "2017.12~"),
    ("2017.10-1+deb9u1", "2017.12~"),
    ("2017.11-1", "2017.12~"),
    ("2017.11.99", "2017.12"),
    ("2017.10-1", "2017.12-1"),
    ("2017.12-0.1", "2017.12-1"),
    ("2017.12.1-1", "2017.12-1"),
    ("2018.01-1", "2017.12-1"),
    ("1:2016.1", "2017.12"),
    ("1.0-1-2", "1.0-1-1"),
    ("1.0-1-2", "1.0-2"),
    ("1:1:1", "1:1.1"),
    ("0", "00"),
    ("0001", "1"),
    ("1.0-0ubuntu1", "1.0-0"),
    ("18446744073709551616", "18446744073709551615"),
    ("1.0-a", "1.0-0"),
    ("1.0.", "1.0"),
    ("1.0-1.", "1.0-1"),
];

fn dpkg_says(a: &str, op: &str, b: &str) -> bool {
    let out = Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .env("LC_ALL", "C")
        .output()
        .expect("run dpkg --compare-versions");
    assert!(
        out.stderr.is_empty(),
        "dpkg complained about {a} {op} {b}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("dpkg --compare-versions {a} {op} {b}: {other:?}"),
    }
}

fn dpkg_order(a: &str, b: &str) -> Ordering {
    if dpkg_says(a, "lt", b) {
        Ordering::Less
    } else if dpkg_says(a, "gt", b) {
        Ordering::Greater
    } else {
        assert!(dpkg_says(a, "eq", b));
        Ordering::Equal
    }
}

#[test]
#[allow(clippy::print_stderr)]
fn ordering_matches_dpkg() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        eprintln!("dpkg not found: skipping the cross-check with dpkg --compare-versions");
        return;
    }
    assert!(PAIRS.len() >= 40);
    let mut mismatches = Vec::new();
    for &(a, b) in PAIRS {
        let va = Version::parse(a).unwrap_or_else(|e| panic!("{e}"));
        let vb = Version::parse(b).unwrap_or_else(|e| panic!("{e}"));
        for (x, y, vx, vy) in [(a, b, &va, &vb), (b, a, &vb, &va)] {
            let ours = vx.cmp(vy);
            let theirs = dpkg_order(x, y);
            if ours != theirs {
                mismatches.push(format!("{x} vs {y}: ours {ours:?}, dpkg {theirs:?}"));
            }
            assert_eq!(ours == Ordering::Equal, vx == vy);
            assert_eq!(ours, vx.cmp(vy));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[test]
fn validation_matches_dpkg_validate_version() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        return;
    }
    for s in [
        "1.0",
        "1:1.0-1",
        "1.0-1-2",
        "1:1:1",
        "0",
        "1.0~",
        "a1",
        "1_0",
        "1.0-",
        ":1",
        "1:",
        "1.0 1",
        "1.0-a_b",
        "1.0@",
        "99999999999:1",
        "2147483647:1",
        "2147483648:1",
        "1.0-1:2",
        "1.0ä",
        "1.0-~",
        "1.0-+",
    ] {
        let dpkg_ok = Command::new("dpkg")
            .args(["--validate-version", s])
            .env("LC_ALL", "C")
            .output()
            .unwrap()
            .status
            .success();
        assert_eq!(Version::parse(s).is_ok(), dpkg_ok, "{s:?}");
    }
}
