//! `lava-v1 report`: everything the upstream page asks an admin to collect
//! after a failed upgrade, in one plain-text file ready for a pastebin or a
//! mailing-list post: the journal of every step (with the exact errors),
//! the state directory, the V1 status report, and the recent apt history,
//! with the sections the caller gathers from the packaging system
//! ([`Sources::packaging`]: package versions, dpkg's audit, the debconf
//! answers; this crate runs neither dpkg nor debconf).
//!
//! Every password is masked: every value of a line of `instance.conf`
//! whose key holds `PASS` (any case; `=`, `:` or whitespace after it),
//! found textually so that a file that does not parse is no exception,
//! and the password as LAVA reads it, wherever they appear; the rest of
//! every such `instance.conf` line; and the value of any `…PASSWORD…=`
//! assignment elsewhere.  The file is created with mode 0600.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::{InstanceConf, Paths};
use crate::{detect, state, Error, Result};

/// Where the report's outside sources live (overridable for tests).
#[derive(Debug, Clone)]
pub struct Sources {
    /// apt's log directory (`history.log`, `term.log`).
    pub apt_log_dir: PathBuf,
    /// How much of the end of each log to include, in bytes.
    pub tail_bytes: u64,
    /// Sections from the packaging system, in this order, after the state
    /// directory (masked like the rest).
    pub packaging: Vec<Section>,
}

/// One section of the report: a title and the text under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The title (`===== title =====`).
    pub title: String,
    /// The text.
    pub body: String,
}

impl Default for Sources {
    fn default() -> Self {
        Sources { apt_log_dir: "/var/log/apt".into(), tail_bytes: 64 * 1024, packaging: Vec::new() }
    }
}

const MASK: &str = "********";

/// Where the value of a password line starts: `line` holds `PASS` (any
/// case) followed, after the rest of its word, by `=`, `:` or whitespace;
/// the value starts after that run of separators.  Comment lines count:
/// an old password commented out is still a password.
fn password_value_start(line: &str) -> Option<usize> {
    let upper = line.to_ascii_uppercase();
    let pass = upper.find("PASS")?;
    let is_sep = |c: char| c == '=' || c == ':' || c.is_whitespace();
    let sep = pass + line[pass..].find(is_sep)?;
    let value = sep + line[sep..].find(|c: char| !is_sep(c)).unwrap_or(line.len() - sep);
    Some(value)
}

/// The passwords `instance.conf` holds, found textually (it need not
/// parse): the value of every line whose key holds `PASS`, as written and
/// without its quotes.
pub fn conf_secrets(conf: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in conf.lines() {
        let Some(start) = password_value_start(line) else { continue };
        let value = line[start..].trim();
        let mut push = |v: &str| {
            let v = v.trim();
            if !v.is_empty() && !out.iter().any(|o| o == v) {
                out.push(v.to_owned());
            }
        };
        push(value);
        for q in ['"', '\''] {
            if let Some(inner) = value.strip_prefix(q) {
                // Up to the closing quote, or the end of a line without one.
                push(inner.split(q).next().unwrap_or(inner));
            }
        }
        push(value.trim_end_matches(';'));
    }
    out
}

