//! Read-only questions to dpkg, and `apt-mark`.
//!
//! * [`DpkgQuery::status`] runs
//!   `dpkg-query [--admindir=DIR] -W -f='${db:Status-Abbrev}\t${Version}\t${Status}\n' -- PKG`
//!   and returns a typed [`PackageStatus`]. Reading works inside maintainer
//!   scripts (dpkg-maintscript-helper does the same).
//! * [`DpkgQuery::compare_versions`] runs `dpkg --compare-versions`.
//! * [`DpkgQuery::list`] and [`DpkgQuery::audit`] give, for people (a bug
//!   report), what `dpkg-query -W` and `dpkg -C` print ([`transcript`]).
//! * [`AptMark::run`] runs `apt-mark hold|unhold|showhold -- PKG`. `hold` and
//!   `unhold` **cannot** work while dpkg runs (its locks are held): check
//!   [`crate::env::in_maintainer_script`] first and tell the admin what to run
//!   instead.
//!
//! Every program runs with `LC_ALL=C` (its messages are parsed), stdin from
//! `/dev/null`, and stdout/stderr captured: nothing reaches this process's
//! stdout, which may be the debconf command pipe.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::args::validate_package_name;
use crate::error::{quote_command, Error, Result};
use crate::version::Version;

/// The `-f` format [`DpkgQuery::status`] uses (dpkg-query expands the
/// `\t` and `\n` escapes itself).
pub const STATUS_FORMAT: &str = "${db:Status-Abbrev}\\t${Version}\\t${Status}\\n";

/// The `-f` format [`DpkgQuery::list`] uses: status abbreviation,
/// package name and version, one package a line.
pub const LIST_FORMAT: &str = "${db:Status-Abbrev} ${Package} ${Version}\n";

/// The selection state (first word of `Status:`, first letter of
/// `db:Status-Abbrev`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Want {
    /// `unknown` (`u`).
    Unknown,
    /// `install` (`i`).
    Install,
    /// `hold` (`h`): set by `apt-mark hold`.
    Hold,
    /// `deinstall` (`r`).
    Deinstall,
    /// `purge` (`p`).
    Purge,
}

/// The error flag (second word of `Status:`, third letter of the abbrev).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Eflag {
    /// `ok` (blank).
    Ok,
    /// `reinstreq` (`R`): a failed unpack left the package needing reinstall.
    ReinstReq,
}

/// The package state (third word of `Status:`, second letter of the abbrev).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `not-installed` (`n`).
    NotInstalled,
    /// `config-files` (`c`): removed, configuration (and data) remain.
    ConfigFiles,
    /// `half-installed` (`H`).
    HalfInstalled,
    /// `unpacked` (`U`).
    Unpacked,
    /// `half-configured` (`F`): e.g. the postinst `configure` failed.
    HalfConfigured,
    /// `triggers-awaited` (`W`).
    TriggersAwaited,
    /// `triggers-pending` (`t`).
    TriggersPending,
    /// `installed` (`i`).
    Installed,
}

macro_rules! word_enum {
    ($ty:ty { $($variant:ident = $word:literal, $abbrev:literal;)* }) => {
        impl $ty {
            /// The word dpkg uses in `Status:`.
            pub fn as_word(self) -> &'static str {
                match self { $(Self::$variant => $word,)* }
            }
            /// The letter dpkg uses in `db:Status-Abbrev`.
            pub fn abbrev(self) -> char {
                match self { $(Self::$variant => $abbrev,)* }
            }
            /// Parses the word dpkg uses in `Status:`.
            pub fn from_word(word: &str) -> Option<Self> {
                match word { $($word => Some(Self::$variant),)* _ => None }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_word())
            }
        }
    };
}

word_enum!(Want {
    Unknown = "unknown", 'u';
    Install = "install", 'i';
    Hold = "hold", 'h';
    Deinstall = "deinstall", 'r';
    Purge = "purge", 'p';
});

