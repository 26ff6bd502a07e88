//! Safe deletion below one root directory.
//!
//! A program running as root over precious data, in directories other
//! users (a service's, an attacker's) can write into, needs a remover
//! that cannot be redirected.  So this one:
//!
//! * works relative to open directory descriptors (`openat`, `fstatat`,
//!   `unlinkat`), never by re-resolving a path, so a directory swapped for
//!   a symbolic link half way cannot redirect it;
//! * opens the root **once** ([`open_root`]) and hands that descriptor
//!   (or `dup`s of it) to every worker and every later step; the path is
//!   never resolved again, so swapping the root for a link mid-run changes
//!   nothing.  On the way to the root a symbolic link is followed only
//!   when root (or the user running the program) owns it: an admin's
//!   `data -> /srv/data` works, a link planted by a user who can write to
//!   the root's parent is refused;
//! * opens every directory with `O_NOFOLLOW | O_DIRECTORY`: a symbolic link
//!   is never followed, it is unlinked as an entry (its target untouched);
//! * never crosses a mount point inside what it removes: a directory on
//!   another mount than the one it was found in (another file system, or a
//!   bind mount of a directory that may be anywhere, on the same file
//!   system) is reported and left, its contents untouched.  Mounts are told
//!   apart by the kernel's mount id (`statx`), not by `st_dev` alone, which
//!   a bind mount shares.  The directories leading *to* what is removed
//!   (`output/2017/…`) may be mount points: that is the admin's layout;
//! * so never leaves the root: it only goes down by names read from
//!   the directory, and back up through `..` of a directory it holds open,
//!   checking that `..` is the very directory (device and inode) it came
//!   from;
//! * is iterative, with at most [`MAX_OPEN`] directories open at once
//!   (ancestors beyond that are closed and re-opened through `..`), so a
//!   tree far deeper than `PATH_MAX` is no problem and no descriptor limit
//!   is hit;
//! * handles any byte string as a name (names are never decoded; shown
//!   with non-UTF-8 bytes and control characters such as a newline
//!   escaped, so a name cannot forge a line of output);
//! * keeps going past an entry it cannot remove, and records it (path and
//!   reason; the first [`MAX_FAILURES`] in full, the rest counted) for the
//!   final report.  A directory that keeps any entry is itself left.
//!
//! A dry run walks the same way and counts what would go, removing nothing.
//!
//! A hook ([`Remover::after_scan`]) runs after each directory's names are
//! read and before its subdirectories are entered (where a swapped-in link
//! would strike), for tests that pause a removal there.

use std::ffi::{CStr, OsStr, OsString};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use serde::Serialize;

use crate::{Error, Result};

fn no_hook() {}

/// At most this many directories of one tree are held open at a time.
pub const MAX_OPEN: usize = 64;
/// At most this many failures are kept in full; the rest are counted.
pub const MAX_FAILURES: usize = 1000;
/// Entries of one directory sorted by inode before they are handed out.
const CHUNK: usize = 65_536;
/// Parent directories kept open between calls.
const PARENT_CACHE: usize = 16;

/// What was (or, in a dry run, would be) removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Regular files and other non-directories (FIFOs, sockets, devices).
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symbolic links (unlinked, never followed).
    pub symlinks: u64,
    /// Sum of the sizes of the regular files, in bytes.
    pub bytes: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.files += o.files;
        self.dirs += o.dirs;
        self.symlinks += o.symlinks;
        self.bytes += o.bytes;
    }
}

/// Something that could not be removed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The path (bytes that are not UTF-8 shown as `\xNN`).
    pub path: String,
    /// Why it was left.
    pub reason: String,
}

/// The outcome of removing one path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// Something existed at the path.
    pub existed: bool,
    /// Everything there went (or, in a dry run, would go).
    pub complete: bool,
    /// What went.
    pub tally: Tally,
}

/// Shows a path for people and JSON: UTF-8 as is, except that bytes that
/// are not UTF-8, control characters (a newline in a name) and the
/// backslash itself are shown as `\xNN`, so the text is one line and
/// cannot be mistaken for another path.
pub fn display_path(path: &Path) -> String {
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// What identifies a directory: its device, inode and mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ident {
    dev: u64,
    ino: u64,
    /// The kernel's mount id, where the kernel reports it (Linux ≥ 5.8).
    mnt: Option<u64>,
}

impl Ident {
    /// Of the open file `fd` itself.
    fn of(fd: RawFd) -> std::result::Result<Ident, Errno> {
        Self::statx(fd, c"", libc::AT_EMPTY_PATH)
    }

