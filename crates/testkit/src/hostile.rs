//! Hostile media trees for the removal tests and the chaos suite: links
//! pointing outside at every level, names that are not UTF-8 or hold a
//! newline, entries without permissions, read-only and immutable entries,
//! paths deeper than `PATH_MAX` and 10,000 levels deep, links swapped in
//! while a walk runs, bind mounts; and a way to prove that nothing outside
//! was touched.

use std::collections::{BTreeMap, BTreeSet};
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
    nested(parent, name, depth, &"d".repeat(200))
}

/// Like [`deep_tree`], with every level named `level`.
pub fn nested(parent: &Path, name: &str, depth: usize, level: &str) -> usize {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    std::fs::create_dir_all(parent.join(name)).expect("deep tree root");
    let mut dir = Dir::open(&parent.join(name), flags, Mode::empty()).expect("open deep tree root");
    let mut len = parent.join(name).as_os_str().len();
    for _ in 0..depth {
        mkdirat(Some(dir.as_raw_fd()), level, Mode::S_IRWXU).expect("mkdirat");
        dir = Dir::openat(Some(dir.as_raw_fd()), level, flags, Mode::empty()).expect("openat");
        len += level.len() + 1;
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
/// unlink) without harm to `outside`: symlinks to a directory and a file
/// outside at every level, relative ones climbing out with `..`, a
/// non-UTF-8 file and directory name, names holding a newline, a read-only
/// directory with a file in it, a file and a directory (with a file in it)
/// without any permission (root removes them; anyone else is refused and
/// must be told), a FIFO, and a path deeper than `PATH_MAX`.
pub fn hostile_contents(dir: &Path, outside: &Path) {
    std::fs::create_dir_all(dir).expect("hostile dir");
    escapes(dir, outside);
    let mut level = dir.to_owned();
    for name in ["l1", "l2", "l3"] {
        level.push(name);
        std::fs::create_dir(&level).expect("nested level");
        escapes(&level, outside);
    }
    std::fs::write(dir.join("new\nline.txt"), b"newline in the name\n").expect("newline file");
    let nl = dir.join("dir\nwith\nnewlines");
    std::fs::create_dir(&nl).expect("newline dir");
    std::fs::write(nl.join("\n"), b"named newline\n").expect("file named newline");
    no_permissions(dir);
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

/// Links out of `dir` to `outside`: absolute to the directory and to a
/// file in it, and relative, climbing out through as many `..` as needed.
pub fn escapes(dir: &Path, outside: &Path) {
    std::os::unix::fs::symlink(outside, dir.join("escape")).expect("symlink to outside dir");
    std::os::unix::fs::symlink(outside.join("keep.txt"), dir.join("escape-file"))
        .expect("symlink to outside file");
    let up = "../".repeat(dir.components().count());
    let relative = format!("{up}{}", outside.strip_prefix("/").unwrap_or(outside).display());
    std::os::unix::fs::symlink(relative, dir.join("escape-relative")).expect("relative symlink out");
}

/// A file and a directory (holding a file) with mode 0000 in `dir`.
pub fn no_permissions(dir: &Path) {
    let file = dir.join("mode-0000.txt");
    std::fs::write(&file, b"no permissions\n").expect("mode 0000 file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).expect("chmod 0000");
    let sub = dir.join("mode-0000-dir");
    std::fs::create_dir(&sub).expect("mode 0000 dir");
    std::fs::write(sub.join("inside.txt"), b"inside a 0000 dir\n").expect("file in a 0000 dir");
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o000)).expect("chmod 0000");
}

/// Swaps `dir` with a symbolic link to `outside` and back, as fast as it
/// can, until `stop` is set; returns how many swaps it made.  Run it in a
/// thread beside a removal: the remover must never follow the link.
pub fn swap_in_links(dir: &Path, outside: &Path, stop: &std::sync::atomic::AtomicBool) -> u64 {
    use std::sync::atomic::Ordering;
    let aside = dir.with_extension("aside");
    let mut swaps = 0;
    while !stop.load(Ordering::Relaxed) {
        // The directory may be gone (removed): then a link is all there is.
        let had_dir = std::fs::rename(dir, &aside).is_ok();
        let _ = std::os::unix::fs::symlink(outside, dir);
        std::thread::yield_now();
        let _ = std::fs::remove_file(dir);
        if had_dir {
            let _ = std::fs::rename(&aside, dir);
        }
        swaps += 1;
        // Often enough to land inside any walk, without taking a core.
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    swaps
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
/// description (`dir`, `link -> target`, a special file's type, or the
/// file's mode and contents, bytes that are not printable ASCII escaped).
/// Descriptor-relative, so paths longer than `PATH_MAX` are listed too;
/// a directory only root could enter, seen by anyone else, is listed as
/// `dir … unreadable`.  A missing `root` lists as empty; any other error
/// is a panic, never a silently shorter listing.
pub fn listing(root: &Path) -> BTreeMap<PathBuf, String> {
    listing_except(root, &BTreeSet::new())
}

/// [`listing`], leaving out the subtrees at the relative paths `skip`
/// (neither they nor anything below them is listed).
pub fn listing_except(root: &Path, skip: &BTreeSet<PathBuf>) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(root, skip, &mut |path, what| {
        out.insert(path.to_owned(), what);
    });
    out
}

/// A digest of [`listing`] of `root` (entry count and a hash), for trees
/// too deep to keep as a listing: equal digests, equal trees.
pub fn tree_digest(root: &Path) -> String {
    use std::hash::{Hash, Hasher};
    // Entries come in directory order: hash each one alone, combine
    // order-independently.
    let (mut n, mut sum) = (0u64, 0u64);
    walk(root, &BTreeSet::new(), &mut |path, what| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (path, what).hash(&mut h);
        n += 1;
        sum = sum.wrapping_add(h.finish());
    });
    format!("{n} entries, {sum:016x}")
}

fn walk(root: &Path, skip: &BTreeSet<PathBuf>, sink: &mut dyn FnMut(&Path, String)) {
    match Dir::open(root, DIR_FLAGS, Mode::empty()) {
        Ok(dir) => list_into(dir, skip, sink),
        Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => panic!("cannot list {}: {e}", root.display()),
    }
}

const DIR_FLAGS: OFlag =
    OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

fn entry_names(dir: &mut Dir, rel: &Path) -> std::vec::IntoIter<std::ffi::OsString> {
    dir.iter()
        .map(|e| e.unwrap_or_else(|e| panic!("reading the directory {}: {e}", rel.display())))
        .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
        .filter(|n| n != "." && n != "..")
        .collect::<Vec<_>>()
        .into_iter()
}

/// Depth first, with an explicit stack (one open directory a level), so
/// any depth fits.
fn list_into(mut root: Dir, skip: &BTreeSet<PathBuf>, sink: &mut dyn FnMut(&Path, String)) {
    use nix::sys::stat::{fstatat, SFlag};
    // `rel` is the path of the directory on top of the stack.
    let mut rel = PathBuf::new();
    let names = entry_names(&mut root, &rel);
    let mut stack = vec![(root, names)];
    while let Some((dir, names)) = stack.last_mut() {
        let fd = dir.as_raw_fd();
        let Some(name) = names.next() else {
            stack.pop();
            if !stack.is_empty() {
                rel.pop();
            }
            continue;
        };
        let path = rel.join(&name);
        if skip.contains(&path) {
            continue;
        }
        let st = fstatat(Some(fd), name.as_os_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .unwrap_or_else(|e| panic!("fstatat {}: {e}", path.display()));
        let mode = st.st_mode & 0o7777;
        let what = match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(Some(fd), name.as_os_str())
                    .unwrap_or_else(|e| panic!("readlinkat {}: {e}", path.display()));
                format!("link -> {}", target.as_bytes().escape_ascii())
            }
            SFlag::S_IFDIR => match Dir::openat(Some(fd), name.as_os_str(), DIR_FLAGS, Mode::empty()) {
                Ok(mut sub) => {
                    let names = entry_names(&mut sub, &path);
                    sink(&path, format!("dir {mode:o}"));
                    rel = path;
                    stack.push((sub, names));
                    continue;
                }
                Err(nix::errno::Errno::EACCES) => format!("dir {mode:o} unreadable"),
                Err(e) => panic!("opening the directory {}: {e}", path.display()),
            },
            SFlag::S_IFREG => {
                // Through the directory's descriptor: the path may be too
                // long to open by name.
                use std::os::unix::fs::OpenOptionsExt;
                let opened = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
                    .open(Path::new(&format!("/proc/self/fd/{fd}")).join(&name));
                match opened {
                    Ok(mut f) => {
                        let mut contents = Vec::new();
                        std::io::Read::read_to_end(&mut f, &mut contents)
                            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                        format!("file {mode:o} {}", contents.escape_ascii())
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        format!("file {mode:o} unreadable")
                    }
                    Err(e) => panic!("opening {}: {e}", path.display()),
                }
            }
            // A FIFO, socket or device: never opened (a FIFO would block).
            other => format!("special {mode:o} {other:?}"),
        };
        sink(&path, what);
    }
}
