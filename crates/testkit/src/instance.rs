//! A seeded LAVA 2017.10 instance: a database cloned from a seeded
//! template, an `instance.conf` and `settings.conf` pointing at it, a media
//! tree matching its rows, and a state directory, all in one temp dir.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use lava_v1_core::config::Paths;

use crate::cluster::{Cluster, LAVA_PASSWORD, LAVA_ROLE};

/// The 2017.10 schema with its migration rows, content types and
/// permissions (this project's own fixture).
pub const SCHEMA_SQL: &str = include_str!("../fixtures/lava-2017.10.sql");
/// The deterministic data generator (`pg_temp.lava_seed(scale)`).
pub const SEED_SQL: &str = include_str!("../fixtures/seed.sql");

/// What [`Instance::enter_maintenance_window`] runs.
pub const MAINTENANCE_WINDOW_SQL: &str = "UPDATE lava_scheduler_app_testjob
    SET status = 4, end_time = coalesce(end_time, submit_time + INTERVAL '1 hour')
  WHERE status IN (0, 1, 5);
 UPDATE lava_scheduler_app_device SET status = 0, current_job_id = NULL
  WHERE status NOT IN (0, 4)";

/// What to put into a new instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Seed {
    /// 0: a fresh 2017.10 install (empty V1 tables); n: about 1,000·n jobs.
    pub scale: u32,
    /// Write the media tree (bundles, attachments, job output).
    pub media: bool,
    /// Rename every constraint the way Django 1.10 sometimes did
    /// (`D<32 hex>`), to prove nothing depends on the 1.11 names.
    pub django110_names: bool,
}

impl Default for Seed {
    fn default() -> Self {
        Seed { scale: 1, media: true, django110_names: false }
    }
}

/// A seeded instance.  Its database is dropped with it.
#[derive(Debug)]
pub struct Instance<'c> {
    /// The cluster it lives in.
    pub cluster: &'c Cluster,
    /// The temp dir holding its configuration, media and state.
    pub dir: tempfile::TempDir,
    /// The database name.
    pub db_name: String,
    /// Paths for the core and the binaries.
    pub paths: Paths,
}

static TEMPLATES: Mutex<Option<HashSet<String>>> = Mutex::new(None);
static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn template_name(seed: &Seed) -> String {
    format!("tmpl_s{}{}", seed.scale, if seed.django110_names { "_dj110" } else { "" })
}

/// Templates made so far, per cluster (by port).
fn template_key(cluster: &Cluster, template: &str) -> String {
    format!("{}/{template}", cluster.port)
}

/// Loads the schema and the seed into `db` (which must be empty and owned
/// by the LAVA role).
pub fn load(cluster: &Cluster, db: &str, seed: &Seed) {
    let mut client = cluster.client_as(LAVA_ROLE, db);
    client.batch_execute(SCHEMA_SQL).expect("load the 2017.10 schema fixture");
    // pg_dump's preamble changes session settings; start clean.
    drop(client);
    let mut client = cluster.client_as(LAVA_ROLE, db);
    if seed.scale > 0 {
        client.batch_execute(SEED_SQL).expect("load the seed generator");
        client
            .batch_execute(&format!("SELECT pg_temp.lava_seed({})", seed.scale))
            .expect("seed the database");
    }
    if seed.django110_names {
        client
            .batch_execute(
                "DO $$ DECLARE c record; BEGIN
                   FOR c IN SELECT con.conname, con.conrelid::regclass::text AS t FROM pg_constraint con
                            JOIN pg_namespace n ON n.oid = con.connamespace
                            WHERE n.nspname = 'public' AND con.contype IN ('f', 'u')
                   LOOP
                     EXECUTE format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', c.t, c.conname,
                                    'D' || md5(c.conname));
                   END LOOP; END $$",
            )
            .expect("rename constraints");
    }
    client.batch_execute("ANALYZE").expect("analyze");
}

