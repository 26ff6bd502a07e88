//! The arguments dpkg (and debconf) pass to maintainer scripts.
//!
//! [`parse`] turns `argv[1..]` of a maintainer script into a typed
//! [`Action`]; anything that is not one of the call forms below is an
//! [`Error::UnknownCallForm`], whose message names the script and the exact
//! arguments. A maintainer script should print it and exit 1 (Policy 6.4:
//! non-zero is failure; dpkg then stops or unwinds).
//!
//! # Call forms (Debian Policy ch. 6.5, dpkg's `deb-preinst(5)` … `deb-postrm(5)`)
//!
//! `new-` is the script of the version being installed, `old-` the one of the
//! version being replaced. Versions in brackets are optional: dpkg passes the
//! second version of `preinst install`/`upgrade`, `prerm failed-upgrade`,
//! `postrm failed-upgrade`/`abort-install`/`abort-upgrade` only since
//! dpkg 1.18.5, and `dpkg-reconfigure` calls `preinst upgrade VERSION` with a
//! single version.
//!
//! ```text
//! preinst  install                                   new-preinst, fresh install
//! preinst  install OLD [NEW]                         new-preinst, reinstall of a removed (config-files) package
//! preinst  upgrade OLD [NEW]                         new-preinst, upgrade (also dpkg-reconfigure: upgrade CURRENT)
//! preinst  abort-upgrade NEW                         old-preinst, old-postrm `upgrade` failed
//!
//! postinst configure MOST-RECENTLY-CONFIGURED        "" (present but empty) on a fresh install
//! postinst abort-upgrade NEW                         old-postinst, prerm/preinst of the upgrade failed
//! postinst abort-remove                              prerm remove failed
//! postinst abort-remove in-favour PKG NEW            conflictor's prerm `remove in-favour` failed
//! postinst abort-deconfigure in-favour PKG VER [removing PKG VER]
//!                                                    deconfigured package's prerm failed
//! postinst triggered "TRIGGER TRIGGER..."            one argument, space-separated names
//!
//! prerm    remove
//! prerm    upgrade NEW                               old-prerm (also dpkg-reconfigure: upgrade CURRENT)
//! prerm    failed-upgrade OLD [NEW]                  new-prerm, after old-prerm `upgrade` failed
//! prerm    deconfigure in-favour PKG VER [removing PKG VER]
//! prerm    remove in-favour PKG NEW                  conflictor's prerm
//!
//! postrm   remove
//! postrm   purge
//! postrm   upgrade NEW                               old-postrm
//! postrm   disappear OVERWRITER OVERWRITER-VERSION   all files replaced by another package
//! postrm   failed-upgrade OLD [NEW]                  new-postrm, after old-postrm `upgrade` failed
//! postrm   abort-install                             new-postrm, preinst `install` failed
//! postrm   abort-install OLD [NEW]                   new-postrm, preinst `install OLD NEW` failed
//! postrm   abort-upgrade OLD [NEW]                   new-postrm, preinst `upgrade` failed
//!
//! config   configure INSTALLED-VERSION               "" when not installed (dpkg-preconfigure, or
//!                                                    run by the frontend for preinst/postinst)
//! config   reconfigure INSTALLED-VERSION             dpkg-reconfigure
//! ```
//!
//! Strictness: the number of arguments must match a form exactly, every
//! version must pass `dpkg --validate-version`, package names must look like
//! Debian package names (optionally `:arch`-qualified) and every argument
//! must be UTF-8. The only empty argument accepted is the version of
//! `postinst configure` / `config configure` (a fresh install).

use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::version::Version;

/// The five maintainer scripts (Policy ch. 6 and the debconf `config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Script {
    /// `preinst`: before unpack.
    Preinst,
    /// `postinst`: configuration.
    Postinst,
    /// `prerm`: before removal or upgrade.
    Prerm,
    /// `postrm`: after removal, and in error unwinding.
    Postrm,
    /// debconf `config`: asks questions, may run before the preinst.
    Config,
}

impl Script {
    /// All scripts, in the order above.
    pub const ALL: [Script; 5] =
        [Script::Preinst, Script::Postinst, Script::Prerm, Script::Postrm, Script::Config];