word_enum!(Eflag {
    Ok = "ok", ' ';
    ReinstReq = "reinstreq", 'R';
});

word_enum!(Status {
    NotInstalled = "not-installed", 'n';
    ConfigFiles = "config-files", 'c';
    HalfInstalled = "half-installed", 'H';
    Unpacked = "unpacked", 'U';
    HalfConfigured = "half-configured", 'F';
    TriggersAwaited = "triggers-awaited", 'W';
    TriggersPending = "triggers-pending", 't';
    Installed = "installed", 'i';
});

/// A package's state in the dpkg database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageStatus {
    /// The package name that was asked about.
    pub package: String,
    /// Selection state.
    pub want: Want,
    /// Error flag.
    pub eflag: Eflag,
    /// Package state.
    pub status: Status,
    /// `Version:` of the installed (or half-installed, config-files, …)
    /// package; `None` when dpkg knows no version.
    pub version: Option<Version>,
}

impl PackageStatus {
    /// The state of a package dpkg has never heard of.
    pub fn not_installed(package: &str) -> PackageStatus {
        PackageStatus {
            package: package.to_owned(),
            want: Want::Unknown,
            eflag: Eflag::Ok,
            status: Status::NotInstalled,
            version: None,
        }
    }

    /// Parses one line of [`STATUS_FORMAT`] output (without the newline).
    pub fn parse_line(package: &str, line: &str) -> std::result::Result<PackageStatus, String> {
        let fields: Vec<&str> = line.split('\t').collect();
        let [abbrev, version, status] = fields[..] else {
            return Err(format!("expected 3 tab-separated fields, got {line:?}"));
        };
        let words: Vec<&str> = status.split_whitespace().collect();
        let [want, eflag, state] = words[..] else {
            return Err(format!("bad Status field {status:?}"));
        };
        let want = Want::from_word(want).ok_or_else(|| format!("unknown want {want:?}"))?;
        let eflag = Eflag::from_word(eflag).ok_or_else(|| format!("unknown eflag {eflag:?}"))?;
        let state = Status::from_word(state).ok_or_else(|| format!("unknown status {state:?}"))?;
        let expected: String = [want.abbrev(), state.abbrev(), eflag.abbrev()].iter().collect();
        if abbrev != expected {
            return Err(format!("db:Status-Abbrev {abbrev:?} does not match Status {status:?}"));
        }
        let version =
            if version.is_empty() { None } else { Some(Version::parse(version).map_err(|e| e.to_string())?) };
        Ok(PackageStatus { package: package.to_owned(), want, eflag, status: state, version })
    }

    /// `db:Status-Abbrev` as dpkg prints it, e.g. `ii `, `iF `, `iHR`.
    pub fn abbrev(&self) -> String {
        [self.want.abbrev(), self.status.abbrev(), self.eflag.abbrev()].iter().collect()
    }

    /// Fully installed (`installed`; the want may be `install` or `hold`).
    pub fn is_installed(&self) -> bool {
        self.status == Status::Installed
    }

    /// Files of the package are (or may be) on disk: anything but
    /// `not-installed` and `config-files`.
    pub fn is_unpacked(&self) -> bool {
        !matches!(self.status, Status::NotInstalled | Status::ConfigFiles)
    }

    /// Held (`apt-mark hold`).
    pub fn is_held(&self) -> bool {
        self.want == Want::Hold
    }

    /// Needs dpkg's attention: half-installed, half-configured, unpacked but
    /// not configured, or reinstreq.
    pub fn is_broken(&self) -> bool {
        self.eflag == Eflag::ReinstReq
            || matches!(self.status, Status::HalfInstalled | Status::HalfConfigured | Status::Unpacked)
    }
}

impl fmt::Display for PackageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {}", self.package, self.want, self.eflag, self.status)?;
        if let Some(v) = &self.version {
            write!(f, " {v}")?;
        }
        Ok(())
    }
}