impl<'c> Instance<'c> {
    /// A new instance in `cluster`.
    pub fn new(cluster: &'c Cluster, seed: Seed) -> Instance<'c> {
        let template = template_name(&seed);
        {
            let mut made = TEMPLATES.lock().unwrap_or_else(|e| e.into_inner());
            let made = made.get_or_insert_with(HashSet::new);
            if !made.contains(&template_key(cluster, &template)) {
                let mut admin = cluster.client("postgres");
                admin
                    .batch_execute(&format!("CREATE DATABASE {template} OWNER {LAVA_ROLE}"))
                    .expect("create template database");
                load(cluster, &template, &seed);
                made.insert(template_key(cluster, &template));
            }
        }
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let db_name = format!("lava_{}_{n}", std::process::id());
        let mut admin = cluster.client("postgres");
        // Concurrent clones of one template are fine; a clone racing a
        // connection to the template is not, and nothing connects to it.
        admin
            .batch_execute(&format!("CREATE DATABASE {db_name} TEMPLATE {template} OWNER {LAVA_ROLE}"))
            .expect("clone the seeded template");
        let dir = tempfile::Builder::new().prefix("lava-v1-instance.").tempdir().expect("temp dir");
        let paths = write_config(dir.path(), cluster, &db_name);
        let instance = Instance { cluster, dir, db_name, paths };
        if seed.media && seed.scale > 0 {
            instance.write_media();
        }
        instance
    }

    /// A superuser connection to this instance's database.
    pub fn admin(&self) -> postgres::Client {
        self.cluster.client(&self.db_name)
    }

    /// How many V1 (`dashboard_app_*`) tables the database has.
    pub fn v1_table_count(&self) -> i64 {
        self.admin()
            .query_one(
                "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'dashboard\\_app\\_%'",
                &[],
            )
            .expect("count the V1 tables")
            .get(0)
    }

    /// `program` (a `lava-v1` binary) with this instance's configuration
    /// and state directory as its global options.
    pub fn lava_v1(&self, program: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        c.arg("--instance-conf")
            .arg(&self.paths.instance_conf)
            .arg("--settings-conf")
            .arg(&self.paths.settings_conf)
            .arg("--state-dir")
            .arg(&self.paths.state_dir);
        c
    }

    /// A `DPKG_ROOT` for running the postinst against this instance as
    /// after a "yes" (with a backup) at the question (see [`dpkg_root`]).
    /// Made on first use; the same each time.
    pub fn dpkg_root(&self) -> PathBuf {
        dpkg_root(self.dir.path(), &self.paths.instance_conf)
    }

    /// Puts the instance in the maintenance window the upstream page asks
    /// for before the upgrade: every unfinished job canceled, every device
    /// not retired taken offline.  (The seed has jobs of every status.)
    pub fn enter_maintenance_window(&self) {
        self.admin().batch_execute(MAINTENANCE_WINDOW_SQL).expect("enter the maintenance window");
    }

    /// Waits (up to 30 s) until no `lava-v1` session is connected to this
    /// database, e.g. after its client was killed; returns whether they
    /// are all gone.
    pub fn wait_for_lava_v1_sessions_to_end(&self) -> bool {
        let mut admin = self.admin();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let n: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'lava-v1'",
                    &[&self.db_name],
                )
                .expect("read pg_stat_activity")
                .get(0);
            if n == 0 {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The media root.
    pub fn media_root(&self) -> PathBuf {
        self.dir.path().join("media")
    }

    /// Writes the files the database rows point at.
    pub fn write_media(&self) {
        write_media(&mut self.admin(), &self.media_root());
    }
}

impl Drop for Instance<'_> {
    fn drop(&mut self) {
        let mut admin = self.cluster.client("postgres");
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name));
    }
}

/// A `DPKG_ROOT` under `dir` for running the postinst as after a "yes"
/// (with a backup) at the question: `etc/lava-server/` holds a copy of
/// `instance_conf` and a `settings.conf` naming the media root `/media`
/// (so `<root>/media`), `var/lib/lava-server/v1-removal/` (the state
/// directory under that root) the recorded decision.
pub fn dpkg_root(dir: &Path, instance_conf: &Path) -> PathBuf {
    let root = dir.join("root");
    let etc = root.join("etc/lava-server");
    std::fs::create_dir_all(&etc).expect("etc/lava-server");
    std::fs::copy(instance_conf, etc.join("instance.conf")).expect("instance.conf");
    std::fs::write(etc.join("settings.conf"), "{\"MEDIA_ROOT\": \"/media\"}\n").expect("settings.conf");
    let state = root.join("var/lib/lava-server/v1-removal");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(
        state.join("decision"),
        "answer=remove\nold_version=2017.10-1\nnew_version=2017.12-1\ntime=2017-12-01T00:00:00Z\nbackup=yes\n",
    )
    .expect("decision");
    root
}

/// Writes `instance.conf` (as the 2017.10 Debian postinst wrote it) and
/// `settings.conf` under `dir`, and returns the paths.
pub fn write_config(dir: &Path, cluster: &Cluster, db_name: &str) -> Paths {
    let instance_conf = dir.join("instance.conf");
    let settings_conf = dir.join("settings.conf");
    let media = dir.join("media");
    std::fs::create_dir_all(&media).expect("media dir");
    std::fs::write(
        &instance_conf,
        format!(
            "# configuration for LAVA instance\nLAVA_CONFIG_VERSION=\"1.0\"\nLAVA_PREFIX=\"/var/lib/lava-server/\"\n\
             LAVA_INSTANCE=\"default\"\nLAVA_SYS_USER=\"lavaserver\"\n\
             # database\nLAVA_DB_NAME=\"{db_name}\"\nLAVA_DB_USER=\"{LAVA_ROLE}\"\n\
             LAVA_DB_SERVER=\"127.0.0.1\"\nLAVA_DB_PORT=\"{}\"\nLAVA_DB_PASSWORD=\"{LAVA_PASSWORD}\"\n\
             LAVA_SCHEDULER_ENABLED=\"yes\"\n",
            cluster.port
        ),
    )
    .expect("write instance.conf");
    std::fs::write(
        &settings_conf,
        format!("{{\n  \"DEBUG\": false,\n  \"MEDIA_ROOT\": \"{}\"\n}}\n", media.display()),
    )
    .expect("write settings.conf");
    Paths { instance_conf, settings_conf, media_root: None, state_dir: dir.join("state") }
}