/// Masks every line of `instance.conf` text whose key holds `PASS` (any
/// case, any separator): the line is kept up to its separator.
pub fn mask_conf_lines(conf: &str) -> String {
    let mut out = String::with_capacity(conf.len());
    for line in conf.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        match password_value_start(body) {
            Some(start) if start < body.len() => {
                out.push_str(&body[..start]);
                out.push_str(MASK);
                out.push_str(&line[body.len()..]);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// Masks every one of `secrets` and every `…PASSWORD…=value` in `text`.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    // The longest first, so that a secret holding another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for s in secrets {
        out = out.replace(s.as_str(), MASK);
    }
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

/// Builds the report text (already masked).
pub fn build(paths: &Paths, sources: &Sources) -> String {
    // Found textually first, so that a file that does not parse hides
    // nothing; then the password exactly as LAVA reads it.
    let conf_text = std::fs::read(&paths.instance_conf).map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut secrets = conf_text.as_deref().map(conf_secrets).unwrap_or_default();
    if let Some(p) = InstanceConf::load(&paths.instance_conf)
        .ok()
        .and_then(|c| c.get("LAVA_DB_PASSWORD").map(str::to_owned))
    {
        secrets.push(p);
    }
    let mut out = String::new();
    let _ = writeln!(out, "lava-v1 report, {} (lava-v1 {})", state::utc_now(), env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "Passwords in this report are replaced by {MASK}.");

    section(
        &mut out,
        "V1 status",
        &match detect::report(paths) {
            Ok(r) => serde_json::to_string_pretty(&r).unwrap_or_default(),
            Err(e) => {
                format!("the V1 status could not be read:\n{}", crate::explain::render("lava-v1 status", &e))
            }
        },
    );

    let state_dir = crate::state::StateDir::new(&paths.state_dir);
    let journal = state_dir.journal_path();
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
                if e.file_name() == "decision" || e.file_name() == crate::state::LAST_BACKUP {
                    listing.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        Err(e) => listing = format!("({}: {e})\n", paths.state_dir.display()),
    }
    section(&mut out, &format!("state directory ({})", paths.state_dir.display()), &listing);

    for extra in &sources.packaging {
        section(&mut out, &extra.title, &extra.body);
    }
    section(
        &mut out,
        "instance.conf",
        &match &conf_text {
            Ok(text) => mask_conf_lines(text),
            Err(e) => e.to_string(),
        },
    );
    for log in ["history.log", "term.log"] {
        let path = sources.apt_log_dir.join(log);
        section(&mut out, &format!("apt {log} (end)"), &tail(&path, sources.tail_bytes));
    }
    mask(&out, &secrets)
}

/// Writes the report to `output` (mode 0600) and returns its path.
pub fn write(paths: &Paths, sources: &Sources, output: Option<&Path>) -> Result<PathBuf> {
    let text = build(paths, sources);
    let path = match output {
        Some(p) => p.to_owned(),
        None => {
            state::StateDir::new(&paths.state_dir).create()?;
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
        let m = mask(text, &["hunter2".to_owned()]);
        assert!(!m.contains("hunter2") && !m.contains("other") && !m.contains("xyz"), "{m}");
        assert!(m.contains("plain=line"));
        assert_eq!(m.lines().count(), 4);
    }

    #[test]
    fn a_password_is_masked_even_when_instance_conf_does_not_parse() {
        let cases = [
            "LAVA_DB_PASSWORD: hunter2-secret\n",
            "lava_db_password   hunter2-secret\n",
            "LAVA_DB_PASSWORD = \"hunter2-secret\n",
            "export LAVA_DB_PASSWORD='hunter2-secret' # the old one\n",
            "LAVA_DB_PASSWORD=\"hunter2-secret\"\nBROKEN LINE (\n",
            "\tDb_Pass:\t'hunter2-secret'\r\n",
            "# LAVA_DB_PASSWORD=\"hunter2-secret\"\nLAVA_DB_PASSWORD=\"\"\n",
        ];
        for conf in cases {
            let dir = tempfile::tempdir().unwrap();
            let apt = dir.path().join("apt");
            std::fs::create_dir(&apt).unwrap();
            std::fs::write(apt.join("term.log"), "psql: connecting with hunter2-secret failed\n").unwrap();
            std::fs::write(apt.join("history.log"), "Commandline: apt upgrade\n").unwrap();
            let paths = Paths {
                instance_conf: dir.path().join("instance.conf"),
                settings_conf: dir.path().join("settings.conf"),
                media_root: Some(dir.path().join("media")),
                state_dir: dir.path().join("state"),
            };
            std::fs::write(
                &paths.instance_conf,
                format!("LAVA_DB_NAME=\"lavaserver\"\nLAVA_DB_SERVER=\"/nonexistent\"\n{conf}"),
            )
            .unwrap();
            let packaging = vec![Section {
                title: "packages".to_owned(),
                body: "ii  lava-server 2017.10-1 (hunter2-secret)\n".to_owned(),
            }];
            let text = build(&paths, &Sources { apt_log_dir: apt, tail_bytes: 4096, packaging });
            assert!(
                text.contains("\n===== packages =====\nii  lava-server 2017.10-1 (********)\n"),
                "{text}"
            );
            assert!(!text.contains("hunter2"), "{conf:?} leaked:\n{text}");
            assert!(text.contains("LAVA_DB_NAME=\"lavaserver\""), "{text}");
            assert!(text.contains(&format!("connecting with {MASK} failed")), "{text}");
        }
    }

    #[test]
    fn the_report_goes_into_a_private_state_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            instance_conf: dir.path().join("instance.conf"),
            settings_conf: dir.path().join("settings.conf"),
            media_root: Some(dir.path().join("media")),
            state_dir: dir.path().join("lib/v1-removal"),
        };
        let sources =
            Sources { apt_log_dir: dir.path().join("apt"), tail_bytes: 1024, packaging: Vec::new() };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let report = write(&paths, &sources, None).unwrap();
        assert_eq!(mode(&paths.state_dir), 0o700);
        assert_eq!(mode(&report), 0o600);
        std::fs::set_permissions(&paths.state_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        write(&paths, &sources, None).unwrap();
        assert_eq!(mode(&paths.state_dir), 0o700, "an existing one is tightened");
    }

    #[test]
    fn every_pass_line_of_instance_conf_is_masked() {
        let conf =
            "LAVA_DB_USER=\"lava\"\nLAVA_DB_PASSWORD: x1\nPGPASS  x2\nmy_passphrase=x3\nLAVA_DB_PASSWORD=\n";
        let m = mask_conf_lines(conf);
        assert_eq!(
            m,
            "LAVA_DB_USER=\"lava\"\nLAVA_DB_PASSWORD: ********\nPGPASS  ********\nmy_passphrase=********\nLAVA_DB_PASSWORD=\n"
        );
        assert_eq!(conf_secrets(conf), ["x1", "x2", "x3"]);
        assert_eq!(conf_secrets("P_PASS=\"a b\" # c\n"), ["\"a b\" # c", "a b"]);
    }
}
