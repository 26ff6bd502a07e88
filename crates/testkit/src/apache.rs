//! A private Apache for tests: Debian's `apache2` with its own
//! configuration tree (Debian's layout: `apache2.conf`, `envvars`,
//! `ports.conf`, `mods-*`, `sites-*`) in a temporary directory, listening on
//! a free loopback port, controlled with Debian's `apache2ctl` through
//! `APACHE_CONFDIR` (its multi-instance mechanism).  It never reads or
//! writes `/etc/apache2` and never touches the system's apache2 service:
//! modules are loaded straight from `/usr/lib/apache2/modules`, and the
//! pid file, logs, locks and run directory are all in the temporary tree.
//!
//! The tree holds a fake `lava-server` site (static pages on several URLs)
//! enabled by a relative link, as `a2ensite` makes it; `rewrite` and
//! `headers` are available but not enabled, as on a fresh Debian install.
//!
//! Also a minimal HTTP/1.1 client ([`Apache::get`]) on `std::net`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Modules the fake instance loads (all in Debian's apache2-bin).
const ENABLED: [&str; 6] = ["mpm_event", "authz_core", "authz_host", "dir", "mime", "alias"];
/// Modules available but not enabled.
const AVAILABLE: [&str; 2] = ["rewrite", "headers"];

/// The fake instance's pages: URL path, file, body.
pub const PAGES: [(&str, &str, &str); 4] = [
    ("/", "index.html", "<html><body><h1>LAVA test instance</h1></body></html>\n"),
    ("/scheduler/", "scheduler/index.html", "<html><body>LAVA scheduler: 3 devices</body></html>\n"),
    ("/results/1234", "results/1234", "LAVA results of job 1234\n"),
    ("/api/foo?x=1", "api/foo", "{\"api\": \"foo\"}\n"),
];

/// The Debian control program (`APACHE2CTL` overrides).
pub fn apachectl() -> PathBuf {
    std::env::var_os("APACHE2CTL").map(PathBuf::from).unwrap_or_else(|| "/usr/sbin/apache2ctl".into())
}

fn modules_dir() -> PathBuf {
    "/usr/lib/apache2/modules".into()
}

/// A running private Apache, stopped (and its files removed) when dropped.
#[derive(Debug)]
pub struct Apache {
    dir: tempfile::TempDir,
    /// Its loopback port.
    pub port: u16,
}