    #[allow(unsafe_code)]
    fn statx(fd: RawFd, name: &CStr, flags: libc::c_int) -> std::result::Result<Ident, Errno> {
        let mut buf = std::mem::MaybeUninit::<libc::statx>::zeroed();
        let mask = libc::STATX_INO | libc::STATX_MNT_ID;
        // SAFETY: `name` is a NUL-terminated string and `buf` points to a
        // `struct statx` the kernel may write into.
        let rc = unsafe {
            libc::statx(fd, name.as_ptr(), flags | libc::AT_SYMLINK_NOFOLLOW, mask, buf.as_mut_ptr())
        };
        if rc == -1 {
            let e = Errno::last();
            if e != Errno::ENOSYS {
                return Err(e);
            }
            // No statx (a very old kernel): device and inode only.
            let st = fstat(fd)?;
            return Ok(Ident { dev: st.st_dev, ino: st.st_ino, mnt: None });
        }
        // SAFETY: statx succeeded, so the kernel filled the structure (and
        // it was zeroed before, so every field is initialised either way).
        let st = unsafe { buf.assume_init() };
        Ok(Ident {
            dev: (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor),
            ino: st.stx_ino,
            mnt: (st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id),
        })
    }

    /// On the same mount as `other` (the same file system, and the same
    /// mount of it where the kernel tells mounts apart).
    fn same_mount(&self, other: &Ident) -> bool {
        self.dev == other.dev && (self.mnt.is_none() || other.mnt.is_none() || self.mnt == other.mnt)
    }
}

/// Why a mount point is left.
const MOUNT_POINT: &str =
    "a mount point (another file system, or a bind mount); not crossed: unmount it, or empty it by hand";

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK
}

fn kind(st: &FileStat) -> Type {
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => Type::Directory,
        SFlag::S_IFLNK => Type::Symlink,
        SFlag::S_IFREG => Type::File,
        SFlag::S_IFIFO => Type::Fifo,
        SFlag::S_IFSOCK => Type::Socket,
        SFlag::S_IFCHR => Type::CharacterDevice,
        _ => Type::BlockDevice,
    }
}

fn describe(e: Errno) -> String {
    std::io::Error::from(e).to_string()
}

/// One directory of the tree being walked.
struct Frame {
    /// Open while it is one of the [`MAX_OPEN`] deepest.
    dir: Option<Dir>,
    id: Ident,
    name: OsString,
    /// Subdirectories still to visit.
    subdirs: Vec<OsString>,
    scanned: bool,
    /// Something below could not be removed.
    incomplete: bool,
}

/// A cached parent directory.
enum Parent {
    Open(Dir),
    /// It does not exist.
    Absent,
    /// It cannot be used (already reported).
    Unusable,
}

/// What opening a directory of the tree found.
enum Opened {
    Dir(Frame),
    /// It is gone.
    Gone,
    /// It is no longer a directory (or is a symbolic link now).
    NotDir,
    /// It cannot be used; reported.
    Failed,
}

/// Removes (or measures) paths below one root directory.
pub struct Remover {
    root: Dir,
    root_path: PathBuf,
    dry_run: bool,
    /// Parent directories looked up by relative path, until
    /// [`Remover::forget_parents`].
    parents: Vec<(PathBuf, Parent)>,
    failures: Vec<Failure>,
    failures_more: u64,
    /// Run after each directory's names are read.
    after_scan: fn(),
}

impl std::fmt::Debug for Remover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remover").field("root", &self.root_path).field("dry_run", &self.dry_run).finish()
    }
}

/// At most this many symbolic links are followed on the way to a root.
const MAX_LINKS: usize = 40;