/// Runs `program args…` with `LC_ALL=C`, stdin from /dev/null, output
/// captured. Returns the command line (for messages) and the output.
fn run(program: &Path, args: &[OsString]) -> Result<(String, Output)> {
    let command = quote_command(&program.to_string_lossy(), args);
    log::debug!("running {command}");
    let output = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| Error::Spawn { command: command.clone(), source })?;
    log::debug!("{command}: {}", describe_status(&output.status));
    Ok((command, output))
}

fn describe_status(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => "unknown exit status".to_owned(),
    }
}

fn failed(command: String, output: &Output) -> Error {
    Error::CommandFailed {
        command,
        status: describe_status(&output.status),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `dpkg-query` and `dpkg` read-only, optionally on another database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgQuery {
    dpkg_query: PathBuf,
    dpkg: PathBuf,
    admindir: Option<PathBuf>,
}

impl Default for DpkgQuery {
    fn default() -> Self {
        DpkgQuery::new()
    }
}

impl DpkgQuery {
    /// `dpkg-query` and `dpkg` from `PATH`, on dpkg's default database.
    pub fn new() -> DpkgQuery {
        DpkgQuery { dpkg_query: PathBuf::from("dpkg-query"), dpkg: PathBuf::from("dpkg"), admindir: None }
    }

    /// Uses the database in `dir` (`--admindir=DIR`).
    pub fn with_admindir(mut self, dir: impl Into<PathBuf>) -> DpkgQuery {
        self.admindir = Some(dir.into());
        self
    }

    /// Runs this program instead of `dpkg-query` (tests).
    pub fn with_dpkg_query_program(mut self, program: impl Into<PathBuf>) -> DpkgQuery {
        self.dpkg_query = program.into();
        self
    }

    /// Runs this program instead of `dpkg` (tests).
    pub fn with_dpkg_program(mut self, program: impl Into<PathBuf>) -> DpkgQuery {
        self.dpkg = program.into();
        self
    }

    /// The admin directory given with [`with_admindir`](Self::with_admindir).
    pub fn admindir(&self) -> Option<&Path> {
        self.admindir.as_deref()
    }

    fn admindir_args(&self) -> Vec<OsString> {
        match &self.admindir {
            Some(dir) => {
                let mut arg = OsString::from("--admindir=");
                arg.push(dir);
                vec![arg]
            }
            None => Vec::new(),
        }
    }

    /// The state of `package` (a package name, optionally `:arch`).
    ///
    /// A package dpkg does not know is [`PackageStatus::not_installed`].
    /// More than one line of output (several architectures of a
    /// `Multi-Arch: same` package) is an error: ask for `name:arch`.
    pub fn status(&self, package: &str) -> Result<PackageStatus> {
        validate_package_name(package)?;
        if let Some(dir) = &self.admindir {
            // dpkg-query treats a missing database as an empty one, which
            // would make every package look not-installed.
            if !dir.join("status").is_file() {
                return Err(Error::NoDpkgDatabase { path: dir.clone() });
            }
        }
        let mut args = self.admindir_args();
        args.extend(["-W", &format!("-f={STATUS_FORMAT}"), "--", package].map(OsString::from));
        let (command, output) = run(&self.dpkg_query, &args)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            if output.status.code() == Some(1)
                && stdout.trim().is_empty()
                && stderr.contains("no packages found matching")
            {
                log::debug!("{package}: not known to dpkg");
                return Ok(PackageStatus::not_installed(package));
            }
            return Err(failed(command, &output));
        }
        let lines: Vec<&str> = stdout.lines().collect();
        let line = match lines[..] {
            [line] => line,
            [] => return Err(Error::UnexpectedOutput { command, detail: "no output".to_owned() }),
            _ => {
                return Err(Error::UnexpectedOutput {
                    command,
                    detail: format!(
                        "{} lines (several architectures installed? ask for {package}:ARCH)",
                        lines.len()
                    ),
                })
            }
        };
        let status = PackageStatus::parse_line(package, line)
            .map_err(|detail| Error::UnexpectedOutput { command, detail })?;
        log::debug!("dpkg status: {status}");
        Ok(status)
    }

    /// What `dpkg-query -W -f=LIST_FORMAT PATTERN…` prints: the state and
    /// version of every package matching a pattern (shell wildcards, as
    /// dpkg-query takes them), as a [`transcript`].
    pub fn list(&self, patterns: &[&str]) -> String {
        let mut args: Vec<String> =
            self.admindir_args().iter().map(|a| a.to_string_lossy().into_owned()).collect();
        args.extend(["-W".to_owned(), format!("-f={LIST_FORMAT}")]);
        args.extend(patterns.iter().map(|p| (*p).to_owned()));
        transcript(&self.dpkg_query, &args)
    }

    /// What `dpkg -C` (`--audit`: packages half installed, half
    /// configured, …) prints, as a [`transcript`].
    pub fn audit(&self) -> String {
        let mut args: Vec<String> =
            self.admindir_args().iter().map(|a| a.to_string_lossy().into_owned()).collect();
        args.push("-C".to_owned());
        transcript(&self.dpkg, &args)
    }

    /// `dpkg --compare-versions A OP B`, where `OP` is one of `lt le eq ne
    /// ge gt` (or the `-nl` forms). Exit 0 is true, 1 is false, anything
    /// else (bad operator, …) an error. Versions are checked first, so
    /// dpkg's "bad syntax" warnings cannot slip through.
    pub fn compare_versions(&self, a: &Version, op: &str, b: &Version) -> Result<bool> {
        let args: Vec<OsString> =
            ["--compare-versions", a.as_str(), op, b.as_str()].map(OsString::from).to_vec();
        let (command, output) = run(&self.dpkg, &args)?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) if output.stderr.is_empty() => Ok(false),
            _ => Err(failed(command, &output)),
        }
    }
}