    /// The script's name as dpkg uses it (`DPKG_MAINTSCRIPT_NAME`).
    pub fn as_str(self) -> &'static str {
        match self {
            Script::Preinst => "preinst",
            Script::Postinst => "postinst",
            Script::Prerm => "prerm",
            Script::Postrm => "postrm",
            Script::Config => "config",
        }
    }

    /// Guesses the script from the path it was run as:
    /// `/var/lib/dpkg/info/PKG.postinst`, `/var/lib/dpkg/tmp.ci/preinst`,
    /// `/var/cache/debconf/tmp.ci/PKG.config.XXXXXX`, or a bare `postinst`.
    pub fn from_program_path(path: &Path) -> Option<Script> {
        let name = path.file_name()?.to_str()?;
        if let Ok(script) = name.parse() {
            return Some(script);
        }
        let parts: Vec<&str> = name.split('.').collect();
        match parts[..] {
            // PKG.SCRIPT (PKG may itself contain dots).
            [_, .., last] if last.parse::<Script>().is_ok() => last.parse().ok(),
            // PKG.config.XXXXXX, as made by dpkg-preconfigure.
            [_, .., "config", _] => Some(Script::Config),
            _ => None,
        }
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Script {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Script::ALL
            .into_iter()
            .find(|script| script.as_str() == s)
            .ok_or_else(|| format!("not a maintainer script name: {s:?}"))
    }
}

/// A package and a version, as in `in-favour PKG VER` or `removing PKG VER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageVersion {
    /// The package name as dpkg passed it (possibly `name:arch`).
    pub package: String,
    /// Its version.
    pub version: Version,
}

/// `preinst` call forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreinstAction {
    /// `install` (fresh install, `old` = `None`) or `install OLD [NEW]`
    /// (the package was removed but its configuration files, and possibly
    /// its data, are still there).
    Install {
        /// The version whose config files remain.
        old: Option<Version>,
        /// The version being installed (dpkg >= 1.18.5, only with `old`).
        new: Option<Version>,
    },
    /// `upgrade OLD [NEW]`.
    Upgrade {
        /// The installed version.
        old: Version,
        /// The version being installed (dpkg >= 1.18.5).
        new: Option<Version>,
    },
    /// `abort-upgrade NEW` (old-preinst, error unwinding).
    AbortUpgrade {
        /// The version whose upgrade failed.
        new: Version,
    },
}

/// `postinst` call forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostinstAction {
    /// `configure MOST-RECENTLY-CONFIGURED`; the empty string (fresh
    /// install) is `None`. On a retry after a failed configure this is still
    /// the last *successfully* configured version.
    Configure {
        /// The most recently configured version, `None` on a fresh install.
        most_recently_configured: Option<Version>,
    },
    /// `abort-upgrade NEW` (old-postinst, error unwinding).
    AbortUpgrade {
        /// The version whose upgrade failed.
        new: Version,
    },
    /// `abort-remove` (prerm remove failed).
    AbortRemove,
    /// `abort-remove in-favour PKG NEW`.
    AbortRemoveInFavour {
        /// The package that was to replace this one, and its version.
        in_favour: PackageVersion,
    },
    /// `abort-deconfigure in-favour PKG VER [removing PKG VER]`.
    AbortDeconfigure {
        /// The package whose installation failed.
        in_favour: PackageVersion,
        /// The conflicting package that was to be removed, if any.
        removing: Option<PackageVersion>,
    },
    /// `triggered "TRIGGER..."`.
    Triggered {
        /// The trigger names (dpkg passes them space-separated in one
        /// argument).
        triggers: Vec<String>,
    },
}

/// `prerm` call forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrermAction {
    /// `remove`.
    Remove,
    /// `upgrade NEW` (old-prerm).
    Upgrade {
        /// The version being installed.
        new: Version,
    },
    /// `failed-upgrade OLD [NEW]` (new-prerm after old-prerm failed).
    FailedUpgrade {
        /// The installed version whose prerm failed.
        old: Version,
        /// The version being installed (dpkg >= 1.18.5).
        new: Option<Version>,
    },
    /// `deconfigure in-favour PKG VER [removing PKG VER]`.
    Deconfigure {
        /// The package being installed.
        in_favour: PackageVersion,
        /// The conflicting package being removed, if any.
        removing: Option<PackageVersion>,
    },
    /// `remove in-favour PKG NEW` (replaced due to a conflict).
    RemoveInFavour {
        /// The replacing package and its version.
        in_favour: PackageVersion,
    },
}