/// Opens the directory at `path` for a removal or a read that must stay
/// inside it, component by component from `/` (or the working directory)
/// with `O_PATH | O_NOFOLLOW`: a symbolic link on the way is followed only
/// when it is owned by root or by the effective user (an admin's link,
/// not one planted by whoever can write to the directory holding it), and
/// its target is resolved the same way.  What the caller gets is the
/// directory itself; work from it, never from the path again.
pub fn open_root(path: &Path) -> Result<Dir> {
    let os_err = |e: Errno| Error { path: path.to_owned(), source: e.into() };
    let refuse = |why: String| Error {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, why),
    };
    let path_flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let start = |absolute: bool| {
        nix::fcntl::open(if absolute { "/" } else { "." }, path_flags | OFlag::O_DIRECTORY, Mode::empty())
    };
    let trusted = [0, nix::unistd::geteuid().as_raw()];
    let mut cur = start(path.is_absolute()).map_err(os_err)?;
    // Components still to walk, last first.
    let mut todo: Vec<OsString> = components(path);
    let mut links = 0;
    while let Some(name) = todo.pop() {
        let next = nix::fcntl::openat(Some(cur), name.as_os_str(), path_flags, Mode::empty());
        let next = match next {
            Ok(fd) => fd,
            Err(e) => {
                let _ = nix::unistd::close(cur);
                return Err(os_err(e));
            }
        };
        let st = fstat(next).map_err(os_err)?;
        match kind(&st) {
            Type::Directory => {
                let _ = nix::unistd::close(cur);
                cur = next;
            }
            Type::Symlink => {
                links += 1;
                if !trusted.contains(&st.st_uid) || links > MAX_LINKS {
                    let _ = nix::unistd::close(next);
                    let _ = nix::unistd::close(cur);
                    return Err(refuse(if links > MAX_LINKS {
                        "too many levels of symbolic links".to_owned()
                    } else {
                        format!(
                            "`{}` on the way is a symbolic link owned by uid {}, not by root: not followed \
                             (whoever can write to the directory holding it could point it anywhere); \
                             replace it with a link owned by root, or name the real directory",
                            display_path(Path::new(&name)),
                            st.st_uid
                        )
                    }));
                }
                let target = nix::fcntl::readlinkat(Some(next), "").map_err(os_err)?;
                let _ = nix::unistd::close(next);
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    let _ = nix::unistd::close(cur);
                    cur = start(true).map_err(os_err)?;
                }
                todo.extend(components(&target));
            }
            _ => {
                let _ = nix::unistd::close(next);
                let _ = nix::unistd::close(cur);
                return Err(os_err(Errno::ENOTDIR));
            }
        }
    }
    let dir =
        Dir::openat(Some(cur), ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty());
    let _ = nix::unistd::close(cur);
    dir.map_err(os_err)
}

/// The names of `path` to walk, last first (`.` dropped, `..` kept).
fn components(path: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    v.reverse();
    v
}

impl Remover {
    /// Opens `root` once ([`open_root`]).  `dry_run` only measures.
    pub fn open(root: &Path, dry_run: bool) -> Result<Remover> {
        Ok(Remover::with_root(open_root(root)?, root, dry_run))
    }

    /// A remover working below the already open directory `root` (shown
    /// as `root_path`).
    pub fn with_root(root: Dir, root_path: &Path, dry_run: bool) -> Remover {
        Remover {
            root,
            root_path: root_path.to_owned(),
            dry_run,
            parents: Vec::new(),
            failures: Vec::new(),
            failures_more: 0,
            after_scan: no_hook,
        }
    }

    /// Runs `hook` after each directory's names are read, before its
    /// subdirectories are entered (clones made later inherit it).
    pub fn after_scan(mut self, hook: fn()) -> Remover {
        self.after_scan = hook;
        self
    }