fn put(path: &Path, content: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("media subdir");
    }
    std::fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Writes the media tree of a seeded database: bundle files (a few
/// missing, as on real instances), compressed bundles (gzip; a few broken), attachments, test
/// definitions, and every job's output directory in the layout its id and
/// submit time select (legacy `job-<id>` or dated `YYYY/MM/DD/<id>`).
pub fn write_media(client: &mut postgres::Client, media: &Path) {
    let bundles = client
        .query("SELECT id, content, gz_content FROM dashboard_app_bundle ORDER BY id", &[])
        .expect("read bundles");
    for r in bundles {
        let id: i32 = r.get(0);
        if id % 29 == 0 {
            continue; // the row points at a file that is gone
        }
        if let Some(c) = r.get::<_, Option<String>>(1) {
            let body = format!(
                "{{\"format\": \"Dashboard Bundle Format 1.7\", \"test_runs\": [{{\"test_id\": \"lava\", \"bundle\": {id}}}]}}\n"
            );
            put(&media.join(c), body.repeat(1 + (id as usize % 5)).as_bytes());
        }
        if let Some(gz) = r.get::<_, Option<String>>(2) {
            put(&media.join(gz), &compressed_bundle(id));
        }
    }
    for r in client
        .query("SELECT id, content FROM dashboard_app_attachment WHERE content IS NOT NULL ORDER BY id", &[])
        .expect("read attachments")
    {
        let id: i32 = r.get(0);
        let c: String = r.get(1);
        put(&media.join(c), format!("attachment {id}\n").as_bytes());
    }
    for r in client
        .query("SELECT content FROM dashboard_app_testdefinition WHERE content IS NOT NULL", &[])
        .expect("read test definitions")
    {
        let c: String = r.get(0);
        put(&media.join(c), b"metadata:\n  name: smoke\nrun:\n  steps: [true]\n");
    }
    // Output directories: legacy layout for two thirds of the jobs
    // submitted before 2017.5, dated layout for the rest.
    for r in client
        .query(
            "SELECT id, is_pipeline, to_char(submit_time AT TIME ZONE 'UTC', 'YYYY/MM/DD'),
                    submit_time < TIMESTAMPTZ '2017-05-01 00:00:00+00' AND id % 3 <> 0,
                    results_link
             FROM lava_scheduler_app_testjob ORDER BY id",
            &[],
        )
        .expect("read jobs")
    {
        let id: i32 = r.get(0);
        let v2: bool = r.get(1);
        let dated: String = r.get(2);
        let legacy: bool = r.get(3);
        let link: Option<String> = r.get(4);
        let dir = if legacy {
            media.join(format!("job-output/job-{id}"))
        } else {
            media.join(format!("job-output/{dated}/{id}"))
        };
        if v2 {
            put(&dir.join("output.yaml"), format!("- {{msg: job {id}}}\n").as_bytes());
            put(&dir.join("description.yaml"), b"device: {}\n");
        } else {
            put(&dir.join("output.txt"), format!("V1 job {id} log\n").repeat(4).as_bytes());
            if let Some(link) = link {
                put(&dir.join("result-bundle"), format!("http://lava.example.org{link}\n").as_bytes());
            }
        }
    }
}

/// What the seed's compressed bundle `id` decompresses to.
pub fn compressed_bundle_text(id: i32) -> String {
    format!("{{\"format\": \"Dashboard Bundle Format 1.7\", \"compressed\": true, \"bundle\": {id}}}\n")
}

/// The seed's compressed bundle file `id`: gzip of
/// [`compressed_bundle_text`], except every twelfth, which is a gzip
/// header and no valid stream (as a truncated upload leaves).
pub fn compressed_bundle(id: i32) -> Vec<u8> {
    use std::io::Write;
    if id % 12 == 0 {
        let mut body = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        body.extend(format!("compressed bundle {id}").bytes());
        return body;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(compressed_bundle_text(id).as_bytes()).expect("gzip in memory");
    gz.finish().expect("gzip in memory")
}

/// The foreign keys into `lava_scheduler_app_testjob`: (table, name,
/// definition), in order.
pub fn testjob_fks(client: &mut postgres::Client) -> Vec<(String, String, String)> {
    client
        .query(
            "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) FROM pg_constraint
             WHERE contype = 'f' AND confrelid = 'lava_scheduler_app_testjob'::regclass ORDER BY 1, 2",
            &[],
        )
        .expect("read the foreign keys into testjob")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}