/// `postrm` call forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostrmAction {
    /// `remove`.
    Remove,
    /// `purge`.
    Purge,
    /// `upgrade NEW` (old-postrm).
    Upgrade {
        /// The version being installed.
        new: Version,
    },
    /// `disappear OVERWRITER OVERWRITER-VERSION`.
    Disappear {
        /// The package that replaced all of this package's files.
        overwriter: PackageVersion,
    },
    /// `failed-upgrade OLD [NEW]` (new-postrm after old-postrm failed).
    FailedUpgrade {
        /// The installed version whose postrm failed.
        old: Version,
        /// The version being installed (dpkg >= 1.18.5).
        new: Option<Version>,
    },
    /// `abort-install` or `abort-install OLD [NEW]` (new-postrm after the
    /// new preinst `install` failed).
    AbortInstall {
        /// The config-files version, if there was one.
        old: Option<Version>,
        /// The version that failed to install (dpkg >= 1.18.5).
        new: Option<Version>,
    },
    /// `abort-upgrade OLD [NEW]` (new-postrm after the new preinst
    /// `upgrade` failed).
    AbortUpgrade {
        /// The version that stays installed.
        old: Version,
        /// The version that failed to install (dpkg >= 1.18.5).
        new: Option<Version>,
    },
}

/// debconf `config` call forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigAction {
    /// `configure INSTALLED-VERSION`; empty (not installed) is `None`.
    Configure {
        /// The installed (or, from the postinst, most recently configured)
        /// version.
        most_recently_configured: Option<Version>,
    },
    /// `reconfigure VERSION` (dpkg-reconfigure).
    Reconfigure {
        /// The installed version.
        version: Version,
    },
}

/// A parsed call of any maintainer script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A `preinst` call.
    Preinst(PreinstAction),
    /// A `postinst` call.
    Postinst(PostinstAction),
    /// A `prerm` call.
    Prerm(PrermAction),
    /// A `postrm` call.
    Postrm(PostrmAction),
    /// A `config` call.
    Config(ConfigAction),
}

impl Action {
    /// The script this action belongs to.
    pub fn script(&self) -> Script {
        match self {
            Action::Preinst(_) => Script::Preinst,
            Action::Postinst(_) => Script::Postinst,
            Action::Prerm(_) => Script::Prerm,
            Action::Postrm(_) => Script::Postrm,
            Action::Config(_) => Script::Config,
        }
    }

    /// The action word (`argv[1]`), e.g. `abort-upgrade`.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Preinst(a) => match a {
                PreinstAction::Install { .. } => "install",
                PreinstAction::Upgrade { .. } => "upgrade",
                PreinstAction::AbortUpgrade { .. } => "abort-upgrade",
            },
            Action::Postinst(a) => match a {
                PostinstAction::Configure { .. } => "configure",
                PostinstAction::AbortUpgrade { .. } => "abort-upgrade",
                PostinstAction::AbortRemove | PostinstAction::AbortRemoveInFavour { .. } => "abort-remove",
                PostinstAction::AbortDeconfigure { .. } => "abort-deconfigure",
                PostinstAction::Triggered { .. } => "triggered",
            },
            Action::Prerm(a) => match a {
                PrermAction::Remove | PrermAction::RemoveInFavour { .. } => "remove",
                PrermAction::Upgrade { .. } => "upgrade",
                PrermAction::FailedUpgrade { .. } => "failed-upgrade",
                PrermAction::Deconfigure { .. } => "deconfigure",
            },
            Action::Postrm(a) => match a {
                PostrmAction::Remove => "remove",
                PostrmAction::Purge => "purge",
                PostrmAction::Upgrade { .. } => "upgrade",
                PostrmAction::Disappear { .. } => "disappear",
                PostrmAction::FailedUpgrade { .. } => "failed-upgrade",
                PostrmAction::AbortInstall { .. } => "abort-install",
                PostrmAction::AbortUpgrade { .. } => "abort-upgrade",
            },
            Action::Config(a) => match a {
                ConfigAction::Configure { .. } => "configure",
                ConfigAction::Reconfigure { .. } => "reconfigure",
            },
        }
    }

    /// The version the package is moving *from*, for the forms that carry
    /// one: preinst `install OLD`/`upgrade OLD`, postinst/config
    /// `configure OLD`, config `reconfigure VER`. `None` for every other form
    /// (including fresh installs and all error-unwinding forms).
    ///
    /// Note that preinst `install OLD` is a reinstall of a *removed* package:
    /// its data (databases, `/var/lib`) may well still be there.
    pub fn previous_version(&self) -> Option<&Version> {
        match self {
            Action::Preinst(PreinstAction::Install { old, .. }) => old.as_ref(),
            Action::Preinst(PreinstAction::Upgrade { old, .. }) => Some(old),
            Action::Postinst(PostinstAction::Configure { most_recently_configured })
            | Action::Config(ConfigAction::Configure { most_recently_configured }) => {
                most_recently_configured.as_ref()
            }
            Action::Config(ConfigAction::Reconfigure { version }) => Some(version),
            _ => None,
        }
    }

    /// Whether this is an error-unwinding call (`abort-*`, `failed-upgrade`).
    /// Such calls must succeed quietly whenever possible so that dpkg can
    /// back out cleanly.
    pub fn is_error_unwind(&self) -> bool {
        let verb = self.verb();
        verb.starts_with("abort-") || verb == "failed-upgrade"
    }
}