    /// Another remover on the very same root directory (a `dup` of its
    /// descriptor: the path is not resolved again), for a worker.
    pub fn try_clone(&self) -> Result<Remover> {
        let os_err = |e: Errno| Error { path: self.root_path.clone(), source: e.into() };
        let fd = nix::unistd::dup(self.root.as_raw_fd()).map_err(os_err)?;
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))
            .map_err(os_err)?;
        let root = Dir::from_fd(fd).map_err(os_err)?;
        Ok(Remover::with_root(root, &self.root_path, self.dry_run).after_scan(self.after_scan))
    }

    /// The open root directory's descriptor (for a child process that
    /// must read below it: `/proc/<pid>/fd/<fd>` names this very
    /// directory, whatever its path points at meanwhile).
    pub fn root_fd(&self) -> RawFd {
        self.root.as_raw_fd()
    }

    /// The root's path (as given; shown in failures).
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// Failures recorded so far, and how many more were not kept.
    pub fn failures(&self) -> (&[Failure], u64) {
        (&self.failures, self.failures_more)
    }

    /// Hands over the failures recorded so far.
    pub fn take_failures(&mut self) -> (Vec<Failure>, u64) {
        (std::mem::take(&mut self.failures), std::mem::take(&mut self.failures_more))
    }

    /// Closes the cached parent directories (after directories were removed).
    pub fn forget_parents(&mut self) {
        self.parents.clear();
    }

    fn fail(&mut self, path: &Path, reason: impl Into<String>) {
        let reason = reason.into();
        let left = if self.dry_run { "would leave" } else { "left" };
        log::warn!("{left} {}: {reason}", display_path(path));
        if self.failures.len() < MAX_FAILURES {
            self.failures.push(Failure { path: display_path(path), reason });
        } else {
            self.failures_more += 1;
        }
    }

    /// The descriptor of the directory `rel` (relative to the root),
    /// opened component by component without following links.
    /// `Ok(None)`: it does not exist.  `Err(())`: it cannot be used (reported).
    fn parent(&mut self, rel: &Path) -> std::result::Result<Option<RawFd>, ()> {
        if rel.as_os_str().is_empty() {
            return Ok(Some(self.root.as_raw_fd()));
        }
        if let Some((_, p)) = self.parents.iter().find(|(p, _)| p == rel) {
            return match p {
                Parent::Open(d) => Ok(Some(d.as_raw_fd())),
                Parent::Absent => Ok(None),
                Parent::Unusable => Err(()),
            };
        }
        let mut current: Option<Dir> = None;
        let mut walked = self.root_path.clone();
        for comp in rel.components() {
            let Component::Normal(name) = comp else {
                self.fail(&self.root_path.join(rel), "not a plain relative path; refused");
                return Err(());
            };
            walked.push(name);
            let at = current.as_ref().map_or(self.root.as_raw_fd(), |d| d.as_raw_fd());
            // A mount point on the way is the admin's layout (output
            // on its own disk); only symbolic links are refused here.
            match Dir::openat(Some(at), name, dir_flags(), Mode::empty()) {
                Ok(d) => current = Some(d),
                Err(Errno::ENOENT) => return self.remember(rel, Parent::Absent),
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    self.fail(&walked, "a symbolic link or not a directory; not followed");
                    return self.remember(rel, Parent::Unusable);
                }
                Err(e) => {
                    self.fail(&walked, describe(e));
                    return self.remember(rel, Parent::Unusable);
                }
            }
        }
        match current {
            Some(d) => self.remember(rel, Parent::Open(d)),
            None => Ok(Some(self.root.as_raw_fd())),
        }
    }

    fn remember(&mut self, rel: &Path, p: Parent) -> std::result::Result<Option<RawFd>, ()> {
        if self.parents.len() >= PARENT_CACHE {
            self.parents.remove(0);
        }
        let out = match &p {
            Parent::Open(d) => Ok(Some(d.as_raw_fd())),
            Parent::Absent => Ok(None),
            Parent::Unusable => Err(()),
        };
        self.parents.push((rel.to_owned(), p));
        out
    }

    /// Removes whatever is at `rel` (relative to the root): a tree,
    /// a file, or a symbolic link (the link itself).
    pub fn remove(&mut self, rel: &Path) -> Removal {
        let mut out = Removal::default();
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            self.fail(&self.root_path.join(rel), "not a path below the root; refused");
            return out;
        };
        let pfd = match self.parent(parent) {
            Ok(Some(fd)) => fd,
            Ok(None) => {
                out.complete = true;
                return out;
            }
            Err(()) => {
                out.existed = true;
                return out;
            }
        };
        let mut path = self.root_path.join(rel);
        let st = match fstatat(Some(pfd), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => {
                out.complete = true;
                return out;
            }
            Err(e) => {
                out.existed = true;
                self.fail(&path, describe(e));
                return out;
            }
        };
        out.existed = true;
        out.complete = match kind(&st) {
            Type::Directory => self.tree(pfd, name, &mut path, &mut out.tally),
            ty => self.unlink(pfd, name, ty, Some(&st), &path, &mut out.tally),
        };
        out
    }

    /// The inode number of whatever is at `rel` (not following a link), to
    /// order removals; `None` if nothing is there.  A path that cannot be
    /// looked at gives `Some(0)`: [`Remover::remove`] reports it.
    pub fn probe(&mut self, rel: &Path) -> Option<u64> {
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else { return Some(0) };
        match self.parent(parent) {
            Ok(Some(pfd)) => match fstatat(Some(pfd), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => Some(st.st_ino),
                Err(Errno::ENOENT) => None,
                Err(_) => Some(0),
            },
            Ok(None) => None,
            Err(()) => Some(0),
        }
    }

    /// Removes the directory `rel` if it is empty; anything else (absent,
    /// not empty, not a directory) is left silently.  Returns whether it
    /// was removed.
    pub fn rmdir_if_empty(&mut self, rel: &Path) -> bool {
        if self.dry_run {
            return false;
        }
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else { return false };
        let Ok(Some(pfd)) = self.parent(parent) else { return false };
        match fstatat(Some(pfd), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if kind(&st) == Type::Directory => {}
            _ => return false,
        }
        unlinkat(Some(pfd), name, UnlinkatFlags::RemoveDir).is_ok()
    }

    /// Unlinks one non-directory entry of the directory `fd`.
    fn unlink(
        &mut self,
        fd: RawFd,
        name: &OsStr,
        ty: Type,
        st: Option<&FileStat>,
        path: &Path,
        tally: &mut Tally,
    ) -> bool {
        let size = match (ty, st) {
            (Type::File, Some(st)) => st.st_size as u64,
            (Type::File, None) => {
                fstatat(Some(fd), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_or(0, |st| st.st_size as u64)
            }
            _ => 0,
        };
        if !self.dry_run {
            match unlinkat(Some(fd), name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) => {}
                Err(Errno::ENOENT) => return true,
                Err(e) => {
                    self.fail(path, describe(e));
                    return false;
                }
            }
        }
        if ty == Type::Symlink {
            tally.symlinks += 1;
        } else {
            tally.files += 1;
            tally.bytes += size;
        }
        true
    }

    /// Reads the directory: removes its non-directories, collects its
    /// subdirectories.  Returns false if anything was left.
    fn scan(&mut self, dir: &mut Dir, path: &Path, subdirs: &mut Vec<OsString>, tally: &mut Tally) -> bool {
        let fd = dir.as_raw_fd();
        let mut complete = true;
        // Names first for the directory's own read position: unlinking
        // while reading is fine on Linux (no entry is returned twice).
        for entry in dir.iter() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.fail(path, format!("cannot read the directory: {}", describe(e)));
                    return false;
                }
            };
            let cname: &CStr = entry.file_name();
            let bytes = cname.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let name = OsStr::from_bytes(bytes);
            let (ty, st) = match entry.file_type() {
                Some(t) => (t, None),
                None => match fstatat(Some(fd), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) => (kind(&st), Some(st)),
                    Err(Errno::ENOENT) => continue,
                    Err(e) => {
                        self.fail(&path.join(name), describe(e));
                        complete = false;
                        continue;
                    }
                },
            };
            if ty == Type::Directory {
                subdirs.push(name.to_owned());
            } else if !self.unlink(fd, name, ty, st.as_ref(), &path.join(name), tally) {
                complete = false;
            }
        }
        complete
    }

    /// Removes the directory `name` of `pfd` and everything below it,
    /// staying on the mount of `pfd`.  `path` is its path for messages; it
    /// is restored on return.
    fn tree(&mut self, pfd: RawFd, name: &OsStr, path: &mut PathBuf, tally: &mut Tally) -> bool {
        let mount = match Ident::of(pfd) {
            Ok(id) => id,
            Err(e) => {
                self.fail(path, describe(e));
                return false;
            }
        };
        let root = match self.open_dir(pfd, name, path, &mount) {
            Opened::Dir(frame) => frame,
            Opened::Gone => return true,
            Opened::NotDir => {
                self.fail(path, "changed while being removed; left");
                return false;
            }
            Opened::Failed => return false,
        };
        let base_len = path.as_os_str().len();
        let mut stack = vec![root];
        loop {
            let top = stack.last_mut().expect("the stack is never empty here");
            if !top.scanned {
                top.scanned = true;
                let dir = top.dir.as_mut().expect("the deepest directory is open");
                let mut subdirs = std::mem::take(&mut top.subdirs);
                let complete = self.scan(dir, path, &mut subdirs, tally);
                let top = stack.last_mut().expect("still there");
                top.subdirs = subdirs;
                top.incomplete |= !complete;
                // Names read, subdirectories not yet entered: where a
                // swapped-in link would strike.
                (self.after_scan)();
                continue;
            }
            if let Some(sub) = top.subdirs.pop() {
                let fd = top.dir.as_ref().expect("the deepest directory is open").as_raw_fd();
                path.push(&sub);
                match self.open_dir(fd, &sub, path, &mount) {
                    Opened::Dir(frame) => {
                        stack.push(frame);
                        if stack.len() > MAX_OPEN {
                            let i = stack.len() - MAX_OPEN - 1;
                            stack[i].dir = None;
                        }
                    }
                    Opened::Gone => {
                        path.pop();
                    }
                    Opened::Failed => {
                        stack.last_mut().expect("still there").incomplete = true;
                        path.pop();
                    }
                    Opened::NotDir => {
                        // Replaced by a non-directory since it was read:
                        // unlink it as an entry.
                        let ok = match fstatat(Some(fd), sub.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                            Ok(st) if kind(&st) != Type::Directory => {
                                self.unlink(fd, &sub, kind(&st), Some(&st), path, tally)
                            }
                            Ok(_) => {
                                self.fail(path, "changed while being removed; left");
                                false
                            }
                            Err(_) => true,
                        };
                        if !ok {
                            stack.last_mut().expect("still there").incomplete = true;
                        }
                        path.pop();
                    }
                }
                continue;
            }
            // Done with the deepest directory: close it, remove it.
            let frame = stack.pop().expect("not empty");
            let Some(parent) = stack.last_mut() else {
                drop(frame.dir);
                if frame.incomplete {
                    return false;
                }
                return self.rmdir(pfd, &frame.name, path, tally);
            };
            if parent.dir.is_none() {
                let child = frame.dir.as_ref().expect("the deepest directory is open");
                let reopened = Dir::openat(Some(child.as_raw_fd()), "..", dir_flags(), Mode::empty())
                    .ok()
                    .filter(|d| Ident::of(d.as_raw_fd()).is_ok_and(|id| id == parent.id));
                match reopened {
                    Some(d) => parent.dir = Some(d),
                    None => {
                        path.pop();
                        self.fail(path, "the tree was moved while being removed; stopped here");
                        truncate(path, base_len);
                        return false;
                    }
                }
            }
            drop(frame.dir);
            path.pop();
            if frame.incomplete {
                parent.incomplete = true;
                continue;
            }
            let pfd_here = parent.dir.as_ref().expect("just ensured").as_raw_fd();
            path.push(&frame.name);
            let ok = self.rmdir(pfd_here, &frame.name, path, tally);
            path.pop();
            if !ok {
                stack.last_mut().expect("parent").incomplete = true;
            }
        }
    }

    fn rmdir(&mut self, pfd: RawFd, name: &OsStr, path: &Path, tally: &mut Tally) -> bool {
        if !self.dry_run {
            match unlinkat(Some(pfd), name, UnlinkatFlags::RemoveDir) {
                Ok(()) => {}
                Err(Errno::ENOENT) => return true,
                Err(e) => {
                    self.fail(path, describe(e));
                    return false;
                }
            }
        }
        tally.dirs += 1;
        true
    }

    /// Opens a directory of the tree, which must be on `mount`.  (Checked
    /// on the open descriptor: what was opened is what is judged.)
    fn open_dir(&mut self, pfd: RawFd, name: &OsStr, path: &Path, mount: &Ident) -> Opened {
        match Dir::openat(Some(pfd), name, dir_flags(), Mode::empty()) {
            Ok(dir) => match Ident::of(dir.as_raw_fd()) {
                Ok(id) if id.same_mount(mount) => Opened::Dir(Frame {
                    dir: Some(dir),
                    id,
                    name: name.to_owned(),
                    subdirs: Vec::new(),
                    scanned: false,
                    incomplete: false,
                }),
                Ok(_) => {
                    self.fail(path, MOUNT_POINT);
                    Opened::Failed
                }
                Err(e) => {
                    self.fail(path, describe(e));
                    Opened::Failed
                }
            },
            Err(Errno::ENOENT) => Opened::Gone,
            Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => Opened::NotDir,
            Err(e) => {
                self.fail(path, describe(e));
                Opened::Failed
            }
        }
    }
}

