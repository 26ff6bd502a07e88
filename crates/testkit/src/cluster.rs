//! Throwaway PostgreSQL clusters: `initdb` and `pg_ctl` in a temporary
//! directory, a Unix socket there, TCP on a free loopback port with
//! password authentication (as a LAVA instance connects).
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the
//! cluster belongs to `nobody` and its programs are started through
//! `setpriv` (util-linux, Essential on Debian).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The role a LAVA instance connects as, and its password.
pub const LAVA_ROLE: &str = "lavaserver";
/// The password of [`LAVA_ROLE`].  Distinctive, so tests can grep for leaks.
pub const LAVA_PASSWORD: &str = "Pw-7fQz9-never-print-me";

/// A running cluster, stopped (and its files removed) when dropped.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    /// TCP port on loopback.
    pub port: u16,
    run_as_nobody: bool,
}

/// Where PostgreSQL's server programs live: `PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/*/bin` (15 on Debian 12).
pub fn bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return dir.into();
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    found.retain(|p| p.join("initdb").exists());
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL server programs not found: install postgresql-15 or set PG_BINDIR")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl Cluster {
    /// Creates and starts a new cluster.
    pub fn start() -> Cluster {
        let run_as_nobody = nix::unistd::geteuid().is_root();
        let dir = tempfile::Builder::new().prefix("lava-v1-pg.").tempdir().expect("temp dir");
        if run_as_nobody {
            let nobody = nix::unistd::User::from_name("nobody").ok().flatten().expect("user nobody");
            nix::unistd::chown(dir.path(), Some(nobody.uid), Some(nobody.gid)).expect("chown temp dir");
        }
        let cluster = Cluster { dir, bindir: bindir(), port: free_port(), run_as_nobody };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\n\
             shared_buffers = 128MB\nlog_min_messages = warning\n",
            cluster.port,
            cluster.socket_dir().display()
        );
        append(&data.join("postgresql.conf"), &conf);
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("write pg_hba.conf");
        cluster.start_server();
        // However this process ends (a panic that aborts, a signal), the
        // server does not outlive it.
        cluster.spawn_watchdog();
        let mut admin = cluster.client("postgres");
        admin
            .batch_execute(&format!("CREATE ROLE {LAVA_ROLE} LOGIN CREATEDB PASSWORD '{LAVA_PASSWORD}'"))
            .expect("create the LAVA role");
        cluster
    }

    /// The cluster shared by every test of this process; stopped by its
    /// watchdog once the process is gone.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(Cluster::start)
    }

    fn spawn_watchdog(&self) {
        crate::when_this_process_is_gone(
            &format!(
                "{runas} {pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
                runas = if self.run_as_nobody {
                    "setpriv --reuid=nobody --regid=nogroup --clear-groups"
                } else {
                    ""
                },
                pg_ctl = self.bindir.join("pg_ctl").display(),
                data = self.data_dir().display(),
                dir = self.dir.path().display(),
            ),
            "cluster",
        );
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The Unix-socket directory.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        if self.run_as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let out = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (after [`Cluster::stop`]).
    pub fn start_server(&self) {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        );
    }

    /// Stops the server (fast shutdown).
    pub fn stop(&self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
    }

    /// A superuser connection over the Unix socket.
    pub fn client(&self, db: &str) -> postgres::Client {
        self.client_as("postgres", db)
    }

    /// A connection as `user` over the Unix socket (trust).
    pub fn client_as(&self, user: &str, db: &str) -> postgres::Client {
        postgres::Config::new()
            .host_path(self.socket_dir())
            .port(self.port)
            .user(user)
            .dbname(db)
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to {db} as {user}: {e}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self
            .command("pg_ctl")
            .args(["-D".as_ref(), data.as_os_str(), "-m".as_ref(), "immediate".as_ref(), "stop".as_ref()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).expect("open postgresql.conf");
    f.write_all(text.as_bytes()).expect("append postgresql.conf");
}