impl fmt::Display for Action {
    /// The call form as a command line, e.g. `preinst upgrade 2017.10-1 2017.12-1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.script(), self.verb())?;
        let mut words: Vec<String> = Vec::new();
        match self {
            Action::Preinst(PreinstAction::Install { old, new })
            | Action::Postrm(PostrmAction::AbortInstall { old, new }) => {
                words.extend(old.iter().chain(new.iter()).map(Version::to_string));
            }
            Action::Preinst(PreinstAction::Upgrade { old, new })
            | Action::Prerm(PrermAction::FailedUpgrade { old, new })
            | Action::Postrm(PostrmAction::FailedUpgrade { old, new })
            | Action::Postrm(PostrmAction::AbortUpgrade { old, new }) => {
                words.extend(std::iter::once(old).chain(new.iter()).map(Version::to_string));
            }
            Action::Preinst(PreinstAction::AbortUpgrade { new })
            | Action::Postinst(PostinstAction::AbortUpgrade { new })
            | Action::Prerm(PrermAction::Upgrade { new })
            | Action::Postrm(PostrmAction::Upgrade { new }) => words.push(new.to_string()),
            Action::Postinst(PostinstAction::Configure { most_recently_configured })
            | Action::Config(ConfigAction::Configure { most_recently_configured }) => {
                let shown =
                    most_recently_configured.as_ref().map_or_else(|| "\"\"".to_owned(), Version::to_string);
                words.push(shown);
            }
            Action::Config(ConfigAction::Reconfigure { version }) => words.push(version.to_string()),
            Action::Postinst(PostinstAction::AbortRemoveInFavour { in_favour })
            | Action::Prerm(PrermAction::RemoveInFavour { in_favour }) => {
                words.extend([
                    "in-favour".to_owned(),
                    in_favour.package.clone(),
                    in_favour.version.to_string(),
                ]);
            }
            Action::Postinst(PostinstAction::AbortDeconfigure { in_favour, removing })
            | Action::Prerm(PrermAction::Deconfigure { in_favour, removing }) => {
                words.extend([
                    "in-favour".to_owned(),
                    in_favour.package.clone(),
                    in_favour.version.to_string(),
                ]);
                if let Some(r) = removing {
                    words.extend(["removing".to_owned(), r.package.clone(), r.version.to_string()]);
                }
            }
            Action::Postrm(PostrmAction::Disappear { overwriter }) => {
                words.extend([overwriter.package.clone(), overwriter.version.to_string()]);
            }
            Action::Postinst(PostinstAction::Triggered { triggers }) => {
                words.push(format!("\"{}\"", triggers.join(" ")));
            }
            Action::Postinst(PostinstAction::AbortRemove)
            | Action::Prerm(PrermAction::Remove)
            | Action::Postrm(PostrmAction::Remove | PostrmAction::Purge) => {}
        }
        for w in words {
            write!(f, " {w}")?;
        }
        Ok(())
    }
}

