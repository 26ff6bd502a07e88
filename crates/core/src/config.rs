//! Reading `/etc/lava-server/instance.conf` and `settings.conf` the way LAVA
//! 2017.10 reads them.
//!
//! LAVA's settings loader accepts an `instance.conf` line only when the whole
//! line matches
//!
//! ```text
//! ^[_a-zA-Z][_a-zA-Z0-9]*=['"][^']*['"]\s*(#.*)?$
//! ```
//!
//! and silently ignores every other line.  The quirks that follow from it,
//! all reproduced here because the database LAVA actually uses is the one we
//! must find:
//!
//! * quote kinds are not paired: `"value'` is accepted;
//! * a value can never contain `'`, but can contain `"` (the greedy match
//!   makes `K="a"b"` the value `a"b`);
//! * no escapes, no `$VAR` expansion;
//! * unquoted values, `export K="v"` and indented lines are ignored;
//! * the last occurrence of a key wins.
//!
//! Lines LAVA would ignore but that name one of the database keys get a
//! warning, because the admin almost certainly meant them.  Lines that are
//! neither blank, a comment, nor an assignment of some shell form are not
//! something LAVA writes or a shell could source: they are reported as an
//! error naming the line, since a file in that state cannot be trusted to
//! say which database LAVA uses.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The default location of LAVA's instance configuration.
pub const DEFAULT_INSTANCE_CONF: &str = "/etc/lava-server/instance.conf";
/// The default location of LAVA's JSON settings.
pub const DEFAULT_SETTINGS_CONF: &str = "/etc/lava-server/settings.conf";
/// `MEDIA_ROOT` when `settings.conf` does not set it (note: no `default/`).
pub const FALLBACK_MEDIA_ROOT: &str = "/var/lib/lava-server/media/";
/// Where this tool keeps its decision, journal and lock.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lava-server/v1-removal";

/// The key/value pairs LAVA would read from an `instance.conf`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InstanceConf {
    values: BTreeMap<String, String>,
    /// Human-readable notes about lines LAVA ignores but that look meant.
    pub warnings: Vec<String>,
}

impl fmt::Debug for InstanceConf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never let a password reach a log through Debug.
        let masked: BTreeMap<&str, &str> = self
            .values
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_key(k) { "********" } else { v.as_str() };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("InstanceConf").field("values", &masked).field("warnings", &self.warnings).finish()
    }
}

fn is_secret_key(key: &str) -> bool {
    key.contains("PASSWORD") || key.contains("SECRET")
}

impl InstanceConf {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::ReadFile {
            path: path.to_owned(),
            what: "instance configuration",
            source,
        })?;
        Self::parse(path, &bytes)
    }

    /// Parses the contents of an `instance.conf`; `path` is only used in
    /// messages.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let mut conf = InstanceConf::default();
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let lineno = index + 1;
            let line = std::str::from_utf8(raw).map_err(|_| Error::ConfigSyntax {
                path: path.to_owned(),
                line: lineno,
                reason: "the line is not valid UTF-8".into(),
            })?;
            if line.contains('\0') {
                return Err(Error::ConfigSyntax {
                    path: path.to_owned(),
                    line: lineno,
                    reason: "the line contains a NUL byte".into(),
                });
            }
            match parse_line(line) {
                Line::Ignored => {}
                Line::Assignment(key, value) => {
                    conf.values.insert(key.to_owned(), value.to_owned());
                }
                Line::IgnoredAssignment(key, why) => {
                    if key.starts_with("LAVA_DB_") {
                        conf.warnings.push(format!(
                            "{}:{lineno}: LAVA ignores this `{key}` line ({why}); the default applies, as it does for LAVA",
                            path.display()
                        ));
                    }
                }
                Line::Garbage => {
                    return Err(Error::ConfigSyntax {
                        path: path.to_owned(),
                        line: lineno,
                        reason: format!(
                            "expected `KEY=\"value\"`, a `#` comment or a blank line, found {}",
                            describe_garbage(line)
                        ),
                    });
                }
            }
        }
        Ok(conf)
    }

    /// The value of `key` as LAVA would see it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The database settings derived from this file, with LAVA's defaults.
    pub fn database(&self) -> DbConfig {
        let value = |k: &str| self.get(k).unwrap_or("").to_owned();
        DbConfig {
            name: value("LAVA_DB_NAME"),
            user: value("LAVA_DB_USER"),
            password: value("LAVA_DB_PASSWORD"),
            // A missing or empty server means TCP to 127.0.0.1, not the socket.
            server: match self.get("LAVA_DB_SERVER") {
                Some(s) if !s.is_empty() => s.to_owned(),
                _ => "127.0.0.1".to_owned(),
            },
            port: value("LAVA_DB_PORT"),
        }
    }
}