/// What `program args…` printed, for people (a bug report): its stdout,
/// then its stderr, then, if it failed, a line naming it and how it ended
/// (`(program args: exit status: 1)`); a program that cannot be started
/// gives one line saying so.  Runs with `LC_ALL=C`, stdin from /dev/null.
pub fn transcript(program: &Path, args: &[String]) -> String {
    let output = Command::new(program).args(args).env("LC_ALL", "C").stdin(Stdio::null()).output();
    match output {
        Ok(out) => {
            let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
            let err = String::from_utf8_lossy(&out.stderr);
            if !err.trim().is_empty() {
                s.push_str(&err);
            }
            if !out.status.success() {
                s.push_str(&format!("({} {}: {})\n", program.display(), args.join(" "), out.status));
            }
            s
        }
        Err(e) => format!("(cannot run {}: {e})\n", program.display()),
    }
}

/// `dpkg-query` status of `package` on the default database.
pub fn status(package: &str) -> Result<PackageStatus> {
    DpkgQuery::new().status(package)
}

/// An `apt-mark` sub-command this crate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AptMarkOp {
    /// `apt-mark hold`: changes the dpkg selection (needs the dpkg lock).
    Hold,
    /// `apt-mark unhold`: changes the dpkg selection (needs the dpkg lock).
    Unhold,
    /// `apt-mark showhold`: read-only.
    Showhold,
}

impl AptMarkOp {
    /// The sub-command word.
    pub fn as_str(self) -> &'static str {
        match self {
            AptMarkOp::Hold => "hold",
            AptMarkOp::Unhold => "unhold",
            AptMarkOp::Showhold => "showhold",
        }
    }
}