/// Parses `argv[1..]` of `script` into an [`Action`].
///
/// Fails with [`Error::UnknownCallForm`] (naming the script and the exact
/// arguments) for an empty argument list, an unknown action word, a wrong
/// number of arguments, an invalid version or package name, or a non-UTF-8
/// argument.
pub fn parse(script: Script, args: &[OsString]) -> Result<Action> {
    let unknown = |reason: String| Error::UnknownCallForm { script, args: args.to_vec(), reason };
    let mut words = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        match arg.to_str() {
            Some(s) => words.push(s),
            None => return Err(unknown(format!("argument {} is not valid UTF-8", i + 1))),
        }
    }
    let action = match script {
        Script::Preinst => parse_preinst(&words).map(Action::Preinst),
        Script::Postinst => parse_postinst(&words).map(Action::Postinst),
        Script::Prerm => parse_prerm(&words).map(Action::Prerm),
        Script::Postrm => parse_postrm(&words).map(Action::Postrm),
        Script::Config => parse_config(&words).map(Action::Config),
    }
    .map_err(unknown)?;
    log::debug!("maintainer script call form: {action}");
    Ok(action)
}

/// [`parse`] for `preinst`, returning the preinst action directly.
pub fn parse_preinst_args(args: &[OsString]) -> Result<PreinstAction> {
    match parse(Script::Preinst, args)? {
        Action::Preinst(a) => Ok(a),
        _ => unreachable!("parse(Preinst) returns a preinst action"),
    }
}

/// [`parse`] for `postinst`, returning the postinst action directly.
pub fn parse_postinst_args(args: &[OsString]) -> Result<PostinstAction> {
    match parse(Script::Postinst, args)? {
        Action::Postinst(a) => Ok(a),
        _ => unreachable!("parse(Postinst) returns a postinst action"),
    }
}

type Reason = String;

fn version(what: &str, s: &str) -> std::result::Result<Version, Reason> {
    Version::parse(s).map_err(|e| format!("{what}: {e}"))
}

fn opt_version(what: &str, s: Option<&&str>) -> std::result::Result<Option<Version>, Reason> {
    s.map(|s| version(what, s)).transpose()
}

/// The version argument of `configure`: empty means none.
fn configured_version(s: &str) -> std::result::Result<Option<Version>, Reason> {
    if s.is_empty() {
        Ok(None)
    } else {
        version("MOST-RECENTLY-CONFIGURED-VERSION", s).map(Some)
    }
}

/// Checks a package name: Policy 5.6.1 (`[a-z0-9][a-z0-9+.-]+`, at least
/// two characters), optionally followed by `:ARCH` as dpkg prints
/// non-ambiguous names.
pub fn validate_package_name(name: &str) -> Result<()> {
    let bad = |reason: &str| Error::InvalidPackageName { input: name.to_owned(), reason: reason.to_owned() };
    let (pkg, arch) = match name.split_once(':') {
        Some((pkg, arch)) => (pkg, Some(arch)),
        None => (name, None),
    };
    if pkg.len() < 2 {
        return Err(bad("must be at least two characters long"));
    }
    let first = pkg.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(bad("must start with a lowercase letter or a digit"));
    }
    if !pkg.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b)) {
        return Err(bad("may contain only a-z, 0-9, '+', '-' and '.'"));
    }
    if let Some(arch) = arch {
        if arch.is_empty() || !arch.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("invalid architecture qualifier"));
        }
    }
    Ok(())
}

fn package_version(what: &str, pkg: &str, ver: &str) -> std::result::Result<PackageVersion, Reason> {
    validate_package_name(pkg).map_err(|e| format!("{what}: {e}"))?;
    Ok(PackageVersion { package: pkg.to_owned(), version: version(&format!("{what} version"), ver)? })
}

/// `in-favour PKG VER [removing PKG VER]`, starting after the verb.
fn in_favour_removing(
    verb: &str,
    rest: &[&str],
) -> std::result::Result<(PackageVersion, Option<PackageVersion>), Reason> {
    let usage = || format!("`{verb}` takes in-favour PACKAGE VERSION [removing PACKAGE VERSION]");
    match rest {
        ["in-favour", pkg, ver] => Ok((package_version("in-favour package", pkg, ver)?, None)),
        ["in-favour", pkg, ver, "removing", rpkg, rver] => Ok((
            package_version("in-favour package", pkg, ver)?,
            Some(package_version("removing package", rpkg, rver)?),
        )),
        _ => Err(usage()),
    }
}