/// Shows a garbage line without leaking a value that might be a secret.
fn describe_garbage(line: &str) -> String {
    if is_secret_key(line) {
        "a malformed line that mentions a password (not shown)".into()
    } else {
        let mut shown: String = line.chars().take(60).collect();
        if shown.len() < line.len() {
            shown.push('…');
        }
        format!("`{}`", shown.escape_debug())
    }
}

enum Line<'a> {
    Ignored,
    Assignment(&'a str, &'a str),
    /// An assignment of some shell form that LAVA's reader skips.
    IgnoredAssignment(&'a str, &'static str),
    Garbage,
}

fn is_key_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_key_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Python's `\s*(#.*)?$` on the rest of a line (`$` may precede a final
/// newline, and `\r` counts as whitespace).
fn is_trailer(rest: &str) -> bool {
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with('#')
}

fn parse_line(line: &str) -> Line<'_> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Line::Ignored;
    }
    // Strict LAVA form first.
    if let Some((key, rest)) = split_key(line) {
        if let Some(value) = quoted_value(rest) {
            return Line::Assignment(key, value);
        }
        let why = if rest.starts_with(['"', '\'']) {
            "a value cannot contain `'`, and the closing quote must end the line"
        } else {
            "the value is not quoted"
        };
        return Line::IgnoredAssignment(key, why);
    }
    // Shell forms LAVA skips: indented or exported assignments.
    let shellish = trimmed.strip_prefix("export ").map(str::trim_start).unwrap_or(trimmed);
    if let Some((key, _)) = split_key(shellish) {
        return Line::IgnoredAssignment(
            key,
            if trimmed.starts_with("export ") {
                "`export` lines are not read"
            } else {
                "the line is indented"
            },
        );
    }
    Line::Garbage
}

/// `KEY=` at the very start of the line; returns the key and what follows `=`.
fn split_key(line: &str) -> Option<(&str, &str)> {
    let eq = line.find('=')?;
    let key = &line[..eq];
    let mut chars = key.chars();
    if !chars.next().is_some_and(is_key_start) || !chars.all(is_key_char) {
        return None;
    }
    Some((key, &line[eq + 1..]))
}

/// `['"]([^']*)['"]` followed by a trailer; the value match is greedy.
fn quoted_value(rest: &str) -> Option<&str> {
    let body = rest.strip_prefix(['"', '\''])?;
    // The value cannot run past the first single quote.
    let limit = body.find('\'').map_or(body.len(), |i| i);
    // Greedy: try the longest candidate first.
    let mut candidates: Vec<usize> =
        body.char_indices().filter(|&(i, c)| i <= limit && (c == '"' || c == '\'')).map(|(i, _)| i).collect();
    candidates.reverse();
    candidates.into_iter().find(|&i| is_trailer(&body[i + 1..])).map(|i| &body[..i])
}

/// How to reach LAVA's database.  `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DbConfig {
    /// `LAVA_DB_NAME`; empty means libpq's default (the user name).
    pub name: String,
    /// `LAVA_DB_USER`; empty means libpq's default (the OS user).
    pub user: String,
    /// `LAVA_DB_PASSWORD`; empty means none.
    pub password: String,
    /// Host name, IP address, or a Unix-socket directory (starts with `/`).
    pub server: String,
    /// `LAVA_DB_PORT`; empty means 5432.
    pub port: String,
}

impl fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConfig")
            .field("name", &self.name)
            .field("user", &self.user)
            .field("password", &if self.password.is_empty() { "" } else { "********" })
            .field("server", &self.server)
            .field("port", &self.port)
            .finish()
    }
}

impl DbConfig {
    /// The user name libpq would use.
    pub fn effective_user(&self) -> String {
        if !self.user.is_empty() {
            return self.user.clone();
        }
        nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| "root".into())
    }

    /// The database name libpq would use.
    pub fn effective_name(&self) -> String {
        if self.name.is_empty() {
            self.effective_user()
        } else {
            self.name.clone()
        }
    }

    /// The port libpq would use.
    pub fn effective_port(&self) -> Result<u16> {
        if self.port.is_empty() {
            return Ok(5432);
        }
        self.port.parse().map_err(|_| Error::BadPort { port: self.port.clone() })
    }

    /// `name@server:port as user`, for messages; no password.
    pub fn describe(&self) -> String {
        format!(
            "database `{}` on {}:{} as `{}`",
            self.effective_name(),
            self.server,
            if self.port.is_empty() { "5432" } else { &self.port },
            self.effective_user()
        )
    }
}

