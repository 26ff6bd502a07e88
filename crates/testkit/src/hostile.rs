//! Hostile media trees for the removal tests: links pointing outside,
//! names that are not UTF-8, read-only and immutable entries, paths deeper
//! than `PATH_MAX`; and a way to prove that nothing outside was touched.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::{mkdirat, Mode};

/// Creates `parent/name/` and below it `depth` nested directories with
/// 200-byte names (so the whole path is far longer than `PATH_MAX`), with
/// a file `bottom.txt` at the end; descriptor-relative, as a path that
/// long cannot be used.  Returns the length of the deepest path in bytes.
pub fn deep_tree(parent: &Path, name: &str, depth: usize) -> usize {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let level = "d".repeat(200);
    std::fs::create_dir_all(parent.join(name)).expect("deep tree root");
    let mut dir = Dir::open(&parent.join(name), flags, Mode::empty()).expect("open deep tree root");
    let mut len = parent.join(name).as_os_str().len();
    for _ in 0..depth {
        mkdirat(Some(dir.as_raw_fd()), level.as_str(), Mode::S_IRWXU).expect("mkdirat");
        dir = Dir::openat(Some(dir.as_raw_fd()), level.as_str(), flags, Mode::empty()).expect("openat");
        len += 201;
    }
    // An empty regular file at the bottom (no path could create it).
    nix::sys::stat::mknodat(
        Some(dir.as_raw_fd()),
        "bottom.txt",
        nix::sys::stat::SFlag::S_IFREG,
        Mode::S_IRUSR | Mode::S_IWUSR,
        0,
    )
    .expect("create the bottom file");
    len + 11
}

/// A directory holding things that must survive: files and a subdirectory.
pub fn precious_dir(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).expect("precious dir");
    std::fs::write(dir.join("keep.txt"), b"do not delete\n").expect("precious file");
    std::fs::write(dir.join("sub/also.txt"), b"nor this\n").expect("precious file");
}

/// Fills `dir` with the hostile cases that a remover must delete (or
/// unlink) without harm to `outside`: a symlink to a directory outside, a
/// symlink to a file outside, a non-UTF-8 file and directory name, a
/// read-only directory with a file in it, a FIFO, and a path deeper than
/// `PATH_MAX`.
pub fn hostile_contents(dir: &Path, outside: &Path) {
    std::fs::create_dir_all(dir).expect("hostile dir");
    std::os::unix::fs::symlink(outside, dir.join("escape")).expect("symlink to outside dir");
    std::os::unix::fs::symlink(outside.join("keep.txt"), dir.join("escape-file"))
        .expect("symlink to outside file");
    std::fs::write(dir.join(OsStr::from_bytes(b"caf\xe9-\xff.txt")), b"latin-1 name\n")
        .expect("non-UTF-8 file");
    let odd = dir.join(OsStr::from_bytes(b"r\xe9sultats"));
    std::fs::create_dir(&odd).expect("non-UTF-8 dir");
    std::fs::write(odd.join("x"), b"x").expect("file in non-UTF-8 dir");
    let ro = dir.join("read-only");
    std::fs::create_dir(&ro).expect("read-only dir");
    std::fs::write(ro.join("inside.txt"), b"inside a 0555 dir\n").expect("file in read-only dir");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).expect("chmod 0555");
    nix::unistd::mkfifo(&dir.join("fifo"), Mode::S_IRUSR | Mode::S_IWUSR).expect("mkfifo");
    let len = deep_tree(dir, "deep", 25);
    assert!(len > 4096, "the deep path is only {len} bytes");
}

/// Makes `path` impossible to unlink: `chattr +i` when running as root
/// (returns true), else a read-only parent (returns false).  Undo with
/// [`undo_unremovable`].
pub fn make_unremovable(path: &Path) -> bool {
    std::fs::write(path, b"cannot be removed\n").expect("unremovable file");
    if nix::unistd::geteuid().is_root() {
        let ok = Command::new("chattr").arg("+i").arg(path).status().is_ok_and(|s| s.success());
        assert!(ok, "chattr +i failed: the file system must support it");
        true
    } else {
        let parent = path.parent().expect("parent");
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o555)).expect("chmod 0555");
        false
    }
}

/// Undoes [`make_unremovable`].
pub fn undo_unremovable(path: &Path) {
    if nix::unistd::geteuid().is_root() {
        let _ = Command::new("chattr").arg("-i").arg(path).status();
    } else if let Some(parent) = path.parent() {
        let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755));
    }
}

/// Everything below `root` (not following links): relative path → a
/// description (`dir`, `link -> target`, or the file's mode and contents).
pub fn listing(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path.strip_prefix(root).expect("below root").to_owned();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let what = if meta.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&path).expect("readlink").display())
            } else if meta.is_dir() {
                stack.push(path);
                format!("dir {:o}", meta.permissions().mode())
            } else {
                format!(
                    "file {:o} {}",
                    meta.permissions().mode(),
                    String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default())
                )
            };
            out.insert(rel, what);
        }
    }
    out
}