fn no_action() -> Reason {
    "no action given".to_owned()
}

fn unknown_verb(verb: &str, known: &str) -> Reason {
    format!("unknown action {verb:?} (known: {known})")
}

fn parse_preinst(words: &[&str]) -> std::result::Result<PreinstAction, Reason> {
    let (verb, rest) = words.split_first().ok_or_else(no_action)?;
    match (*verb, rest) {
        ("install", []) => Ok(PreinstAction::Install { old: None, new: None }),
        ("install", [old]) | ("install", [old, _]) => Ok(PreinstAction::Install {
            old: Some(version("OLD-VERSION", old)?),
            new: opt_version("NEW-VERSION", rest.get(1))?,
        }),
        ("install", _) => Err("`install` takes [OLD-VERSION [NEW-VERSION]]".to_owned()),
        ("upgrade", [old]) | ("upgrade", [old, _]) => Ok(PreinstAction::Upgrade {
            old: version("OLD-VERSION", old)?,
            new: opt_version("NEW-VERSION", rest.get(1))?,
        }),
        ("upgrade", _) => Err("`upgrade` takes OLD-VERSION [NEW-VERSION]".to_owned()),
        ("abort-upgrade", [new]) => Ok(PreinstAction::AbortUpgrade { new: version("NEW-VERSION", new)? }),
        ("abort-upgrade", _) => Err("`abort-upgrade` takes NEW-VERSION".to_owned()),
        (verb, _) => Err(unknown_verb(verb, "install, upgrade, abort-upgrade")),
    }
}

fn parse_postinst(words: &[&str]) -> std::result::Result<PostinstAction, Reason> {
    let (verb, rest) = words.split_first().ok_or_else(no_action)?;
    match (*verb, rest) {
        ("configure", [old]) => {
            Ok(PostinstAction::Configure { most_recently_configured: configured_version(old)? })
        }
        ("configure", _) => {
            Err("`configure` takes MOST-RECENTLY-CONFIGURED-VERSION (empty on a fresh install)".to_owned())
        }
        ("abort-upgrade", [new]) => Ok(PostinstAction::AbortUpgrade { new: version("NEW-VERSION", new)? }),
        ("abort-upgrade", _) => Err("`abort-upgrade` takes NEW-VERSION".to_owned()),
        ("abort-remove", []) => Ok(PostinstAction::AbortRemove),
        ("abort-remove", ["in-favour", pkg, ver]) => Ok(PostinstAction::AbortRemoveInFavour {
            in_favour: package_version("in-favour package", pkg, ver)?,
        }),
        ("abort-remove", _) => {
            Err("`abort-remove` takes nothing or in-favour PACKAGE NEW-VERSION".to_owned())
        }
        ("abort-deconfigure", rest) => {
            let (in_favour, removing) = in_favour_removing("abort-deconfigure", rest)?;
            Ok(PostinstAction::AbortDeconfigure { in_favour, removing })
        }
        ("triggered", [names]) => {
            let triggers: Vec<String> = names.split_whitespace().map(str::to_owned).collect();
            if triggers.is_empty() {
                return Err("`triggered` got an empty trigger list".to_owned());
            }
            Ok(PostinstAction::Triggered { triggers })
        }
        ("triggered", _) => {
            Err("`triggered` takes one argument: the space-separated trigger names".to_owned())
        }
        (verb, _) => {
            Err(unknown_verb(verb, "configure, abort-upgrade, abort-remove, abort-deconfigure, triggered"))
        }
    }
}