/// One HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names lower-cased; the last value wins.
    pub headers: BTreeMap<String, String>,
    /// The body, as text.
    pub body: String,
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create a directory");
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl Apache {
    /// Builds the tree and starts Apache; panics, saying what to install,
    /// when Debian's apache2 is missing.
    pub fn start() -> Apache {
        let ctl = apachectl();
        assert!(
            ctl.exists() && modules_dir().join("mod_rewrite.so").exists(),
            "Debian's apache2 is not installed (`{}` or {}/mod_rewrite.so missing): run scripts/install-deps",
            ctl.display(),
            modules_dir().display()
        );
        let dir = tempfile::Builder::new().prefix("lava-v1-apache.").tempdir().expect("temp dir");
        // Apache's children (www-data when started as root) read the pages.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        let apache = Apache { dir, port: free_port() };
        apache.build_tree();
        let out = apache.ctl("start");
        assert!(out.status.success(), "cannot start the private Apache:\n{}", text(&out));
        apache.spawn_watchdog();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if apache.try_get("/").is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "the private Apache does not answer:\n{}", apache.error_log());
            std::thread::sleep(Duration::from_millis(50));
        }
        apache
    }

    /// The configuration root (what `APACHE_CONFDIR` names).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("etc/apache2")
    }

    /// A state directory for the tool.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("var/lib/lava-server/v1-removal")
    }

    /// Where the tool should put the holding page.
    pub fn page_dir(&self) -> PathBuf {
        self.dir.path().join("var/lib/lava-server/maintenance")
    }

    /// The temporary directory holding everything.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The fake lava-server pages' directory.
    pub fn docroot(&self) -> PathBuf {
        self.dir.path().join("srv/lava")
    }

    fn build_tree(&self) {
        let root = self.root();
        let base = self.dir.path();
        for d in [
            "mods-available",
            "mods-enabled",
            "sites-available",
            "sites-enabled",
            "conf-available",
            "conf-enabled",
        ] {
            std::fs::create_dir_all(root.join(d)).expect("create the tree");
        }
        // As on a LAVA system, where the package made /var/lib/lava-server.
        std::fs::create_dir_all(base.join("var/lib/lava-server")).expect("create var/lib/lava-server");
        for d in ["run", "lock", "log"] {
            std::fs::create_dir_all(base.join(d)).expect("create the run directories");
        }
        let (user, group) = if nix::unistd::geteuid().is_root() {
            ("www-data".to_owned(), "www-data".to_owned())
        } else {
            let u = nix::unistd::User::from_uid(nix::unistd::geteuid()).ok().flatten().expect("current user");
            let g =
                nix::unistd::Group::from_gid(nix::unistd::getegid()).ok().flatten().expect("current group");
            (u.name, g.name)
        };
        write(
            &root.join("envvars"),
            &format!(
                "# A private test instance: nothing here is the system's.\n\
                 unset HOME\n\
                 export APACHE_RUN_USER={user}\n\
                 export APACHE_RUN_GROUP={group}\n\
                 export APACHE_PID_FILE={base}/run/apache2.pid\n\
                 export APACHE_RUN_DIR={base}/run\n\
                 export APACHE_LOCK_DIR={base}/lock\n\
                 export APACHE_LOG_DIR={base}/log\n\
                 export LANG=C\n",
                base = base.display()
            ),
        );
        write(
            &root.join("apache2.conf"),
            "# Debian's apache2.conf, cut down for a private test instance.\n\
             DefaultRuntimeDir ${APACHE_RUN_DIR}\n\
             PidFile ${APACHE_PID_FILE}\n\
             Mutex file:${APACHE_LOCK_DIR} default\n\
             Timeout 30\n\
             KeepAlive On\n\
             User ${APACHE_RUN_USER}\n\
             Group ${APACHE_RUN_GROUP}\n\
             ServerName 127.0.0.1\n\
             HostnameLookups Off\n\
             ErrorLog ${APACHE_LOG_DIR}/error.log\n\
             LogLevel warn\n\
             IncludeOptional mods-enabled/*.load\n\
             IncludeOptional mods-enabled/*.conf\n\
             Include ports.conf\n\
             <Directory />\n\
             \x20   Options FollowSymLinks\n\
             \x20   AllowOverride None\n\
             \x20   Require all denied\n\
             </Directory>\n\
             AccessFileName .htaccess\n\
             LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O\" common\n\
             IncludeOptional conf-enabled/*.conf\n\
             IncludeOptional sites-enabled/*.conf\n",
        );
        write(&root.join("ports.conf"), &format!("Listen 127.0.0.1:{}\n", self.port));
        for m in ENABLED.iter().chain(AVAILABLE.iter()) {
            write(
                &root.join(format!("mods-available/{m}.load")),
                &format!("LoadModule {m}_module {}/mod_{m}.so\n", modules_dir().display()),
            );
        }
        write(&root.join("mods-available/dir.conf"), "DirectoryIndex index.html\n");
        write(
            &root.join("mods-available/mime.conf"),
            "TypesConfig /dev/null\nAddType text/html .html\nAddType text/plain .txt\n",
        );
        for m in ENABLED {
            for ext in ["load", "conf"] {
                let name = format!("{m}.{ext}");
                if root.join("mods-available").join(&name).exists() {
                    std::os::unix::fs::symlink(
                        Path::new("../mods-available").join(&name),
                        root.join("mods-enabled").join(&name),
                    )
                    .expect("enable a module");
                }
            }
        }
        let docroot = self.docroot();
        for (_, file, body) in PAGES {
            write(&docroot.join(file), body);
        }
        write(
            &root.join("sites-available/lava-server.conf"),
            &format!(
                "# A stand-in for LAVA's site: static pages instead of the proxy to gunicorn.\n\
                 <VirtualHost *:{port}>\n\
                 \x20   ServerAdmin webmaster@localhost\n\
                 \x20   ServerName lava.test\n\
                 \x20   ServerAlias localhost 127.0.0.1\n\
                 \x20   DocumentRoot {docroot}\n\
                 \x20   <Directory {docroot}>\n\
                 \x20       Require all granted\n\
                 \x20   </Directory>\n\
                 \x20   CustomLog ${{APACHE_LOG_DIR}}/lava-access.log common\n\
                 </VirtualHost>\n",
                port = self.port,
                docroot = docroot.display()
            ),
        );
        std::os::unix::fs::symlink(
            "../sites-available/lava-server.conf",
            root.join("sites-enabled/lava-server.conf"),
        )
        .expect("enable the site");
    }

    /// Runs `apache2ctl <arg>` for this instance.
    pub fn ctl(&self, arg: &str) -> Output {
        Command::new(apachectl())
            .arg(arg)
            .env("APACHE_CONFDIR", self.root())
            .stdin(Stdio::null())
            .output()
            .expect("run apache2ctl")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("run/apache2.pid")
    }

    /// Stops Apache if its parent process outlives this test process
    /// (a killed test run), and removes the tree.
    fn spawn_watchdog(&self) {
        crate::when_this_process_is_gone(
            &format!(
                "[ -f {pidfile} ] && kill $(cat {pidfile}) 2>/dev/null; sleep 2; rm -rf {dir}",
                pidfile = self.pid_file().display(),
                dir = self.dir.path().display(),
            ),
            "Apache",
        );
    }

    /// The error log, for failure messages.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/error.log")).unwrap_or_default()
    }

    /// `GET path` (with the query string), `Connection: close`.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path).unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.error_log()))
    }

    fn try_get(&self, path: &str) -> std::io::Result<Response> {
        self.request("GET", path)
    }

    /// One HTTP/1.1 request on a fresh connection.
    pub fn request(&self, method: &str, path: &str) -> std::io::Result<Response> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let body = if method == "POST" { "submit=1" } else { "" };
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: lava-v1-tests\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Ok(Response { status, headers, body: body.to_owned() })
    }

    /// Polls `GET path` until it answers `status` (a graceful restart takes
    /// effect a moment after `apachectl graceful` returns).
    pub fn wait_for(&self, path: &str, status: u16) -> Response {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.try_get(path);
            match r {
                Ok(r) if r.status == status => return r,
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                other => panic!("GET {path}: expected {status}, got {other:?}\n{}", self.error_log()),
            }
        }
    }

    /// Every entry under the configuration root and the page directory
    /// (not the state directory, whose journal grows):
    /// paths, link targets, file contents.  Equal snapshots mean an
    /// identical tree.
    pub fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.dir.path(), &self.root(), &mut out);
        walk(self.dir.path(), &self.page_dir(), &mut out);
        out
    }
}

