//! The environment dpkg gives maintainer scripts.
//!
//! | variable | meaning |
//! |---|---|
//! | `DPKG_MAINTSCRIPT_NAME` | `preinst`, `postinst`, `prerm` or `postrm` (dpkg >= 1.15.7; also set by dpkg-reconfigure) |
//! | `DPKG_MAINTSCRIPT_PACKAGE` | the package name, not arch-qualified |
//! | `DPKG_MAINTSCRIPT_ARCH` | the architecture the package was built for |
//! | `DPKG_FRONTEND_LOCKED` | set by apt for dpkg: apt holds the frontend lock |
//! | `DPKG_RUNNING_VERSION` | the version of the running dpkg |
//! | `DPKG_ROOT` | root for paths; empty unless `--force-script-chrootless` |
//! | `DPKG_ADMINDIR` | dpkg's database directory, normally `/var/lib/dpkg` |
//! | `DEBCONF_RECONFIGURE` | `1` under dpkg-reconfigure |
//!
//! The `config` script run by `dpkg-preconfigure` gets none of the
//! `DPKG_MAINTSCRIPT_*` variables, but does get `DPKG_FRONTEND_LOCKED`.
//!
//! While any of these scripts runs, dpkg (and apt) hold the dpkg locks, so
//! `apt-mark hold` / `dpkg --set-selections` cannot work; see
//! [`in_maintainer_script`].

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::args::Script;
use crate::root::Root;

/// What dpkg told a maintainer script through the environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaintscriptEnv {
    /// `DPKG_MAINTSCRIPT_NAME`, if set (even if empty).
    pub maintscript_name: Option<String>,
    /// `DPKG_MAINTSCRIPT_PACKAGE`, if set and non-empty.
    pub package: Option<String>,
    /// `DPKG_MAINTSCRIPT_ARCH`, if set and non-empty.
    pub arch: Option<String>,
    /// `DPKG_FRONTEND_LOCKED` is set. dpkg itself only tests whether it is
    /// set (apt sets it to `true`), so any value counts.
    pub frontend_locked: bool,
    /// `DPKG_RUNNING_VERSION`, if set and non-empty.
    pub running_version: Option<String>,
    /// `DPKG_ROOT` (empty or unset: `/`).
    pub root: Root,
    /// `DPKG_ADMINDIR`, if set and non-empty.
    pub admindir: Option<PathBuf>,
    /// `DEBCONF_RECONFIGURE` is `1` (dpkg-reconfigure).
    pub debconf_reconfigure: bool,
}

impl MaintscriptEnv {
    /// Reads the process environment.
    pub fn from_env() -> MaintscriptEnv {
        MaintscriptEnv::from_lookup(|name| std::env::var_os(name))
    }

    /// Reads the variables through `lookup` (for tests, or a saved
    /// environment). Non-UTF-8 values of the string variables are converted
    /// lossily, with a warning in the log.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> MaintscriptEnv {
        let string = |name: &str| -> Option<String> {
            let value = lookup(name)?;
            match value.into_string() {
                Ok(s) => Some(s),
                Err(raw) => {
                    log::warn!("{name} is not valid UTF-8: {raw:?}");
                    Some(raw.to_string_lossy().into_owned())
                }
            }
        };
        let non_empty = |name: &str| string(name).filter(|s| !s.is_empty());
        MaintscriptEnv {
            maintscript_name: string("DPKG_MAINTSCRIPT_NAME"),
            package: non_empty("DPKG_MAINTSCRIPT_PACKAGE"),
            arch: non_empty("DPKG_MAINTSCRIPT_ARCH"),
            frontend_locked: lookup("DPKG_FRONTEND_LOCKED").is_some(),
            running_version: non_empty("DPKG_RUNNING_VERSION"),
            root: Root::from_value(lookup("DPKG_ROOT").as_deref()),
            admindir: lookup("DPKG_ADMINDIR").filter(|v| !v.is_empty()).map(PathBuf::from),
            debconf_reconfigure: lookup("DEBCONF_RECONFIGURE").as_deref() == Some(OsStr::new("1")),
        }
    }

    /// Whether we run inside a maintainer script (or under a dpkg frontend
    /// that holds the dpkg lock): `DPKG_MAINTSCRIPT_NAME` is set, or
    /// `DPKG_FRONTEND_LOCKED` is. `apt-mark hold` cannot work then, because
    /// dpkg's locks are held; tell the admin to run it afterwards instead.
    pub fn in_maintainer_script(&self) -> bool {
        self.maintscript_name.is_some() || self.frontend_locked
    }

    /// `DPKG_MAINTSCRIPT_NAME` as a [`Script`], if it names one.
    pub fn script(&self) -> Option<Script> {
        self.maintscript_name.as_deref()?.parse().ok()
    }

    /// dpkg's database directory: `DPKG_ADMINDIR`, else `/var/lib/dpkg`
    /// under [`root`](Self::root).
    pub fn admindir_or_default(&self) -> PathBuf {
        self.admindir.clone().unwrap_or_else(|| self.root.path("/var/lib/dpkg"))
    }
}