fn parse_prerm(words: &[&str]) -> std::result::Result<PrermAction, Reason> {
    let (verb, rest) = words.split_first().ok_or_else(no_action)?;
    match (*verb, rest) {
        ("remove", []) => Ok(PrermAction::Remove),
        ("remove", ["in-favour", pkg, ver]) => {
            Ok(PrermAction::RemoveInFavour { in_favour: package_version("in-favour package", pkg, ver)? })
        }
        ("remove", _) => Err("`remove` takes nothing or in-favour PACKAGE NEW-VERSION".to_owned()),
        ("upgrade", [new]) => Ok(PrermAction::Upgrade { new: version("NEW-VERSION", new)? }),
        ("upgrade", _) => Err("`upgrade` takes NEW-VERSION".to_owned()),
        ("failed-upgrade", [old]) | ("failed-upgrade", [old, _]) => Ok(PrermAction::FailedUpgrade {
            old: version("OLD-VERSION", old)?,
            new: opt_version("NEW-VERSION", rest.get(1))?,
        }),
        ("failed-upgrade", _) => Err("`failed-upgrade` takes OLD-VERSION [NEW-VERSION]".to_owned()),
        ("deconfigure", rest) => {
            let (in_favour, removing) = in_favour_removing("deconfigure", rest)?;
            Ok(PrermAction::Deconfigure { in_favour, removing })
        }
        (verb, _) => Err(unknown_verb(verb, "remove, upgrade, failed-upgrade, deconfigure")),
    }
}

fn parse_postrm(words: &[&str]) -> std::result::Result<PostrmAction, Reason> {
    let (verb, rest) = words.split_first().ok_or_else(no_action)?;
    match (*verb, rest) {
        ("remove", []) => Ok(PostrmAction::Remove),
        ("remove", _) => Err("`remove` takes no arguments".to_owned()),
        ("purge", []) => Ok(PostrmAction::Purge),
        ("purge", _) => Err("`purge` takes no arguments".to_owned()),
        ("upgrade", [new]) => Ok(PostrmAction::Upgrade { new: version("NEW-VERSION", new)? }),
        ("upgrade", _) => Err("`upgrade` takes NEW-VERSION".to_owned()),
        ("disappear", [pkg, ver]) => {
            Ok(PostrmAction::Disappear { overwriter: package_version("overwriter package", pkg, ver)? })
        }
        ("disappear", _) => Err("`disappear` takes OVERWRITER-PACKAGE OVERWRITER-VERSION".to_owned()),
        ("failed-upgrade", [old]) | ("failed-upgrade", [old, _]) => Ok(PostrmAction::FailedUpgrade {
            old: version("OLD-VERSION", old)?,
            new: opt_version("NEW-VERSION", rest.get(1))?,
        }),
        ("failed-upgrade", _) => Err("`failed-upgrade` takes OLD-VERSION [NEW-VERSION]".to_owned()),
        ("abort-install", []) => Ok(PostrmAction::AbortInstall { old: None, new: None }),
        ("abort-install", [old]) | ("abort-install", [old, _]) => Ok(PostrmAction::AbortInstall {
            old: Some(version("OLD-VERSION", old)?),
            new: opt_version("NEW-VERSION", rest.get(1))?,
        }),
        ("abort-install", _) => Err("`abort-install` takes [OLD-VERSION [NEW-VERSION]]".to_owned()),
        ("abort-upgrade", [old]) | ("abort-upgrade", [old, _]) => Ok(PostrmAction::AbortUpgrade {
            old: version("OLD-VERSION", old)?,
            new: opt_version("NEW-VERSION", rest.get(1))?,
        }),
        ("abort-upgrade", _) => Err("`abort-upgrade` takes OLD-VERSION [NEW-VERSION]".to_owned()),
        (verb, _) => Err(unknown_verb(
            verb,
            "remove, purge, upgrade, disappear, failed-upgrade, abort-install, abort-upgrade",
        )),
    }
}

fn parse_config(words: &[&str]) -> std::result::Result<ConfigAction, Reason> {
    let (verb, rest) = words.split_first().ok_or_else(no_action)?;
    match (*verb, rest) {
        ("configure", [old]) => {
            Ok(ConfigAction::Configure { most_recently_configured: configured_version(old)? })
        }
        ("configure", _) => Err("`configure` takes INSTALLED-VERSION (empty when not installed)".to_owned()),
        ("reconfigure", [ver]) => {
            Ok(ConfigAction::Reconfigure { version: version("INSTALLED-VERSION", ver)? })
        }
        ("reconfigure", _) => Err("`reconfigure` takes INSTALLED-VERSION".to_owned()),
        (verb, _) => Err(unknown_verb(verb, "configure, reconfigure")),
    }
}

#[cfg(test)]
mod tests;
