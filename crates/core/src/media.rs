//! The V1 directories under `MEDIA_ROOT`: what exists and how big it is.
//!
//! Read-only.  The walk is the removers' own in a dry run
//! ([`fdsafe::remove`]): it never follows a symbolic link (a link is counted
//! as a link, its target is not visited), never crosses a mount point,
//! copes with any depth and any name, and keeps going past what it cannot
//! read, counting it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::schema::V1_MEDIA_DIRS;

/// One V1 directory under the media root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MediaDir {
    /// Path relative to the media root (`bundles`, …).
    pub name: String,
    /// The absolute path.
    pub path: PathBuf,
    /// Whether anything exists there.
    pub exists: bool,
    /// The path itself is a symbolic link (not followed).
    pub is_symlink: bool,
    /// Regular files (and other non-directories) found.
    pub files: u64,
    /// Directories found below it.
    pub dirs: u64,
    /// Symbolic links found (not followed).
    pub symlinks: u64,
    /// Sum of the sizes of the regular files, in bytes.
    pub bytes: u64,
    /// Entries that could not be read, or are mount points (not crossed).
    pub skipped: u64,
}

impl MediaDir {
    /// Holds anything at all?
    pub fn has_data(&self) -> bool {
        self.files + self.symlinks + self.dirs > 0 || self.is_symlink
    }
}

/// Measures every V1 directory under `media_root`.
pub fn v1_media(media_root: &Path) -> Vec<MediaDir> {
    V1_MEDIA_DIRS.iter().map(|name| measure(media_root, name)).collect()
}

fn measure(media_root: &Path, name: &str) -> MediaDir {
    let path = media_root.join(name);
    let mut out = MediaDir { name: name.to_owned(), path: path.clone(), ..Default::default() };
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            log::warn!("cannot inspect {}: {e}", path.display());
            out.skipped += 1;
            return out;
        }
    };
    out.exists = true;
    if meta.file_type().is_symlink() {
        out.is_symlink = true;
        return out;
    }
    if !meta.is_dir() {
        out.files = 1;
        out.bytes = meta.len();
        return out;
    }
    // The same walk as the removers' dry run, so what is reported here is
    // exactly what `files rm` would remove.
    let mut walker = match crate::fault::remover(media_root, true) {
        Ok(w) => w,
        Err(e) => {
            log::warn!("{e}");
            out.skipped += 1;
            return out;
        }
    };
    let r = walker.remove(Path::new(name));
    let (failures, more) = walker.failures();
    out.skipped = failures.len() as u64 + more;
    out.files = r.tally.files;
    // The tally counts the directory itself once it is gone (in a dry run:
    // once nothing below it would be left).
    out.dirs = r.tally.dirs - u64::from(r.complete && r.tally.dirs > 0);
    out.symlinks = r.tally.symlinks;
    out.bytes = r.tally.bytes;
    out
}

/// Mount points strictly below `dir` (from `/proc/self/mountinfo`), as
/// paths relative to `dir`: the removers never cross them, and the backup
/// leaves them out (`tar --one-file-system` only compares devices, which a
/// bind mount of the same file system shares).  `dir` should be canonical.
pub fn mount_points_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read("/proc/self/mountinfo") else { return Vec::new() };
    parse_mount_points(&info, dir)
}

fn parse_mount_points(info: &[u8], dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut out: Vec<PathBuf> = info
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(|field| PathBuf::from(std::ffi::OsStr::from_bytes(&unescape_octal(field))))
        .filter_map(|p| p.strip_prefix(dir).ok().map(Path::to_path_buf))
        .filter(|rel| !rel.as_os_str().is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// mountinfo writes space, tab, newline and backslash in a path as `\ooo`.
fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let oct = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_without_following_links() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), vec![0u8; 10_000]).unwrap();
        let b = root.path().join("bundles");
        std::fs::create_dir_all(b.join("sub")).unwrap();
        std::fs::write(b.join("bundle-1"), b"12345").unwrap();
        std::fs::write(b.join("sub/bundle-2"), b"123").unwrap();
        std::os::unix::fs::symlink(outside.path(), b.join("escape")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("attachments")).unwrap();

        let dirs = v1_media(root.path());
        let bundles = &dirs[0];
        assert_eq!((bundles.files, bundles.dirs, bundles.symlinks, bundles.bytes), (2, 1, 1, 8));
        assert!(bundles.has_data());
        let attachments = dirs.iter().find(|d| d.name == "attachments").unwrap();
        assert!(attachments.is_symlink && attachments.exists);
        assert_eq!(attachments.bytes, 0);
        let testdef = dirs.iter().find(|d| d.name == "testdef").unwrap();
        assert!(!testdef.exists && !testdef.has_data());
    }

    #[test]
    fn mount_points_below_a_directory() {
        let info = b"22 27 0:21 / /proc rw - proc proc rw\n\
            90 27 254:1 /srv/x /m/media/bundles/sh\\040ared rw - ext4 /dev/vda rw\n\
            91 27 254:1 / /m/media rw - ext4 /dev/vda rw\n\
            92 27 254:1 / /m/media-other rw - ext4 /dev/vda rw\n\
            93 27 254:1 / /m/media/job-output rw - ext4 /dev/vdb rw\n";
        let found = parse_mount_points(info, Path::new("/m/media"));
        assert_eq!(found, [PathBuf::from("bundles/sh ared"), PathBuf::from("job-output")]);
    }
}