fn walk(base: &Path, p: &Path, out: &mut Vec<String>) {
    let Ok(m) = p.symlink_metadata() else { return };
    let rel = p.strip_prefix(base).unwrap_or(p).display().to_string();
    if m.file_type().is_symlink() {
        out.push(format!("{rel} -> {}", std::fs::read_link(p).expect("read a link").display()));
    } else if m.is_dir() {
        out.push(format!("{rel}/ {:o}", m.permissions().mode() & 0o7777));
        let mut names: Vec<PathBuf> =
            std::fs::read_dir(p).expect("read a directory").map(|e| e.expect("entry").path()).collect();
        names.sort();
        for n in names {
            walk(base, &n, out);
        }
    } else {
        let bytes = std::fs::read(p).expect("read a file");
        out.push(format!(
            "{rel} {:o} = {}",
            m.permissions().mode() & 0o7777,
            String::from_utf8_lossy(&bytes)
        ));
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

impl Drop for Apache {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.pid_file()).ok().and_then(|p| p.trim().parse::<i32>().ok());
        let _ = self.ctl("stop");
        // `-k stop` returns before the server has gone; wait for it so the
        // temporary tree is not removed from under it.
        if let Some(pid) = pid.map(nix::unistd::Pid::from_raw) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while nix::sys::signal::kill(pid, None).is_ok() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if nix::sys::signal::kill(pid, None).is_ok() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}