/// Removes whatever is at `rel` like [`Remover::remove`], but with
/// `threads` workers sharing the entries of the top directory (each worker
/// has its own [`Remover`], so every guarantee above holds per entry).
/// Unlinking is mostly kernel work that does not serialise on one
/// directory, so this is faster than one thread on a big flat directory
/// such as a spool or cache.  Entries are handed over through a bounded channel:
/// memory stays flat however many there are.
pub fn remove_parallel(main: &mut Remover, rel: &Path, threads: usize) -> Result<ParallelRemoval> {
    let done = |removal: Removal, main: &mut Remover| {
        let (failures, failures_more) = main.take_failures();
        Ok(ParallelRemoval { removal, failures, failures_more })
    };
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        let r = main.remove(rel);
        return done(r, main);
    };
    // Only a plain directory on the mount of its parent is shared out;
    // a mount point is reported and left; anything else (absent, a link, a
    // file) goes the usual way.
    let top = match main.parent(parent) {
        Ok(Some(pfd)) => match fstatat(Some(pfd), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if kind(&st) == Type::Directory && threads > 1 => {
                let path = main.root_path.join(rel);
                match Ident::of(pfd).map(|mount| main.open_dir(pfd, name, &path, &mount)) {
                    Ok(Opened::Dir(frame)) => Some((pfd, frame)),
                    Ok(Opened::Failed) => {
                        let failed = Removal { existed: true, complete: false, tally: Tally::default() };
                        return done(failed, main);
                    }
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    };
    let Some((pfd, mut frame)) = top else {
        let r = main.remove(rel);
        return done(r, main);
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<OsString>(4096);
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let mut out = Removal { existed: true, complete: true, tally: Tally::default() };
    let mut failures = Vec::new();
    let mut more = 0;
    let read_ok = std::thread::scope(|scope| -> Result<bool> {
        let mut workers = Vec::new();
        for _ in 0..threads {
            let rx = rx.clone();
            let mut w = main.try_clone()?;
            workers.push(scope.spawn(move || {
                let mut r = Removal { existed: true, complete: true, tally: Tally::default() };
                loop {
                    let next = rx.lock().map(|g| g.recv());
                    let Ok(Ok(entry)) = next else { break };
                    let one = w.remove(&rel.join(&entry));
                    r.complete &= one.complete;
                    r.tally += one.tally;
                }
                let (f, more) = w.take_failures();
                (r, f, more)
            }));
        }
        let mut read_ok = true;
        let dir = frame.dir.as_mut().expect("just opened");
        // Handed out in chunks sorted by inode number, as GNU rm does: on
        // ext4 that turns scattered inode-table updates into nearly
        // sequential ones.
        let mut chunk: Vec<(u64, OsString)> = Vec::with_capacity(CHUNK);
        let send = |chunk: &mut Vec<(u64, OsString)>| -> bool {
            chunk.sort_unstable_by_key(|(ino, _)| *ino);
            chunk.drain(..).all(|(_, name)| tx.send(name).is_ok())
        };
        for entry in dir.iter() {
            match entry {
                Ok(e) => {
                    let b = e.file_name().to_bytes();
                    if b != b"." && b != b".." {
                        chunk.push((e.ino(), OsStr::from_bytes(b).to_owned()));
                        if chunk.len() == CHUNK && !send(&mut chunk) {
                            read_ok = false;
                            break;
                        }
                    }
                }
                Err(e) => {
                    main.fail(
                        &main.root_path.join(rel),
                        format!("cannot read the directory: {}", describe(e)),
                    );
                    read_ok = false;
                    break;
                }
            }
        }
        read_ok &= send(&mut chunk);
        drop(tx);
        for w in workers {
            let (r, f, m) = w.join().expect("a removal worker panicked");
            out.complete &= r.complete;
            out.tally += r.tally;
            failures.extend(f);
            more += m;
        }
        Ok(read_ok)
    })?;
    drop(frame);
    out.complete &= read_ok;
    if out.complete {
        let path = main.root_path.join(rel);
        out.complete = main.rmdir(pfd, name, &path, &mut out.tally);
    }
    let (f, m) = main.take_failures();
    failures.extend(f);
    more += m;
    if failures.len() > MAX_FAILURES {
        more += (failures.len() - MAX_FAILURES) as u64;
        failures.truncate(MAX_FAILURES);
    }
    Ok(ParallelRemoval { removal: out, failures, failures_more: more })
}

/// What [`remove_parallel`] did.
#[derive(Debug)]
pub struct ParallelRemoval {
    /// Whether it existed, whether it all went, and what went.
    pub removal: Removal,
    /// What could not be removed, and why (the first [`MAX_FAILURES`]).
    pub failures: Vec<Failure>,
    /// Failures beyond those listed.
    pub failures_more: u64,
}

fn truncate(path: &mut PathBuf, len: usize) {
    while path.as_os_str().len() > len {
        if !path.pop() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree(root: &Path) {
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::write(root.join("a/f1"), b"12345").unwrap();
        std::fs::write(root.join("a/b/c/f2"), b"123").unwrap();
    }

    #[test]
    fn removes_a_tree_and_counts_it() -> Result<()> {
        let top = tempfile::tempdir().unwrap();
        tree(top.path());
        let mut dry = Remover::open(top.path(), true)?;
        let r = dry.remove(Path::new("a"));
        assert!(r.existed && r.complete);
        assert_eq!(r.tally, Tally { files: 2, dirs: 3, symlinks: 0, bytes: 8 });
        assert!(top.path().join("a/b/c/f2").exists());
        let mut rm = Remover::open(top.path(), false)?;
        assert_eq!(rm.remove(Path::new("a")).tally, r.tally);
        assert!(!top.path().join("a").exists());
        let again = rm.remove(Path::new("a"));
        assert!(!again.existed && again.complete);
        assert!(rm.failures().0.is_empty());
        Ok(())
    }

    #[test]
    fn the_after_scan_hook_runs_once_per_directory() -> Result<()> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static SCANNED: AtomicUsize = AtomicUsize::new(0);
        let top = tempfile::tempdir().unwrap();
        tree(top.path());
        let rm = Remover::open(top.path(), true)?.after_scan(|| {
            SCANNED.fetch_add(1, Ordering::SeqCst);
        });
        rm.try_clone()?.remove(Path::new("a"));
        assert_eq!(SCANNED.load(Ordering::SeqCst), 3, "a, a/b and a/b/c");
        Ok(())
    }

    #[test]
    fn symlinks_are_unlinked_never_followed() -> Result<()> {
        let top = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        tree(outside.path());
        std::fs::create_dir(top.path().join("d")).unwrap();
        symlink(outside.path(), top.path().join("d/escape")).unwrap();
        symlink(outside.path().join("a"), top.path().join("linked")).unwrap();
        symlink(outside.path(), top.path().join("via")).unwrap();
        let mut rm = Remover::open(top.path(), false)?;
        let r = rm.remove(Path::new("d"));
        assert!(r.complete && r.tally.symlinks == 1 && r.tally.dirs == 1, "{r:?}");
        let r = rm.remove(Path::new("linked"));
        assert!(r.complete && r.tally.symlinks == 1, "{r:?}");
        // A symlinked parent component is not followed.
        let r = rm.remove(Path::new("via/a"));
        assert!(r.existed && !r.complete);
        assert_eq!(rm.failures().0.len(), 1);
        assert!(outside.path().join("a/b/c/f2").exists());
        assert!(!top.path().join("d").exists() && !top.path().join("linked").exists());
        Ok(())
    }

    #[test]
    fn parallel_removal_matches_serial() -> Result<()> {
        let top = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"k").unwrap();
        for i in 0..500 {
            std::fs::create_dir_all(top.path().join("b")).unwrap();
            std::fs::write(top.path().join(format!("b/f{i}")), vec![0u8; i]).unwrap();
        }
        tree(&top.path().join("b"));
        symlink(outside.path(), top.path().join("b/escape")).unwrap();
        let ParallelRemoval { removal: dry, failures: f, .. } =
            remove_parallel(&mut Remover::open(top.path(), true)?, Path::new("b"), 2)?;
        assert!(dry.complete && f.is_empty());
        assert_eq!(dry.tally, Tally { files: 502, dirs: 4, symlinks: 1, bytes: (0..500).sum::<u64>() + 8 });
        let ParallelRemoval { removal: done, failures: f, .. } =
            remove_parallel(&mut Remover::open(top.path(), false)?, Path::new("b"), 2)?;
        assert!(done.complete && f.is_empty(), "{f:?}");
        assert_eq!(done.tally, dry.tally);
        assert!(!top.path().join("b").exists() && outside.path().join("keep").exists());
        let gone = remove_parallel(&mut Remover::open(top.path(), false)?, Path::new("b"), 2)?.removal;
        assert!(!gone.existed && gone.complete);
        Ok(())
    }

    #[test]
    fn deeper_than_path_max_and_non_utf8() -> Result<()> {
        let top = tempfile::tempdir().unwrap();
        let name = "d".repeat(200);
        let mut dir = Dir::open(top.path(), OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), "deep", Mode::S_IRWXU).unwrap();
        dir = Dir::openat(Some(dir.as_raw_fd()), "deep", dir_flags(), Mode::empty()).unwrap();
        for _ in 0..(3 * MAX_OPEN) {
            nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name.as_str(), Mode::S_IRWXU).unwrap();
            dir = Dir::openat(Some(dir.as_raw_fd()), name.as_str(), dir_flags(), Mode::empty()).unwrap();
        }
        let odd = OsStr::from_bytes(b"caf\xe9");
        nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), odd, Mode::S_IRWXU).unwrap();
        drop(dir);
        std::fs::write(top.path().join(OsStr::from_bytes(b"x\xff.txt")), b"1").unwrap();
        let mut rm = Remover::open(top.path(), false)?;
        let r = rm.remove(Path::new("deep"));
        assert!(r.complete, "{:?}", rm.failures());
        assert_eq!(r.tally.dirs, 3 * MAX_OPEN as u64 + 2);
        let r = rm.remove(Path::new(OsStr::from_bytes(b"x\xff.txt")));
        assert!(r.complete && r.tally.files == 1);
        assert_eq!(std::fs::read_dir(top.path()).unwrap().count(), 0);
        assert_eq!(display_path(Path::new(OsStr::from_bytes(b"/m/x\xff"))), "/m/x\\xff");
        assert_eq!(display_path(Path::new("/m/a\nb\\c\td")), "/m/a\\x0ab\\x5cc\\x09d");
        assert_eq!(display_path(Path::new("/m/caf\u{e9}/\u{85}")), "/m/caf\u{e9}/\\xc2\\x85");
        Ok(())
    }
}
