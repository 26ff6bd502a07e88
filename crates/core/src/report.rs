//! `lava-v1 report`: everything the upstream page asks an admin to collect
//! after a failed upgrade, in one plain-text file ready for a pastebin or a
//! mailing-list post: the journal of every step (with the exact errors),
//! the state directory, package versions and dpkg status, the debconf
//! answers, the V1 status report, and the recent apt history.
//!
//! Every password is masked: the database password read from
//! `instance.conf` wherever it appears, and the value of any
//! `…PASSWORD…=` assignment.  The file is created with mode 0600.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::{InstanceConf, Paths};
use crate::{detect, state, Error, Result};

/// Where the report's outside sources live (overridable for tests).
#[derive(Debug, Clone)]
pub struct Sources {
    /// apt's log directory (`history.log`, `term.log`).
    pub apt_log_dir: PathBuf,
    /// How much of the end of each log to include, in bytes.
    pub tail_bytes: u64,
}

impl Default for Sources {
    fn default() -> Self {
        Sources { apt_log_dir: "/var/log/apt".into(), tail_bytes: 64 * 1024 }
    }
}

const MASK: &str = "********";

/// Masks `secret` and every `…PASSWORD…=value` in `text`.
pub fn mask(text: &str, secret: Option<&str>) -> String {
    let mut out = match secret {
        Some(s) if !s.is_empty() => text.replace(s, MASK),
        _ => text.to_owned(),
    };
    let mut masked = String::with_capacity(out.len());
    for line in out.split_inclusive('\n') {
        let upper = line.to_ascii_uppercase();
        match (upper.find("PASSWORD"), line.find('=')) {
            (Some(p), Some(eq)) if eq > p => {
                masked.push_str(&line[..=eq]);
                masked.push_str(MASK);
                if line.ends_with('\n') {
                    masked.push('\n');
                }
            }
            _ => masked.push_str(line),
        }
    }
    out = masked;
    out
}

fn section(out: &mut String, title: &str, body: &str) {
    let _ = writeln!(out, "\n===== {title} =====");
    out.push_str(body);
    if !body.ends_with('\n') {
        out.push('\n');
    }
}

fn tail(path: &Path, bytes: u64) -> String {
    match std::fs::read(path) {
        Ok(data) => {
            let start = data.len().saturating_sub(bytes as usize);
            let mut text = String::from_utf8_lossy(&data[start..]).into_owned();
            if start > 0 {
                text.insert_str(0, &format!("[… first {start} bytes left out]\n"));
            }
            text
        }
        Err(e) => format!("({}: {e})\n", path.display()),
    }
}

fn command(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).env("LC_ALL", "C").output() {
        Ok(out) => {
            let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
            let err = String::from_utf8_lossy(&out.stderr);
            if !err.trim().is_empty() {
                s.push_str(&err);
            }
            if !out.status.success() {
                let _ = writeln!(s, "({program} {}: {})", args.join(" "), out.status);
            }
            s
        }
        Err(e) => format!("(cannot run {program}: {e})\n"),
    }
}

/// Builds the report text (already masked).
pub fn build(paths: &Paths, sources: &Sources) -> String {
    let secret = InstanceConf::load(&paths.instance_conf)
        .ok()
        .and_then(|c| c.get("LAVA_DB_PASSWORD").map(str::to_owned));
    let mut out = String::new();
    let _ = writeln!(out, "lava-v1 report, {} (lava-v1 {})", state::utc_now(), env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "Passwords in this report are replaced by {MASK}.");

    section(
        &mut out,
        "V1 status",
        &match detect::report(paths) {
            Ok(r) => serde_json::to_string_pretty(&r).unwrap_or_default(),
            Err(e) => format!("the V1 status could not be read: {}", chain(&e)),
        },
    );

    let journal = paths.state_dir.join("journal.log");
    section(&mut out, &format!("journal ({})", journal.display()), &tail(&journal, 256 * 1024));
    let mut listing = String::new();
    match std::fs::read_dir(&paths.state_dir) {
        Ok(rd) => {
            let mut entries: Vec<_> = rd.flatten().collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let meta = e.metadata();
                let _ = writeln!(
                    listing,
                    "{} {}",
                    e.file_name().to_string_lossy(),
                    meta.map(|m| format!("{} bytes", m.len())).unwrap_or_default()
                );
                if e.file_name() == "decision" || e.file_name() == "last-backup" {
                    listing.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        Err(e) => listing = format!("({}: {e})\n", paths.state_dir.display()),
    }
    section(&mut out, &format!("state directory ({})", paths.state_dir.display()), &listing);

    section(
        &mut out,
        "packages",
        &command(
            "dpkg-query",
            &[
                "-W",
                "-f=${db:Status-Abbrev} ${Package} ${Version}\n",
                "lava-*",
                "postgresql*",
                "python*-django",
            ],
        ),
    );
    section(&mut out, "dpkg audit (dpkg -C)", &command("dpkg", &["-C"]));
    section(
        &mut out,
        "debconf answers (debconf-show lava-server)",
        &command("debconf-show", &["lava-server"]),
    );
    section(
        &mut out,
        "instance.conf",
        &std::fs::read_to_string(&paths.instance_conf).unwrap_or_else(|e| e.to_string()),
    );
    for log in ["history.log", "term.log"] {
        let path = sources.apt_log_dir.join(log);
        section(&mut out, &format!("apt {log} (end)"), &tail(&path, sources.tail_bytes));
    }
    mask(&out, secret.as_deref())
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        let _ = write!(s, ": {c}");
        source = c.source();
    }
    s
}

/// Writes the report to `output` (mode 0600) and returns its path.
pub fn write(paths: &Paths, sources: &Sources, output: Option<&Path>) -> Result<PathBuf> {
    let text = build(paths, sources);
    let path = match output {
        Some(p) => p.to_owned(),
        None => {
            std::fs::create_dir_all(&paths.state_dir)
                .map_err(|source| Error::State { path: paths.state_dir.clone(), source })?;
            paths.state_dir.join(format!("report-{}.txt", state::utc_now().replace([':', '-'], "")))
        }
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| Error::State { path: path.clone(), source })?;
    f.write_all(text.as_bytes()).map_err(|source| Error::State { path: path.clone(), source })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_secret_and_password_assignments() {
        let text =
            "connect with hunter2 failed\nLAVA_DB_PASSWORD=\"other\"\nexport PGPASSWORD=xyz\nplain=line\n";
        let m = mask(text, Some("hunter2"));
        assert!(!m.contains("hunter2") && !m.contains("other") && !m.contains("xyz"), "{m}");
        assert!(m.contains("plain=line"));
        assert_eq!(m.lines().count(), 4);
    }
}