/// Whether this process runs inside a maintainer script (see
/// [`MaintscriptEnv::in_maintainer_script`]).
pub fn in_maintainer_script() -> bool {
    MaintscriptEnv::from_env().in_maintainer_script()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;

    fn env_of(vars: &[(&str, &str)]) -> MaintscriptEnv {
        let map: HashMap<String, OsString> =
            vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        MaintscriptEnv::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn empty_environment() {
        let e = env_of(&[]);
        assert_eq!(e, MaintscriptEnv::default());
        assert!(!e.in_maintainer_script());
        assert!(e.root.is_system());
        assert_eq!(e.admindir_or_default(), PathBuf::from("/var/lib/dpkg"));
        assert_eq!(e.script(), None);
    }

    #[test]
    fn under_apt() {
        let e = env_of(&[
            ("DPKG_MAINTSCRIPT_NAME", "preinst"),
            ("DPKG_MAINTSCRIPT_PACKAGE", "lava-server"),
            ("DPKG_MAINTSCRIPT_ARCH", "all"),
            ("DPKG_FRONTEND_LOCKED", "true"),
            ("DPKG_RUNNING_VERSION", "1.21.23"),
            ("DPKG_ROOT", ""),
            ("DPKG_ADMINDIR", "/var/lib/dpkg"),
        ]);
        assert!(e.in_maintainer_script());
        assert_eq!(e.script(), Some(Script::Preinst));
        assert_eq!(e.package.as_deref(), Some("lava-server"));
        assert_eq!(e.arch.as_deref(), Some("all"));
        assert!(e.frontend_locked);
        assert_eq!(e.running_version.as_deref(), Some("1.21.23"));
        assert!(e.root.is_system());
        assert_eq!(e.admindir.as_deref(), Some(Path::new("/var/lib/dpkg")));
        assert!(!e.debconf_reconfigure);
    }

    #[test]
    fn plain_dpkg_has_no_frontend_lock_var() {
        let e = env_of(&[("DPKG_MAINTSCRIPT_NAME", "postinst")]);
        assert!(!e.frontend_locked);
        assert!(e.in_maintainer_script());
        assert_eq!(e.script(), Some(Script::Postinst));
    }

    #[test]
    fn preconfigure_has_only_frontend_lock() {
        let e = env_of(&[("DPKG_FRONTEND_LOCKED", "true")]);
        assert!(e.in_maintainer_script());
        assert_eq!(e.script(), None);
    }

    #[test]
    fn chrootless_root_and_admindir() {
        let e = env_of(&[("DPKG_ROOT", "/srv/chroot"), ("DEBCONF_RECONFIGURE", "1")]);
        assert_eq!(e.root.as_path(), Path::new("/srv/chroot"));
        assert_eq!(e.admindir_or_default(), PathBuf::from("/srv/chroot/var/lib/dpkg"));
        assert!(e.debconf_reconfigure);
        let e = env_of(&[("DPKG_ROOT", "/srv/c"), ("DPKG_ADMINDIR", "/x/dpkg")]);
        assert_eq!(e.admindir_or_default(), PathBuf::from("/x/dpkg"));
    }

    #[test]
    fn empty_name_still_counts_as_set() {
        let e = env_of(&[("DPKG_MAINTSCRIPT_NAME", "")]);
        assert!(e.in_maintainer_script());
        assert_eq!(e.script(), None);
    }

    #[test]
    fn non_utf8_is_lossy() {
        use std::os::unix::ffi::OsStringExt;
        let e = MaintscriptEnv::from_lookup(|name| {
            (name == "DPKG_MAINTSCRIPT_PACKAGE").then(|| OsString::from_vec(b"lava\xff".to_vec()))
        });
        assert_eq!(e.package.as_deref(), Some("lava\u{fffd}"));
    }
}
