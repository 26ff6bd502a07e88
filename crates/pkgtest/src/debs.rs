//! The packages: the one under test, and stand-ins built from plain files.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

/// The version under test.
pub const NEW_VERSION: &str = "2017.12-1";
/// The stand-in for LAVA's last release before the V1 removal.
pub const OLD_VERSION: &str = "2017.10-1";

/// The obsolete init scripts lava-server 2017.10 shipped as conffiles
/// (the ones the upstream page lists).
pub const INIT_SCRIPTS: &[&str] = &[
    "/etc/init.d/lava-master",
    "/etc/init.d/lava-publisher",
    "/etc/init.d/lava-server",
    "/etc/init.d/lava-server-gunicorn",
    "/etc/init.d/lava-slave",
];

/// LAVA's media root on a Debian install (the stand-in's settings.conf).
pub const MEDIA_ROOT: &str = "/var/lib/lava-server/default/media";

/// The `.deb` under test: `LAVA_V1_DEB` if set, else built once per
/// process with `scripts/build-deb` (whose last line is its path).
pub fn package() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        if let Some(p) = std::env::var_os("LAVA_V1_DEB") {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "LAVA_V1_DEB={} is not a file", p.display());
            return p;
        }
        let start = Instant::now();
        eprintln!("pkgtest: LAVA_V1_DEB is not set; building the package with scripts/build-deb");
        let script = crate::workspace_root().join("scripts/build-deb");
        let out = Command::new(&script)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "scripts/build-deb failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let path = PathBuf::from(stdout.lines().last().expect("build-deb printed the path").trim());
        assert!(path.is_file(), "build-deb printed {}, which is not a file", path.display());
        eprintln!("pkgtest: built {} in {:.1} s", path.display(), start.elapsed().as_secs_f64());
        path
    })
}

/// A package built from plain files with `dpkg-deb -b`.
#[derive(Debug, Default)]
pub struct Builder {
    control: String,
    files: Vec<(String, String, u32)>,
    conffiles: Vec<String>,
}

impl Builder {
    /// A package with this control file (without a trailing newline is
    /// fine).
    pub fn new(control: &str) -> Builder {
        Builder { control: control.trim_end().to_owned() + "\n", ..Builder::default() }
    }

    /// Adds a file.
    pub fn file(mut self, path: &str, content: &str, mode: u32) -> Builder {
        self.files.push((path.to_owned(), content.to_owned(), mode));
        self
    }

    /// Adds a file that is a conffile.
    pub fn conffile(mut self, path: &str, content: &str, mode: u32) -> Builder {
        self.conffiles.push(path.to_owned());
        self.file(path, content, mode)
    }

    /// Builds it into `dir`, returns the `.deb`'s path.
    pub fn build(&self, dir: &Path, name: &str) -> PathBuf {
        let tree = dir.join(format!("{name}.tree"));
        crate::chroot::remove_tree(&tree);
        fs::create_dir_all(tree.join("DEBIAN")).expect("create DEBIAN");
        fs::write(tree.join("DEBIAN/control"), &self.control).expect("write control");
        if !self.conffiles.is_empty() {
            fs::write(tree.join("DEBIAN/conffiles"), self.conffiles.join("\n") + "\n")
                .expect("write conffiles");
        }
        for (path, content, mode) in &self.files {
            let p = tree.join(path.trim_start_matches('/'));
            fs::create_dir_all(p.parent().expect("parent")).expect("create dirs");
            fs::write(&p, content).expect("write a file");
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).expect("chmod");
        }
        let deb = dir.join(format!("{name}.deb"));
        let out = Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "-z1", "-b"])
            .arg(&tree)
            .arg(&deb)
            .stdin(Stdio::null())
            .output()
            .expect("run dpkg-deb");
        assert!(out.status.success(), "dpkg-deb -b failed: {}", String::from_utf8_lossy(&out.stderr));
        crate::chroot::remove_tree(&tree);
        deb
    }
}

/// An init script as LAVA shipped them (contents do not matter, only
/// that dpkg knows their checksums).
pub fn init_script(name: &str) -> String {
    format!(
        "#!/bin/sh\n### BEGIN INIT INFO\n# Provides:          {name}\n# Required-Start:    $remote_fs\n\
         # Required-Stop:     $remote_fs\n# Default-Start:     2 3 4 5\n# Default-Stop:      0 1 6\n\
         # Short-Description: LAVA {name} (stand-in)\n### END INIT INFO\nexit 0\n"
    )
}

/// The stand-in for LAVA's lava-server 2017.10-1: `Architecture: all`,
/// the old init scripts as conffiles, and LAVA's configuration pointing at
/// the test's database.  (LAVA's own postinst wrote `instance.conf`; here
/// it is a conffile, which dpkg keeps through the upgrade all the same, as
/// an obsolete conffile.)
pub fn stand_in(dir: &Path, instance_conf: &str) -> PathBuf {
    let mut b = Builder::new(&format!(
        "Package: lava-server\nVersion: {OLD_VERSION}\nArchitecture: all\n\
         Maintainer: lava-v1 developers <lava-v1@example.org>\nSection: net\nPriority: optional\n\
         Description: stand-in for LAVA's lava-server {OLD_VERSION} (test package)\n \
         Holds what the V1 removal needs of a LAVA 2017.10 install: the init\n \
         scripts and the instance configuration."
    ));
    for path in INIT_SCRIPTS {
        let name = path.rsplit('/').next().expect("a name");
        b = b.conffile(path, &init_script(name), 0o755);
    }
    b.conffile("/etc/lava-server/instance.conf", instance_conf, 0o640)
        .conffile(
            "/etc/lava-server/settings.conf",
            &format!("{{\n  \"DEBUG\": false,\n  \"MEDIA_ROOT\": \"{MEDIA_ROOT}\"\n}}\n"),
            0o644,
        )
        .build(dir, &format!("lava-server_{OLD_VERSION}_all"))
}

/// A package that owns `/usr/sbin/lava-v1`, so that unpacking lava-server
/// 2017.12 fails after its preinst ran (a file conflict).
pub fn blocker(dir: &Path) -> PathBuf {
    Builder::new(
        "Package: lava-blocker\nVersion: 1\nArchitecture: all\n\
         Maintainer: lava-v1 developers <lava-v1@example.org>\n\
         Description: owns /usr/sbin/lava-v1 (test package)\n \
         Makes the unpacking of lava-server 2017.12 fail.",
    )
    .file("/usr/sbin/lava-v1", "#!/bin/sh\nexit 0\n", 0o755)
    .build(dir, "lava-blocker_1_all")
}
