//! What the assertions look at, all inside the chroot.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::Chroot;

/// `dpkg-query`'s view of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgStatus {
    /// `${db:Status-Abbrev}` without the trailing space (`ii`, `iF`, `hi`…);
    /// `un` when dpkg does not know the package.
    pub abbrev: String,
    /// `${Version}` (empty when not installed).
    pub version: String,
    /// `${Status}` (`install ok installed`, `hold ok installed`…).
    pub status: String,
}

/// Asks dpkg-query, inside the chroot.
pub fn dpkg_status(c: &Chroot, package: &str) -> DpkgStatus {
    let run =
        c.sh(&format!("dpkg-query -W -f='${{db:Status-Abbrev}}|${{Version}}|${{Status}}' {package}"), &[]);
    if run.code != 0 {
        assert!(run.out.contains("no packages found"), "dpkg-query failed:\n{}", run.out);
        return DpkgStatus { abbrev: "un".into(), version: String::new(), status: String::new() };
    }
    let mut parts = run.out.trim_end().splitn(3, '|');
    let mut next = || parts.next().unwrap_or_default().to_owned();
    DpkgStatus { abbrev: next().trim_end().to_owned(), version: next(), status: next() }
}

/// A debconf question as `config.dat` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// `Value:` (None: no such line).
    pub value: Option<String>,
    /// Whether `Flags:` has `seen`.
    pub seen: bool,
}

fn stanza(text: &str, name: &str) -> Option<String> {
    text.split("\n\n").find(|s| s.lines().any(|l| l == format!("Name: {name}"))).map(str::to_owned)
}

/// The question `name` in the chroot's debconf database, if it is there.
pub fn question(c: &Chroot, name: &str) -> Option<Question> {
    let text = fs::read_to_string(c.path("/var/cache/debconf/config.dat")).unwrap_or_default();
    let s = stanza(&text, name)?;
    Some(Question {
        value: s.lines().find_map(|l| l.strip_prefix("Value:")).map(|v| v.trim().to_owned()),
        seen: s.lines().any(|l| l.starts_with("Flags:") && l.split_whitespace().any(|f| f == "seen")),
    })
}

/// Whether the template `name` is in the chroot's debconf templates.
pub fn has_template(c: &Chroot, name: &str) -> bool {
    let text = fs::read_to_string(c.path("/var/cache/debconf/templates.dat")).unwrap_or_default();
    stanza(&text, name).is_some()
}

/// A description of every file, directory and symlink under some
/// directories of the chroot, by path: type, mode, owner, and content
/// (SHA-256 of files up to [`HASH_LIMIT`]; size, mtime and inode of larger
/// ones, which dpkg can only replace by a new file) or link target.
/// Comparing two shows what changed on disk.
pub type Tree = BTreeMap<String, String>;

/// Files up to this size are compared by content.
pub const HASH_LIMIT: u64 = 256 * 1024;

/// Snapshots `dirs` (paths inside the chroot), skipping `skip` (paths
/// inside the chroot, with everything under them).
pub fn snapshot(c: &Chroot, dirs: &[&str], skip: &[&str]) -> Tree {
    let mut tree = Tree::new();
    for d in dirs {
        walk(c.dir(), &c.path(d), skip, &mut tree);
    }
    tree
}

fn walk(root: &Path, path: &Path, skip: &[&str], tree: &mut Tree) {
    let inside = format!("/{}", path.strip_prefix(root).expect("under the root").display());
    if skip.iter().any(|s| inside == *s || inside.starts_with(&format!("{s}/"))) {
        return;
    }
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    let head = format!("{:o} {}:{}", meta.mode(), meta.uid(), meta.gid());
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
        tree.insert(inside, format!("{head} -> {target}"));
    } else if ft.is_dir() {
        tree.insert(inside, format!("{head} dir"));
        let mut entries: Vec<_> =
            fs::read_dir(path).into_iter().flatten().flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            walk(root, &e, skip, tree);
        }
    } else if ft.is_file() && meta.len() <= HASH_LIMIT {
        tree.insert(inside, format!("{head} {} {}", meta.len(), file_hash(path)));
    } else if ft.is_file() {
        tree.insert(
            inside,
            format!("{head} {} mtime {}.{} ino {}", meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino()),
        );
    } else {
        tree.insert(inside, format!("{head} special {}", meta.rdev()));
    }
}

fn file_hash(path: &Path) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    if let Ok(mut f) = fs::File::open(path) {
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// The differences between two snapshots, one line each.
pub fn diff(before: &Tree, after: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => out.push(format!("removed {k}")),
            Some(w) if w != v => out.push(format!("changed {k}: {v} -> {w}")),
            Some(_) => {}
        }
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        out.push(format!("added {k}"));
    }
    out
}

/// The files of a `.deb` (`dpkg-deb -c`), as absolute paths, without
/// directories.
pub fn deb_files(deb: &Path) -> Vec<String> {
    let out = std::process::Command::new("dpkg-deb").arg("-c").arg(deb).output().expect("run dpkg-deb -c");
    assert!(out.status.success(), "dpkg-deb -c {}", deb.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').to_owned())
        .collect()
}