/// Reads `MEDIA_ROOT` from LAVA's JSON `settings.conf`.  A missing file or
/// key gives LAVA's own fallback.
pub fn media_root_from_settings(path: &Path) -> Result<PathBuf> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::info!("{} does not exist; MEDIA_ROOT is LAVA's fallback", path.display());
            return Ok(PathBuf::from(FALLBACK_MEDIA_ROOT));
        }
        Err(source) => {
            return Err(Error::ReadFile { path: path.to_owned(), what: "LAVA settings", source });
        }
    };
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::SettingsSyntax { path: path.to_owned(), reason: e.to_string() })?;
    match json.get("MEDIA_ROOT") {
        None => Ok(PathBuf::from(FALLBACK_MEDIA_ROOT)),
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(PathBuf::from(s)),
        Some(other) => Err(Error::SettingsSyntax {
            path: path.to_owned(),
            reason: format!("MEDIA_ROOT must be a non-empty string, found {other}"),
        }),
    }
}

/// Every path the tool reads or writes, each overridable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `instance.conf`.
    pub instance_conf: PathBuf,
    /// `settings.conf`.
    pub settings_conf: PathBuf,
    /// An explicit media root; `None` reads it from `settings_conf`.
    pub media_root: Option<PathBuf>,
    /// The state directory (decision, journal, lock).
    pub state_dir: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            instance_conf: DEFAULT_INSTANCE_CONF.into(),
            settings_conf: DEFAULT_SETTINGS_CONF.into(),
            media_root: None,
            state_dir: DEFAULT_STATE_DIR.into(),
        }
    }
}

impl Paths {
    /// The media root: the override, else `settings.conf`, else LAVA's fallback.
    pub fn media_root(&self) -> Result<PathBuf> {
        match &self.media_root {
            Some(p) => Ok(p.clone()),
            None => media_root_from_settings(&self.settings_conf),
        }
    }

