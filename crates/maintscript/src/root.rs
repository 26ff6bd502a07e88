//! The filesystem root the maintainer script works on (`DPKG_ROOT`).
//!
//! dpkg sets `DPKG_ROOT` to the `--root`/`--instdir` directory when it runs
//! maintainer scripts outside a chroot (`--force-script-chrootless`), and to
//! the empty string otherwise. Every absolute path a maintainer script
//! touches must then be taken under that root: `root.path("/var/lib/x")`.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

/// A root directory under which absolute paths are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// The system root, `/`.
    pub fn system() -> Root {
        Root { dir: PathBuf::from("/") }
    }

    /// A root at `dir`; an empty `dir` means `/` (as an empty `DPKG_ROOT`
    /// does).
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        let dir = dir.into();
        if dir.as_os_str().is_empty() {
            Root::system()
        } else {
            Root { dir }
        }
    }

    /// The root from `DPKG_ROOT` (unset or empty: `/`).
    pub fn from_env() -> Root {
        Root::from_value(std::env::var_os("DPKG_ROOT").as_deref())
    }

    /// The root from a `DPKG_ROOT` value (`None` or empty: `/`).
    pub fn from_value(value: Option<&OsStr>) -> Root {
        Root::new(value.map(PathBuf::from).unwrap_or_default())
    }

    /// The root directory itself.
    pub fn as_path(&self) -> &Path {
        &self.dir
    }

    /// Whether this is the system root `/`.
    pub fn is_system(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// `path` (absolute or not: it is always taken from the root) under this
    /// root.
    ///
    /// The path is normalised lexically first: `.` is dropped and `..`
    /// removes the previous component but never climbs above the root (as
    /// `/..` is `/` in the kernel), so `root.path("/../../etc")` is
    /// `ROOT/etc`. Symbolic links are not resolved: a link inside the root
    /// that points outside it is followed by whoever opens the path.
    pub fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        let mut parts: Vec<&OsStr> = Vec::new();
        for component in path.as_ref().components() {
            match component {
                Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
                Component::ParentDir => {
                    parts.pop();
                }
                Component::Normal(name) => parts.push(name),
            }
        }
        let mut out = self.dir.clone();
        out.extend(parts);
        out
    }
}

impl Default for Root {
    fn default() -> Self {
        Root::system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_system_root() {
        assert!(Root::new("").is_system());
        assert!(Root::from_value(None).is_system());
        assert!(Root::from_value(Some(OsStr::new(""))).is_system());
        assert!(!Root::new("/srv/chroot").is_system());
        assert_eq!(Root::default(), Root::system());
        assert_eq!(Root::from_value(Some(OsStr::new("/srv/c"))).as_path(), Path::new("/srv/c"));
    }

    #[test]
    fn joins_under_system_root() {
        let r = Root::system();
        assert_eq!(r.path("/var/lib/lava-server"), PathBuf::from("/var/lib/lava-server"));
        assert_eq!(r.path("/"), PathBuf::from("/"));
        assert_eq!(r.path("/../../etc/passwd"), PathBuf::from("/etc/passwd"));
    }

    #[test]
    fn joins_under_chroot() {
        let r = Root::new("/srv/chroot");
        assert_eq!(r.path("/var/lib/lava-server"), PathBuf::from("/srv/chroot/var/lib/lava-server"));
        assert_eq!(r.path("var/lib"), PathBuf::from("/srv/chroot/var/lib"));
        assert_eq!(r.path("/"), PathBuf::from("/srv/chroot"));
        assert_eq!(r.path(""), PathBuf::from("/srv/chroot"));
        assert_eq!(r.path("//etc//./x/"), PathBuf::from("/srv/chroot/etc/x"));
        // A trailing root slash in DPKG_ROOT does not matter.
        assert_eq!(Root::new("/srv/chroot/").path("/etc"), PathBuf::from("/srv/chroot/etc"));
    }

    #[test]
    fn dotdot_never_escapes() {
        let r = Root::new("/srv/chroot");
        for (input, want) in [
            ("/..", "/srv/chroot"),
            ("..", "/srv/chroot"),
            ("/../etc/shadow", "/srv/chroot/etc/shadow"),
            ("/../../../../etc/shadow", "/srv/chroot/etc/shadow"),
            ("/var/../../etc", "/srv/chroot/etc"),
            ("/var/lib/../../..", "/srv/chroot"),
            ("/var/lib/../lava", "/srv/chroot/var/lava"),
            ("a/b/../../../../c", "/srv/chroot/c"),
            ("/./../.", "/srv/chroot"),
        ] {
            let got = r.path(input);
            assert_eq!(got, PathBuf::from(want), "{input}");
            assert!(got.starts_with(r.as_path()), "{input} escaped: {got:?}");
            assert!(!got.components().any(|c| c == Component::ParentDir), "{input}");
        }
    }

    #[test]
    fn relative_root_is_kept_relative() {
        let r = Root::new("tmp/root");
        assert_eq!(r.path("/../etc"), PathBuf::from("tmp/root/etc"));
    }
}