impl fmt::Display for AptMarkOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `apt-mark` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AptMarkOutcome {
    /// `hold`: "PKG set on hold."
    Held,
    /// `hold`: "PKG was already set on hold."
    AlreadyHeld,
    /// `unhold`: "Canceled hold on PKG."
    Unheld,
    /// `unhold`: "PKG was already not on hold."
    AlreadyNotHeld,
    /// `showhold PKG`: whether PKG is listed as held.
    ShowHold {
        /// PKG is on hold.
        held: bool,
    },
    /// Exit 0 but a message this crate does not know (e.g. another apt
    /// version's wording).
    Other {
        /// What apt-mark printed on stdout.
        stdout: String,
    },
    /// apt-mark failed (e.g. exit 100 with `E: Unable to locate package`, or
    /// the dpkg lock is held because we run inside a maintainer script).
    Failed {
        /// The command line that was run.
        command: String,
        /// How it ended, e.g. `exit status 100`.
        status: String,
        /// What it wrote to stderr.
        stderr: String,
    },
}

impl AptMarkOutcome {
    /// apt-mark succeeded.
    pub fn is_success(&self) -> bool {
        !matches!(self, AptMarkOutcome::Failed { .. })
    }

    /// Turns [`AptMarkOutcome::Failed`] into [`Error::CommandFailed`].
    pub fn into_result(self) -> Result<AptMarkOutcome> {
        match self {
            AptMarkOutcome::Failed { command, status, stderr } => {
                Err(Error::CommandFailed { command, status, stderr })
            }
            ok => Ok(ok),
        }
    }
}

/// Runs `apt-mark`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptMark {
    program: PathBuf,
}

impl Default for AptMark {
    fn default() -> Self {
        AptMark::new()
    }
}

impl AptMark {
    /// `apt-mark` from `PATH`.
    pub fn new() -> AptMark {
        AptMark { program: PathBuf::from("apt-mark") }
    }

    /// Runs this program instead of `apt-mark` (tests).
    pub fn with_program(program: impl Into<PathBuf>) -> AptMark {
        AptMark { program: program.into() }
    }

    /// Runs `apt-mark OP -- PACKAGE`. `Err` only if `apt-mark` cannot be
    /// started or the package name is invalid; a non-zero exit is
    /// [`AptMarkOutcome::Failed`] with its stderr.
    pub fn run(&self, op: AptMarkOp, package: &str) -> Result<AptMarkOutcome> {
        validate_package_name(package)?;
        let args: Vec<OsString> = [op.as_str(), "--", package].map(OsString::from).to_vec();
        let (command, output) = run(&self.program, &args)?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            log::warn!("`{command}` failed: {}", stderr.trim_end());
            return Ok(AptMarkOutcome::Failed { command, status: describe_status(&output.status), stderr });
        }
        let has_line = |want: String| stdout.lines().any(|l| l.trim_end() == want);
        let outcome = match op {
            AptMarkOp::Hold if has_line(format!("{package} set on hold.")) => AptMarkOutcome::Held,
            AptMarkOp::Hold if has_line(format!("{package} was already set on hold.")) => {
                AptMarkOutcome::AlreadyHeld
            }
            AptMarkOp::Unhold if has_line(format!("Canceled hold on {package}.")) => AptMarkOutcome::Unheld,
            AptMarkOp::Unhold if has_line(format!("{package} was already not on hold.")) => {
                AptMarkOutcome::AlreadyNotHeld
            }
            AptMarkOp::Showhold => AptMarkOutcome::ShowHold { held: has_line(package.to_owned()) },
            _ => AptMarkOutcome::Other { stdout },
        };
        log::info!("apt-mark {op} {package}: {outcome:?}");
        Ok(outcome)
    }
}

/// Runs `apt-mark OP -- PACKAGE` with `apt-mark` from `PATH`.
///
/// Do not call `hold`/`unhold` from inside a maintainer script: dpkg holds
/// its lock and apt-mark fails (see [`crate::env::in_maintainer_script`]).
pub fn apt_mark(op: AptMarkOp, package: &str) -> Result<AptMarkOutcome> {
    AptMark::new().run(op, package)
}

#[cfg(test)]
mod tests;