    /// The database settings from `instance.conf`, logging its warnings.
    pub fn database(&self) -> Result<DbConfig> {
        let conf = InstanceConf::load(&self.instance_conf)?;
        for w in &conf.warnings {
            log::warn!("{w}");
        }
        Ok(conf.database())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<InstanceConf> {
        InstanceConf::parse(Path::new("/etc/lava-server/instance.conf"), text.as_bytes())
    }

    #[test]
    fn debian_2017_10_file() -> Result<()> {
        let conf = parse(
            "# config\nLAVA_CONFIG_VERSION=\"1.0\"\nLAVA_PREFIX=\"/var/lib/lava-server/\"\n\
             LAVA_INSTANCE=\"default\"\n# db\nLAVA_DB_NAME=\"lavaserver\"\nLAVA_DB_USER=\"lavaserver\"\n\
             LAVA_DB_SERVER=\"localhost\"\nLAVA_DB_PORT=\"5432\"\nLAVA_DB_PASSWORD=\"s3cr3tPW\"\n",
        )?;
        let db = conf.database();
        assert_eq!(db.name, "lavaserver");
        assert_eq!(db.user, "lavaserver");
        assert_eq!(db.server, "localhost");
        assert_eq!(db.effective_port()?, 5432);
        assert_eq!(db.password, "s3cr3tPW");
        assert!(!format!("{db:?}").contains("s3cr3tPW"));
        assert!(!format!("{conf:?}").contains("s3cr3tPW"));
        assert!(!db.describe().contains("s3cr3tPW"));
        Ok(())
    }

    #[test]
    fn template_single_quotes_and_missing_server() -> Result<()> {
        let conf = parse("LAVA_DB_NAME='$LAVA_DB_NAME'\nLAVA_PREFIX='/var/lib/lava-server/'\n")?;
        // No expansion: the placeholder is the literal value.
        assert_eq!(conf.get("LAVA_DB_NAME"), Some("$LAVA_DB_NAME"));
        let db = conf.database();
        assert_eq!(db.server, "127.0.0.1");
        assert_eq!(db.port, "");
        assert_eq!(db.effective_port()?, 5432);
        Ok(())
    }

    #[test]
    fn empty_server_means_tcp_loopback() -> Result<()> {
        assert_eq!(parse("LAVA_DB_SERVER=\"\"\n")?.database().server, "127.0.0.1");
        assert_eq!(parse("LAVA_DB_SERVER=\"/run/pg\"\n")?.database().server, "/run/pg");
        Ok(())
    }

    #[test]
    fn unpaired_quotes_are_accepted() -> Result<()> {
        assert_eq!(parse("K=\"abc'\n")?.get("K"), Some("abc"));
        assert_eq!(parse("K='abc\"\n")?.get("K"), Some("abc"));
        Ok(())
    }

    #[test]
    fn value_cannot_contain_single_quote() -> Result<()> {
        let conf = parse("LAVA_DB_PASSWORD=\"it's\"\n")?;
        assert_eq!(conf.get("LAVA_DB_PASSWORD"), None);
        assert_eq!(conf.warnings.len(), 1);
        assert!(conf.warnings[0].contains(":1:"));
        Ok(())
    }

    #[test]
    fn greedy_value_keeps_inner_double_quotes() -> Result<()> {
        assert_eq!(parse("K=\"a\"b\"\n")?.get("K"), Some("a\"b"));
        // A trailing comment; the greedy match still stops at the last
        // quote that leaves a valid trailer.
        assert_eq!(parse("K=\"abc\"  # note\n")?.get("K"), Some("abc"));
        assert_eq!(parse("K=\"abc\" # say \"hi\"\n")?.get("K"), Some("abc\" # say \"hi"));
        Ok(())
    }

    #[test]
    fn no_escapes_no_expansion() -> Result<()> {
        assert_eq!(parse("K=\"a\\nb $HOME\"\n")?.get("K"), Some("a\\nb $HOME"));
        Ok(())
    }

    #[test]
    fn ignored_forms_warn_only_for_db_keys() -> Result<()> {
        let conf =
            parse("LAVA_DB_NAME=lava\nexport LAVA_DB_USER=\"x\"\n  LAVA_DB_PORT=\"1\"\nOTHER=plain\n")?;
        assert_eq!(conf.get("LAVA_DB_NAME"), None);
        assert_eq!(conf.get("LAVA_DB_USER"), None);
        assert_eq!(conf.get("LAVA_DB_PORT"), None);
        assert_eq!(conf.get("OTHER"), None);
        assert_eq!(conf.warnings.len(), 3, "{:?}", conf.warnings);
        assert!(conf.warnings[0].contains(":1:") && conf.warnings[0].contains("not quoted"));
        assert!(conf.warnings[1].contains(":2:") && conf.warnings[1].contains("export"));
        assert!(conf.warnings[2].contains(":3:") && conf.warnings[2].contains("indented"));
        Ok(())
    }

    #[test]
    fn last_occurrence_wins_and_crlf() -> Result<()> {
        let conf = parse("LAVA_DB_NAME=\"a\"\r\nLAVA_DB_NAME=\"b\"\r\n")?;
        assert_eq!(conf.get("LAVA_DB_NAME"), Some("b"));
        Ok(())
    }

    #[test]
    fn key_syntax() -> Result<()> {
        assert_eq!(parse("_k1=\"v\"\n")?.get("_k1"), Some("v"));
        // A key starting with a digit is no assignment at all.
        let err = parse("# ok\n1K=\"v\"\n").unwrap_err();
        assert!(err.to_string().contains("instance.conf:2"), "{err}");
        Ok(())
    }

    #[test]
    fn garbage_names_the_line() {
        let err = parse("LAVA_DB_NAME=\"a\"\n}{ not a config\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/etc/lava-server/instance.conf:2"), "{text}");
        assert!(text.contains("}{ not a config"), "{text}");
    }

    #[test]
    fn garbage_never_shows_password() {
        let err = parse("LAVA_DB_PASSWORD : hunter2\n").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains(":1"), "{err}");
    }

    #[test]
    fn non_utf8_and_nul_are_errors() {
        let e = InstanceConf::parse(Path::new("c"), b"K=\"v\"\nK=\"\xff\"\n").unwrap_err();
        assert!(e.to_string().contains("c:2"), "{e}");
        let e = InstanceConf::parse(Path::new("c"), b"K=\"v\0\"\n").unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
    }

    #[test]
    fn bad_port_is_an_error() {
        let db = parse("LAVA_DB_PORT=\"fivefour\"\n").unwrap().database();
        assert!(db.effective_port().unwrap_err().to_string().contains("fivefour"));
    }

    #[test]
    fn settings_media_root() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("settings.conf");
        assert_eq!(media_root_from_settings(&p)?, PathBuf::from(FALLBACK_MEDIA_ROOT));
        std::fs::write(&p, r#"{"MEDIA_ROOT": "/srv/media", "ARCHIVE_ROOT": "/x"}"#).unwrap();
        assert_eq!(media_root_from_settings(&p)?, PathBuf::from("/srv/media"));
        std::fs::write(&p, r#"{"DEBUG": false}"#).unwrap();
        assert_eq!(media_root_from_settings(&p)?, PathBuf::from(FALLBACK_MEDIA_ROOT));
        std::fs::write(&p, "{not json").unwrap();
        assert!(media_root_from_settings(&p).unwrap_err().to_string().contains("settings.conf"));
        Ok(())
    }
}
