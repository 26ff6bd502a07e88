//! Backups of the V1 data before it is dropped, and their restore.
//!
//! A backup is a directory `lava-v1-<UTC time>` (mode 0700, every file
//! 0600) under `/var/backups/lava-server/` by default, holding:
//!
//! * `v1-tables.dump`: a `pg_dump --format=custom --compress=1` archive of the V1 tables
//!   (schema and data);
//! * `jobs/<table>.copy`: the V1 `TestJob` rows and the rows that depend on
//!   them (tags, viewing groups, failure tags, favourites, device state
//!   transitions, notifications), in `COPY` text format, with their column
//!   lists in the manifest;
//! * `media.tar`: the V1 media directories (symbolic links stored as links,
//!   never followed, one file system; a file hard-linked twice stored as
//!   two copies, so that tar's memory stays flat);
//! * `manifest.json`: versions, row counts, the column lists and the
//!   SHA-256 of every file.
//!
//! The dump and the row copies read one snapshot (`pg_export_snapshot`),
//! so they agree with each other.  The password reaches `pg_dump` through a
//! passfile in memory (an anonymous `memfd` only it inherits), never its
//! argument list, its environment, a log or the disk.  Free space is
//! checked first, and the backup is verified after writing: `pg_restore
//! --list` must read the archive, every table's rows are counted in it,
//! and every file has the size and checksum the manifest records (the
//! checksums computed from the bytes as they were written: the media tar
//! is hashed as it streams from `tar`, which runs while `pg_dump` does;
//! a backup found on disk, to restore or to reuse, is read again whole).
//!
//! It is written into `lava-v1-<UTC time>.incomplete` and renamed to its
//! name only once complete, synced and verified, so a directory with a
//! backup's name is a whole backup even if the run was killed; a later run
//! names what an interrupted one left.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use postgres::GenericClient;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{DbConfig, Paths};
use crate::detect::DbState;
use crate::schema::{exact_pattern, qualified, quote_ident, V1_TABLES};
use crate::{detect, media, state, Error, Result};

/// Where backups go unless told otherwise.
pub const DEFAULT_BACKUP_DIR: &str = "/var/backups/lava-server";

/// The V1 job rows and their dependants: (table, rows to take, where `v1`
/// is the V1 jobs and `{notification}` the notification table; see
/// [`job_filter`]).
const JOB_TABLES: [(&str, &str); 8] = [
    ("lava_scheduler_app_testjob", "NOT is_pipeline"),
    ("lava_scheduler_app_testjob_tags", "testjob_id IN (SELECT id FROM v1)"),
    ("lava_scheduler_app_testjob_viewing_groups", "testjob_id IN (SELECT id FROM v1)"),
    ("lava_scheduler_app_testjob_failure_tags", "testjob_id IN (SELECT id FROM v1)"),
    ("lava_scheduler_app_testjobuser", "test_job_id IN (SELECT id FROM v1)"),
    ("lava_scheduler_app_devicestatetransition", "job_id IN (SELECT id FROM v1)"),
    ("lava_scheduler_app_notification", "test_job_id IN (SELECT id FROM v1)"),
    (
        "lava_scheduler_app_notificationrecipient",
        "notification_id IN (SELECT id FROM {notification} WHERE test_job_id IN (SELECT id FROM v1))",
    ),
];

/// A [`JOB_TABLES`] filter with its tables in `schema`.
fn job_filter(filter: &str, schema: &str) -> String {
    filter.replace("{notification}", &qualified(schema, "lava_scheduler_app_notification"))
}

/// How to take a backup.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// The directory the backup directory is created in.
    pub dir: PathBuf,
    /// `pg_dump` to run.
    pub pg_dump: PathBuf,
    /// `pg_restore` to run (for verification and restore).
    pub pg_restore: PathBuf,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            dir: DEFAULT_BACKUP_DIR.into(),
            pg_dump: "pg_dump".into(),
            pg_restore: "pg_restore".into(),
        }
    }
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the backup directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// The row copy of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCopy {
    /// The table.
    pub table: String,
    /// Its columns, in the order of the copy.
    pub columns: Vec<String>,
    /// Rows copied.
    pub rows: i64,
}

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version.
    pub format: u32,
    /// The tool that wrote it.
    pub tool: String,
    /// When (UTC).
    pub created: String,
    /// The database, without the password.
    pub database: String,
    /// Which database exactly (absent in manifests written before it was
    /// recorded: such a backup is never reused by the postinst).
    #[serde(default)]
    pub identity: Option<DbIdentity>,
    /// PostgreSQL server version.
    pub server_version: String,
    /// The schema every table was read from: the connection's current
    /// schema, the one the drop works on (`public` in manifests written
    /// before it was recorded).
    #[serde(default = "default_schema")]
    pub schema: String,
    /// `pg_dump --version`.
    pub pg_dump_version: String,
    /// V1 tables in the dump, with their row counts.
    pub tables: BTreeMap<String, i64>,
    /// The job-row copies.
    pub job_rows: Vec<RowCopy>,
    /// The media root the tar was taken from, if any V1 media existed.
    pub media_root: Option<PathBuf>,
    /// Every file and its checksum.
    pub files: Vec<FileEntry>,
}

/// Which database a backup is of: what names it in `instance.conf`, and
/// what the server says it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbIdentity {
    /// `current_database()`.
    pub name: String,
    /// The server (host, address or socket directory) and port connected to.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The cluster's `system_identifier` (`pg_control_system()`), unique
    /// per `initdb`; absent where the role may not read it.
    pub system_identifier: Option<String>,
    /// The database's OID in that cluster.
    pub database_oid: i64,
}

impl std::fmt::Display for DbIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "database `{}` (oid {}) on {}:{}, cluster {}",
            self.name,
            self.database_oid,
            self.host,
            self.port,
            self.system_identifier.as_deref().unwrap_or("unknown")
        )
    }
}

/// The identity of the database `client` is connected to.
fn identity<C: GenericClient>(client: &mut C, db: &DbConfig) -> Result<DbIdentity> {
    let row = client
        .query_one(
            "SELECT current_database()::text,
                    (SELECT oid FROM pg_database WHERE datname = current_database())::bigint,
                    CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE')
                         THEN (SELECT system_identifier::text FROM pg_control_system()) END",
            &[],
        )
        .map_err(|e| Error::db("reading which database this is", e, ""))?;
    Ok(DbIdentity {
        name: row.get(0),
        host: db.server.clone(),
        port: db.effective_port()?,
        system_identifier: row.get(2),
        database_oid: row.get(1),
    })
}

/// Why the backup `manifest` describes is not a backup of the V1 data of
/// the database `paths` names as it is now, if it is not: another
/// database (or one the manifest does not name), another schema, or
/// another number of rows in any V1 table or V1 job table.  Read on one
/// snapshot.
pub fn differs_from_live(paths: &Paths, manifest: &Manifest) -> Result<Option<String>> {
    let db = paths.database()?;
    let mut client = crate::db::connect(&db)?;
    let mut tx = crate::db::snapshot(&mut client)?;
    let live = identity(&mut tx, &db)?;
    let Some(recorded) = &manifest.identity else {
        return Ok(Some("its manifest does not say which database it is of".into()));
    };
    let same = recorded.name == live.name
        && recorded.host == live.host
        && recorded.port == live.port
        && recorded.database_oid == live.database_oid
        && (recorded.system_identifier.is_none()
            || live.system_identifier.is_none()
            || recorded.system_identifier == live.system_identifier);
    if !same {
        return Ok(Some(format!("it is a backup of {recorded}, and this is {live}")));
    }
    let schema = crate::db::work_schema(&mut tx)?;
    if schema != manifest.schema {
        return Ok(Some(format!(
            "it is of schema `{}`, and the V1 tables are in `{schema}`",
            manifest.schema
        )));
    }
    let state = detect::inspect(&mut tx, &db.describe(), true)?;
    let tables: BTreeMap<String, i64> =
        state.v1_tables.iter().map(|t| (t.name.clone(), t.rows.unwrap_or(0))).collect();
    for name in tables.keys().chain(manifest.tables.keys()) {
        let (now, then) = (tables.get(name), manifest.tables.get(name));
        if now != then {
            let show = |n: Option<&i64>| n.map_or("no table".to_owned(), |n| format!("{n} rows"));
            return Ok(Some(format!("{name}: {} now, {} in the backup", show(now), show(then))));
        }
    }
    for (table, filter) in JOB_TABLES {
        let now: i64 = tx
            .query_one(
                &format!(
                    "WITH v1 AS (SELECT id FROM {testjob} WHERE NOT is_pipeline)
                     SELECT count(*) FROM {qtable} WHERE {filter}",
                    testjob = qualified(&schema, crate::schema::TESTJOB),
                    qtable = qualified(&schema, table),
                    filter = job_filter(filter, &schema),
                ),
                &[],
            )
            .map_err(|e| Error::db(format!("counting the V1 rows of {table}"), e, ""))?
            .get(0);
        let then = manifest.job_rows.iter().find(|c| c.table == table).map(|c| c.rows);
        if then != Some(now) {
            let then = then.map_or("none".to_owned(), |n| n.to_string());
            return Ok(Some(format!("{table}: {now} V1 rows now, {then} in the backup")));
        }
    }
    Ok(None)
}

fn default_schema() -> String {
    "public".to_owned()
}

/// A finished, verified backup.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    /// The backup directory.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Where the time went, in order: the steps one after the other (tar
    /// runs beside the dump and the row copies; what is left of it is
    /// "waiting for tar").
    pub phases: Vec<Phase>,
}

/// One step of a backup and its wall time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phase {
    /// What was done.
    pub name: &'static str,
    /// How long it took, in microseconds.
    pub us: u64,
}

impl Backup {
    /// The phases as one line: `pg_dump 4.1 s, …`.
    pub fn phases_line(&self) -> String {
        let shown: Vec<String> =
            self.phases.iter().map(|p| format!("{} {:.1} s", p.name, p.us as f64 / 1e6)).collect();
        shown.join(", ")
    }
}

/// Times the steps of a backup one after the other.
struct Clock {
    last: std::time::Instant,
    phases: Vec<Phase>,
}

impl Clock {
    fn start() -> Clock {
        Clock { last: std::time::Instant::now(), phases: Vec::new() }
    }

    /// Ends the phase `name`, which began where the previous one ended.
    fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.phases.push(Phase { name, us: now.duration_since(self.last).as_micros() as u64 });
        self.last = now;
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Backup { path: path.to_owned(), doing: "writing".into(), source }
}

/// Takes a backup of the V1 data of the instance `paths` describe.
pub fn backup(paths: &Paths, options: &BackupOptions) -> Result<Backup> {
    let mut clock = Clock::start();
    let db = paths.database()?;
    let media_root = paths.media_root()?;
    let mut client = crate::db::connect(&db)?;
    let mut tx = crate::db::snapshot(&mut client)?;
    let state = detect::inspect(&mut tx, &db.describe(), true)?;
    // The schema detection counted in and the drop will empty: the backup
    // reads exactly that one, whatever else the search_path holds.
    let schema = crate::db::work_schema(&mut tx)?;
    let v1_media: Vec<media::MediaDir> =
        media::v1_media(&media_root).into_iter().filter(|m| m.exists).collect();
    if state.v1_tables.is_empty() && state.v1_jobs.total == 0 && v1_media.is_empty() {
        return Err(Error::refused("there is no V1 data to back up (no V1 tables, jobs or media)"));
    }

    check_space(&options.dir, needed_bytes(&mut tx, &state, &schema, &v1_media)?, "the backup")?;
    clock.lap("inspecting and sizing");

    let base = &options.dir;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(base).map_err(io_err(base))?;
    let stamp = format!("lava-v1-{}", state::utc_now().replace([':', '-'], ""));
    warn_of_interrupted_backups(base);
    // The backup is written into `<name>.incomplete` and only renamed to
    // `<name>` once it is complete, synced and verified: a directory with
    // a backup's name is always a whole backup, whenever a run is killed.
    // A second backup within the same second (a rerun after a kill) gets
    // its own name; nothing is ever written into an existing directory.
    let mut n = 1;
    let (dir, partial) = loop {
        let name = if n == 1 { stamp.clone() } else { format!("{stamp}-{n}") };
        let (dir, partial) = (base.join(&name), base.join(format!("{name}.{INCOMPLETE}")));
        n += 1;
        if fs::symlink_metadata(&dir).is_ok() {
            continue;
        }
        match fs::DirBuilder::new().mode(0o700).create(&partial) {
            Ok(()) => break (dir, partial),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n <= 1000 => {}
            Err(e) => return Err(io_err(&partial)(e)),
        }
    };
    log::info!("writing the V1 backup to {}", partial.display());
    crate::fault::point("backup-after-space-check");
    let source =
        Source { db: &db, schema: &schema, state: &state, media_root: &media_root, v1_media: &v1_media };
    let finished = write_backup(&mut tx, &source, &partial, options, &mut clock).and_then(|manifest| {
        tx.commit().map_err(|e| Error::db("finishing the backup transaction", e, ""))?;
        verify_with_list(&partial, options, Hashes::AsWritten, &mut clock)?;
        Ok(manifest)
    });
    let manifest = match finished {
        Ok(m) => m,
        Err(e) => {
            // Ours, just made, and not a backup: removed, so that the space
            // it took is free for the rerun.
            let full = is_disk_full(&e, base);
            let removed = discard(base, &partial);
            return Err(if full { Error::DiskFull { path: base.clone(), removed } } else { e });
        }
    };
    crate::fault::point("backup-before-rename");
    // Never over anything that took the name meanwhile.
    nix::fcntl::renameat2(None, &partial, None, &dir, nix::fcntl::RenameFlags::RENAME_NOREPLACE)
        .map_err(|e| io_err(&dir)(e.into()))?;
    sync_file(base)?;
    clock.lap("renaming");
    let made = Backup { path: dir, manifest, phases: clock.phases };
    log::info!("backup complete and verified: {} ({})", made.path.display(), made.phases_line());
    Ok(made)
}

/// Checks, read-only, that what `room` asks for — a backup of the V1 data
/// `state` describes (and of the V1 media under `media_root`), the
/// readable copy of the V1 results (about as big: every row and every
/// file), or both — would fit under `room.dir`.
pub(crate) fn check_room<C: GenericClient>(
    client: &mut C,
    state: &DbState,
    media_root: &Path,
    room: &crate::preflight::Room<'_>,
) -> Result<()> {
    let copies = u64::from(room.backup) + u64::from(room.export);
    if copies == 0 {
        return Ok(());
    }
    let v1_media: Vec<media::MediaDir> =
        media::v1_media(media_root).into_iter().filter(|m| m.exists).collect();
    let schema = crate::db::work_schema(client)?;
    let what = match (room.backup, room.export) {
        (true, true) => "the backup and the readable copy of the V1 results",
        (true, false) => "the backup",
        _ => "the readable copy of the V1 results",
    };
    check_space(room.dir, needed_bytes(client, state, &schema, &v1_media)?.saturating_mul(copies), what)
}

/// An upper bound of a backup's size: the on-disk size of the tables
/// dumped (the compressed archive is smaller), the V1 share of the job
/// table, and the media files as they are (the tar is as big as they are).
fn needed_bytes<C: GenericClient>(
    client: &mut C,
    state: &DbState,
    schema: &str,
    v1_media: &[media::MediaDir],
) -> Result<u64> {
    let table_names: Vec<&str> = state.v1_tables.iter().map(|t| t.name.as_str()).collect();
    let testjob = qualified(schema, crate::schema::TESTJOB);
    let db_bytes: i64 = client
        .query_one(
            &format!(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
               + (SELECT CASE WHEN count(*) = 0 THEN 0
                      ELSE pg_total_relation_size($3::text::regclass) * count(*) FILTER (WHERE NOT is_pipeline) / count(*)
                      END FROM {testjob})::bigint
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $2 AND c.relname = ANY($1)",
            ),
            &[&table_names, &schema, &testjob],
        )
        .map_err(|e| Error::db("estimating the backup size", e, ""))?
        .get(0);
    let media_bytes: u64 = v1_media.iter().map(|m| m.bytes).sum();
    Ok(db_bytes.max(0) as u64 + media_bytes + 1024 * 1024)
}

/// Removes a backup directory this run made and could not finish;
/// returns whether it is gone.
fn discard(base: &Path, partial: &Path) -> bool {
    let Some(name) = partial.file_name() else { return false };
    match crate::fault::remover(base, false) {
        Ok(mut remover) => {
            remover.remove(Path::new(name));
        }
        Err(e) => log::warn!("could not remove the incomplete backup {}: {e}", partial.display()),
    }
    let gone = fs::symlink_metadata(partial).is_err();
    if !gone {
        log::warn!("could not remove the incomplete backup {}; delete it by hand", partial.display());
    }
    gone
}

/// Whether `e` comes from a full disk: our own writes say ENOSPC; of the
/// tools (run with `LC_ALL=C`), pg_dump says so and tar reports a short
/// write; failing those, the backup's file system has (almost) no room
/// left.
fn is_disk_full(e: &Error, base: &Path) -> bool {
    match e {
        Error::Backup { source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => true,
        Error::ToolFailed { stderr, .. }
            if stderr.contains("No space left on device") || stderr.contains("Wrote only") =>
        {
            true
        }
        Error::Backup { .. } | Error::ToolFailed { .. } => nix::sys::statvfs::statvfs(base)
            .is_ok_and(|st| st.blocks_available() * st.fragment_size() < 64 * 1024),
        _ => false,
    }
}

/// The suffix of a backup directory still being written (or left by a
/// run that was interrupted): never a usable backup.
pub const INCOMPLETE: &str = "incomplete";

/// Tells the admin about backups an interrupted run left half-written.
fn warn_of_interrupted_backups(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("lava-v1-") && name.ends_with(&format!(".{INCOMPLETE}")) {
            log::warn!(
                "{} is what an interrupted backup left: it is not a backup, and can be deleted",
                e.path().display()
            );
        }
    }
}

fn check_space(dir: &Path, needed: u64, what: &str) -> Result<()> {
    // The nearest existing ancestor tells the file system.
    let mut probe = dir.to_owned();
    while !probe.exists() {
        if !probe.pop() {
            break;
        }
    }
    let st = nix::sys::statvfs::statvfs(&probe).map_err(|e| Error::Backup {
        path: probe.clone(),
        doing: "checking free space on".into(),
        source: e.into(),
    })?;
    let available = st.blocks_available() as u64 * st.fragment_size() as u64;
    if available < needed {
        return Err(Error::NoSpace { what: what.to_owned(), path: dir.to_owned(), needed, available });
    }
    log::debug!("backup needs at most {needed} bytes, {available} available");
    Ok(())
}

/// What a backup is taken of.
struct Source<'a> {
    db: &'a DbConfig,
    /// The schema the drop works on.
    schema: &'a str,
    state: &'a detect::DbState,
    media_root: &'a Path,
    v1_media: &'a [media::MediaDir],
}

/// Writes the backup into `dir`, on the transaction's snapshot: the V1
/// tables, the V1 job rows, the V1 media, then checksums and the manifest.
fn write_backup(
    tx: &mut postgres::Transaction<'_>,
    src: &Source<'_>,
    dir: &Path,
    options: &BackupOptions,
    clock: &mut Clock,
) -> Result<Manifest> {
    let identity = identity(tx, src.db)?;
    let server_version: String = tx
        .query_one("SHOW server_version", &[])
        .map_err(|e| Error::db("reading the server version", e, ""))?
        .get(0);
    let snapshot: String = tx
        .query_one("SELECT pg_export_snapshot()", &[])
        .map_err(|e| Error::db("exporting the snapshot", e, ""))?
        .get(0);
    let tables: BTreeMap<String, i64> =
        src.state.v1_tables.iter().map(|t| (t.name.clone(), t.rows.unwrap_or(0))).collect();
    let pg_dump_version = tool_version(&options.pg_dump)?;
    // The media are archived while the tables are dumped: tar reads files,
    // pg_dump mostly waits on the server and compresses.
    let tar =
        if src.v1_media.is_empty() { None } else { Some(start_tar(src.media_root, src.v1_media, dir)?) };
    // The job rows are copied on this transaction while pg_dump reads
    // the same snapshot on its own connection.
    let dump =
        if tables.is_empty() { None } else { Some(start_dump(src, dir, &snapshot, tables.keys(), options)?) };
    let job_rows = copy_job_rows(tx, src.schema, dir)?;
    clock.lap("copying the job rows");
    dump.map(DumpJob::finish).transpose()?;
    clock.lap("waiting for pg_dump");
    let media_entry = tar.map(TarJob::finish).transpose()?;
    clock.lap("waiting for tar");
    let media_root_recorded = media_entry.as_ref().map(|_| src.media_root.to_owned());
    let manifest = Manifest {
        format: 1,
        tool: format!("lava-v1 {}", env!("CARGO_PKG_VERSION")),
        created: state::utc_now(),
        database: src.db.describe(),
        identity: Some(identity),
        server_version,
        schema: src.schema.to_owned(),
        pg_dump_version,
        tables,
        job_rows,
        media_root: media_root_recorded,
        files: checksums(dir, media_entry)?,
    };
    clock.lap("checksums");
    let path = dir.join("manifest.json");
    let mut f = private_file(&path)?;
    let text = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(io_err(&path))?;
    sync_file(dir)?;
    clock.lap("manifest");
    Ok(manifest)
}

/// A tool running beside the rest of the backup, its stderr read on a
/// thread of its own.  Dropped before it was waited for (the backup failed
/// elsewhere), it is killed and reaped: nothing goes on writing into the
/// directory being discarded.
struct Tool {
    program: &'static str,
    /// `None` once waited for or killed.
    child: Option<std::process::Child>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Tool {
    /// Starts `cmd`, whose stderr is piped.
    fn spawn(cmd: &mut Command, program: &'static str) -> Result<Tool> {
        log::debug!("running {program}");
        let mut child = cmd.spawn().map_err(|source| Error::Spawn { program: program.into(), source })?;
        let stderr = read_stderr(&mut child);
        Ok(Tool { program, child: Some(child), stderr: Some(stderr) })
    }

    /// Its piped stdout.
    fn take_stdout(&mut self) -> std::process::ChildStdout {
        self.child.as_mut().and_then(|c| c.stdout.take()).expect("the tool's stdout is piped")
    }

    /// Waits for it: its exit status and what it wrote on stderr.
    fn wait(&mut self) -> Result<(std::process::ExitStatus, Vec<u8>)> {
        let mut child = self.child.take().expect("waited for once");
        let status = child.wait().map_err(|source| Error::Spawn { program: self.program.into(), source })?;
        let stderr = self.stderr.take().expect("joined once").join().unwrap_or_default();
        Ok((status, stderr))
    }

    /// Kills and reaps it, unless it was waited for.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.join();
        }
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `pg_dump` of the V1 tables on the exported `snapshot`, running.
struct DumpJob {
    tool: Tool,
    out: PathBuf,
    /// Open until pg_dump is done with it (dropped after `tool`).
    _passfile: PassFile,
}

impl DumpJob {
    /// Waits for pg_dump; its archive, private and synced.
    fn finish(mut self) -> Result<()> {
        let (status, stderr) = self.tool.wait()?;
        exited_ok(self.tool.program, status, &stderr)?;
        set_private(&self.out)?;
        sync_file(&self.out)
    }
}

/// Starts `pg_dump` of the V1 tables on the exported `snapshot`.
fn start_dump<'t>(
    src: &Source<'_>,
    dir: &Path,
    snapshot: &str,
    tables: impl Iterator<Item = &'t String>,
    options: &BackupOptions,
) -> Result<DumpJob> {
    use std::process::Stdio;
    let passfile = PassFile::new(dir, src.db)?;
    let out = dir.join("v1-tables.dump");
    let mut cmd = Command::new(&options.pg_dump);
    cmd.arg("--format=custom")
        // The fastest zlib level: the dump is the longest step of the
        // upgrade's downtime and runs short of CPU, not of disk (at scale
        // 100, 0.75× a default `pg_dump -Fc` + tar, was 1.21×).
        .arg("--compress=1")
        .arg(format!("--file={}", out.display()))
        .arg(format!("--snapshot={snapshot}"))
        .arg("--lock-wait-timeout=30000")
        .arg("--no-password")
        // Every pattern must match its table: nothing left out quietly.
        .arg("--strict-names");
    for t in tables {
        cmd.arg(format!("--table={}", exact_pattern(src.schema, t)));
    }
    libpq_env(&mut cmd, src.db, &passfile)?;
    cmd.env("LC_ALL", "C").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let tool = Tool::spawn(&mut cmd, "pg_dump")?;
    Ok(DumpJob { tool, out, _passfile: passfile })
}

/// The V1 job rows and their dependants, as `COPY` text under `jobs/`.
fn copy_job_rows(tx: &mut postgres::Transaction<'_>, schema: &str, dir: &Path) -> Result<Vec<RowCopy>> {
    let jobs_dir = dir.join("jobs");
    fs::DirBuilder::new().mode(0o700).create(&jobs_dir).map_err(io_err(&jobs_dir))?;
    let mut job_rows = Vec::new();
    for (table, filter) in JOB_TABLES {
        let columns: Vec<String> = tx
            .query(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::text::regclass
                 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[&qualified(schema, table)],
            )
            .map_err(|e| Error::db(format!("reading the columns of {table}"), e, ""))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let cols = columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
        let filter = job_filter(filter, schema);
        let sql = format!(
            "COPY (WITH v1 AS (SELECT id FROM {testjob} WHERE NOT is_pipeline)
                   SELECT {cols} FROM {qtable} WHERE {filter} ORDER BY 1) TO STDOUT",
            testjob = qualified(schema, crate::schema::TESTJOB),
            qtable = qualified(schema, table),
        );
        let path = jobs_dir.join(format!("{table}.copy"));
        let mut file = BufWriter::new(private_file(&path)?);
        let mut reader = tx.copy_out(&sql).map_err(|e| Error::db(format!("copying {table}"), e, ""))?;
        let mut rows = 0i64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(io_err(&path))?;
            if n == 0 {
                break;
            }
            rows += buf[..n].iter().filter(|&&b| b == b'\n').count() as i64;
            file.write_all(&buf[..n]).map_err(io_err(&path))?;
        }
        drop(reader);
        let f = file.into_inner().map_err(|e| io_err(&path)(e.into_error()))?;
        f.sync_all().map_err(io_err(&path))?;
        job_rows.push(RowCopy { table: table.to_owned(), columns, rows });
    }
    sync_file(&jobs_dir)?;
    Ok(job_rows)
}

/// A tar of the V1 media directories, read below the media root opened
/// once, running beside the rest of the backup: its archive goes through
/// this process, which writes it to `media.tar` and hashes it as it
/// streams, so it is read once, not again for its checksum.
struct TarJob {
    tool: Tool,
    /// Writes and hashes the archive: its size and SHA-256.
    writer: Option<std::thread::JoinHandle<std::io::Result<(u64, String)>>>,
    path: PathBuf,
    /// The media root, open while tar may still be entering it.
    _root: nix::dir::Dir,
}

fn start_tar(media_root: &Path, v1_media: &[media::MediaDir], dir: &Path) -> Result<TarJob> {
    use std::process::Stdio;
    let path = dir.join(MEDIA_TAR);
    let mut cmd = Command::new("tar");
    cmd.arg("--create")
        .arg("--file=-")
        .arg("--one-file-system")
        .arg("--sparse")
        // Given more than one directory, GNU tar records every file it
        // archives, not only the hard-linked ones, to spot one named
        // twice: some 85 bytes a file, 62 MiB at 600,000 V1 jobs.  With
        // this it records none; a file linked twice in the V1
        // directories is stored, and restored, as two copies.
        .arg("--hard-dereference")
        .arg("--anchored")
        .arg("--no-wildcards");
    // What the removers will not cross, the backup does not take: a
    // bind mount (same device, so --one-file-system misses it) may
    // hold anything from anywhere.
    // tar reads below the media root opened once, as the removers do
    // (a link swapped in for it later changes nothing), through
    // `/proc/<pid>/fd/<n>`, which names that very directory.
    let root = fdsafe::remove::open_root(media_root)?;
    let root_dir = PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), root.as_raw_fd()));
    let real_root = std::fs::read_link(&root_dir).unwrap_or_else(|_| media_root.to_owned());
    for point in media::mount_points_below(&real_root) {
        if v1_media.iter().any(|m| point.starts_with(&m.name)) {
            log::warn!(
                "not backing up {}: a mount point",
                fdsafe::remove::display_path(&media_root.join(&point))
            );
            cmd.arg("--exclude").arg(&point);
        }
    }
    cmd.arg("-C").arg(&root_dir);
    for m in v1_media {
        cmd.arg(&m.name);
    }
    cmd.env("LC_ALL", "C").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut file = private_file(&path)?;
    let mut tool = Tool::spawn(&mut cmd, "tar")?;
    let mut archive = tool.take_stdout();
    let writer = std::thread::spawn(move || -> std::io::Result<(u64, String)> {
        let written = hash_through(&mut archive, &mut file)?;
        file.sync_all()?;
        Ok(written)
    });
    Ok(TarJob { tool, writer: Some(writer), path, _root: root })
}

impl TarJob {
    /// Waits for tar; the archive's entry for the manifest.
    fn finish(mut self) -> Result<FileEntry> {
        let written = self.writer.take().expect("joined once").join().expect("the archive writer panicked");
        let (status, stderr) = self.tool.wait()?;
        // A full disk shows as our write failing (and tar then as a
        // broken pipe): ours is the error to report.
        let (bytes, sha256) = written.map_err(io_err(&self.path))?;
        exited_ok(self.tool.program, status, &stderr)?;
        Ok(FileEntry { name: MEDIA_TAR.to_owned(), bytes, sha256 })
    }
}

impl Drop for TarJob {
    /// The backup failed elsewhere: tar stops (its archive writer then
    /// sees the end of the pipe), and nothing writes into the directory
    /// about to be removed.
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            self.tool.kill();
            let _ = writer.join();
        }
    }
}

/// Size and SHA-256 of every file the backup holds but the media tar,
/// whose entry comes hashed already.
fn checksums(dir: &Path, media: Option<FileEntry>) -> Result<Vec<FileEntry>> {
    let mut files = Vec::new();
    let mut names = vec![DUMP.to_owned()];
    names.extend(JOB_TABLES.iter().map(|(t, _)| job_file(t)));
    for name in names {
        let path = dir.join(&name);
        if path.exists() {
            let (bytes, sha256) = checksum(&path)?;
            files.push(FileEntry { name, bytes, sha256 });
        }
    }
    files.extend(media);
    Ok(files)
}

/// Checks a backup, which is untrusted input: the manifest parses and
/// names only the V1 and job tables and the files a backup has (each
/// opened inside the backup directory, never through a link, regular
/// files only); every checksum matches; the archive holds nothing but the
/// V1 tables of the manifest's schema (`pg_restore --list`), and the rows
/// of each are as many as the manifest says.
pub fn verify(dir: &Path, options: &BackupOptions) -> Result<Manifest> {
    verify_with_list(dir, options, Hashes::Reread, &mut Clock::start()).map(|(manifest, _)| manifest)
}

/// How [`verify_with_list`] checks the files against their checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hashes {
    /// Every file is read again and hashed: a backup found on disk.
    Reread,
    /// The backup was just written, its checksums computed from the bytes
    /// as they were written and synced: each file's size is checked, not
    /// read again (the archive's rows are still counted from the file).
    AsWritten,
}

/// [`verify`], also returning the archive's entries to restore (a
/// `pg_restore --use-list` file; empty without an archive).
fn verify_with_list(
    dir: &Path,
    options: &BackupOptions,
    hashes: Hashes,
    clock: &mut Clock,
) -> Result<(Manifest, String)> {
    let manifest = read_manifest(dir)?;
    for f in &manifest.files {
        let file = open_backup_file(dir, &f.name)?;
        let matches = match hashes {
            Hashes::Reread => checksum_of(file, &dir.join(&f.name))? == (f.bytes, f.sha256.clone()),
            Hashes::AsWritten => file.metadata().map_err(io_err(&dir.join(&f.name)))?.len() == f.bytes,
        };
        if !matches {
            return Err(Error::BadBackup {
                path: dir.to_owned(),
                reason: format!("{} does not match its checksum in manifest.json", f.name),
            });
        }
    }
    let mut restore_list = String::new();
    if !manifest.tables.is_empty() {
        let dump = dir.join(DUMP);
        let out = Command::new(&options.pg_restore)
            .arg("--list")
            .stdin(open_backup_file(dir, DUMP)?)
            .env("LC_ALL", "C")
            .output()
            .map_err(|source| Error::Spawn { program: "pg_restore".into(), source })?;
        if !out.status.success() {
            return Err(Error::BadBackup {
                path: dump,
                reason: format!("pg_restore --list failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        restore_list = archive_entries(&String::from_utf8_lossy(&out.stdout), &manifest)
            .map_err(|reason| Error::BadBackup { path: dump.clone(), reason })?;
        clock.lap("checking: the archive's entries");
        // Every table's rows, counted in the archive itself: the manifest's
        // counts are the live tables' on the backup's snapshot.
        let counts = archive_row_counts(&options.pg_restore, open_backup_file(dir, DUMP)?, &dump)?;
        clock.lap("checking: the archive's rows");
        let bad = |reason: String| Err(Error::BadBackup { path: dump.clone(), reason });
        for (t, &n) in &manifest.tables {
            match counts.get(&(manifest.schema.clone(), t.clone())) {
                Some(&c) if c == n => {}
                Some(&c) => {
                    return bad(format!(
                        "the archive holds {c} rows of {}, but the table held {n} when the backup was taken",
                        qualified(&manifest.schema, t)
                    ))
                }
                None => {
                    return bad(format!("the archive has no data for {}", qualified(&manifest.schema, t)))
                }
            }
        }
        if let Some((s, t)) =
            counts.keys().find(|(s, t)| *s != manifest.schema || !manifest.tables.contains_key(t))
        {
            return bad(format!(
                "the archive holds data for {}, which manifest.json does not list",
                qualified(s, t)
            ));
        }
    }
    Ok((manifest, restore_list))
}

/// The archive of the V1 tables, in a backup.
const DUMP: &str = "v1-tables.dump";
/// The tar of the V1 media, in a backup.
const MEDIA_TAR: &str = "media.tar";

/// The row copy of a job table, in a backup.
fn job_file(table: &str) -> String {
    format!("jobs/{table}.copy")
}

/// The one [`JOB_TABLES`] entry named `name`.
fn job_table(name: &str) -> Option<(&'static str, &'static str)> {
    JOB_TABLES.iter().copied().find(|(t, _)| *t == name)
}

/// Opens the file `name` of the backup `dir` (see [`fdsafe::fd::open_in`]).
fn open_backup_file(dir: &Path, name: &str) -> Result<File> {
    fdsafe::fd::open_in(dir, name).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput => Error::BadBackup {
            path: dir.to_owned(),
            reason: format!("{e}: a backup holds only regular files inside its directory"),
        },
        _ => Error::ReadFile { path: dir.join(name), what: "backup file", source: e },
    })
}

/// Checks what a manifest names, before anything uses it: only V1 tables,
/// only the job tables a backup copies (each once, with columns, each
/// once), and only the files a backup has, each listed once; every
/// table's data has its file.
fn check_manifest(path: &Path, m: &Manifest) -> Result<()> {
    let bad = |reason: String| Err(Error::BadBackup { path: path.to_owned(), reason });
    if let Some(t) = m.tables.keys().find(|t| !V1_TABLES.contains(&t.as_str())) {
        return bad(format!("it lists {t:?} as a V1 table, and it is not one; refused"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for copy in &m.job_rows {
        if job_table(&copy.table).is_none() {
            return bad(format!(
                "it lists rows of {:?}, which is not one of the V1 job tables; refused",
                copy.table
            ));
        }
        if !seen.insert(copy.table.as_str()) {
            return bad(format!("it lists the rows of {} twice", copy.table));
        }
        let mut columns = std::collections::BTreeSet::new();
        if copy.columns.is_empty() || !copy.columns.iter().all(|c| columns.insert(c.as_str())) {
            return bad(format!("the columns it lists for {} are empty or repeated", copy.table));
        }
    }
    let mut known: Vec<String> = vec![DUMP.to_owned(), MEDIA_TAR.to_owned()];
    known.extend(JOB_TABLES.iter().map(|(t, _)| job_file(t)));
    let mut files = std::collections::BTreeSet::new();
    for f in &m.files {
        if !known.contains(&f.name) {
            return bad(format!("it names the file {:?}, which is not a file of a backup; refused", f.name));
        }
        if !files.insert(f.name.as_str()) {
            return bad(format!("it lists {} twice", f.name));
        }
    }
    let mut needed: Vec<String> = m.job_rows.iter().map(|c| job_file(&c.table)).collect();
    if !m.tables.is_empty() {
        needed.push(DUMP.to_owned());
    }
    if let Some(missing) = needed.iter().find(|n| !files.contains(n.as_str())) {
        return bad(format!("it has no checksum for {missing}"));
    }
    Ok(())
}

/// What of an archive may be restored, from `pg_restore --list`: every
/// entry must belong to a V1 table of the manifest, in the manifest's
/// schema — the table, its data, its sequences, defaults, constraints and
/// indexes (grants and comments on them are left out).  Anything else
/// (another table, a view, a function, another schema) refuses the whole
/// archive.  Returns the entries to restore, as a `--use-list` file.
fn archive_entries(listing: &str, m: &Manifest) -> std::result::Result<String, String> {
    // Longest first: "SEQUENCE OWNED BY" before "SEQUENCE".
    const KINDS: [&str; 11] = [
        "SEQUENCE OWNED BY",
        "SEQUENCE SET",
        "FK CONSTRAINT",
        "TABLE DATA",
        "CONSTRAINT",
        "SEQUENCE",
        "DEFAULT",
        "COMMENT",
        "INDEX",
        "TABLE",
        "ACL",
    ];
    let is_v1 = |t: &str| m.tables.contains_key(t);
    let mut list = String::new();
    for line in listing.lines() {
        if line.trim().is_empty() || line.starts_with(';') {
            continue;
        }
        let refuse = || format!("the archive holds something other than the V1 tables: {line:?}; refused");
        // `<id>; <catalog oid> <oid> <kind> <schema> <name…> <owner>`
        let rest = line.split_once("; ").map(|(_, r)| r).ok_or_else(refuse)?;
        let mut words = rest.splitn(3, ' ');
        let (_, _, rest) = (words.next(), words.next(), words.next().ok_or_else(refuse)?);
        let kind = KINDS.iter().find(|k| rest.starts_with(&format!("{k} "))).ok_or_else(refuse)?;
        let words: Vec<&str> = rest[kind.len() + 1..].split(' ').collect();
        let (schema, name) = match words.as_slice() {
            [schema, name @ .., _owner] if !name.is_empty() => (*schema, name),
            _ => return Err(refuse()),
        };
        let (restore, ok) = match *kind {
            "TABLE" | "TABLE DATA" => (true, schema == m.schema && name.len() == 1 && is_v1(name[0])),
            // `<table> <constraint>`, `<table> <column>`
            "CONSTRAINT" | "FK CONSTRAINT" | "DEFAULT" => {
                (true, schema == m.schema && name.len() == 2 && is_v1(name[0]))
            }
            // A V1 table's own sequence: `<table>_<column>_seq`.
            "SEQUENCE" | "SEQUENCE OWNED BY" | "SEQUENCE SET" => (
                true,
                schema == m.schema
                    && name.len() == 1
                    && name[0].ends_with("_seq")
                    && m.tables.keys().any(|t| name[0].starts_with(&format!("{t}_"))),
            ),
            // An index names no table in the listing: in the V1 tables' namespace.
            "INDEX" => (true, schema == m.schema && name.len() == 1 && name[0].starts_with("dashboard_app_")),
            // `TABLE <table>` / `COLUMN <table>.<column>`: left out.
            "ACL" | "COMMENT" => (
                false,
                schema == m.schema
                    && name.len() == 2
                    && match name[0] {
                        "TABLE" => is_v1(name[1]),
                        "COLUMN" => name[1].split_once('.').is_some_and(|(t, _)| is_v1(t)),
                        _ => false,
                    },
            ),
            _ => (false, false),
        };
        if !ok {
            return Err(refuse());
        }
        if restore {
            list.push_str(line);
            list.push('\n');
        }
    }
    Ok(list)
}

/// The rows of every table in a custom-format archive, by (schema, table):
/// `pg_restore --data-only` writes each `TABLE DATA` entry as a comment
/// naming it and a `COPY … FROM stdin;` block with one line per row,
/// ended by `\.`.
fn archive_row_counts(
    pg_restore: &Path,
    input: File,
    dump: &Path,
) -> Result<BTreeMap<(String, String), i64>> {
    use std::io::BufRead;
    let mut child = Command::new(pg_restore)
        .args(["--data-only", "--file=-"])
        .stdin(input)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .env("LC_ALL", "C")
        .spawn()
        .map_err(|source| Error::Spawn { program: "pg_restore".into(), source })?;
    let errors = read_stderr(&mut child);
    let mut stdout =
        std::io::BufReader::with_capacity(256 * 1024, child.stdout.take().expect("piped stdout"));
    let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    let mut in_copy = false;
    let mut stray_copy = false;
    // One line buffer for the whole stream, and the rows of the table
    // being read counted apart: millions of rows, no allocation each.
    let mut line = Vec::with_capacity(4096);
    let mut rows = 0i64;
    loop {
        line.clear();
        let read = stdout.read_until(b'\n', &mut line).map_err(|source| Error::ReadFile {
            path: dump.to_owned(),
            what: "pg_restore's output for",
            source,
        })?;
        if read == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if in_copy {
            if line == b"\\." {
                in_copy = false;
                if let Some(key) = &current {
                    *counts.entry(key.clone()).or_default() += rows;
                }
            } else {
                rows += 1;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix(b"-- Data for Name: ") {
            current = parse_entry_comment(&String::from_utf8_lossy(rest));
            if let Some(key) = &current {
                counts.entry(key.clone()).or_default();
            }
        } else if line.starts_with(b"COPY ") && line.ends_with(b" FROM stdin;") {
            stray_copy |= current.is_none();
            in_copy = true;
            rows = 0;
        }
    }
    let status = child.wait().map_err(|source| Error::Spawn { program: "pg_restore".into(), source })?;
    let errors = errors.join().unwrap_or_default();
    if !status.success() || in_copy {
        return Err(Error::BadBackup {
            path: dump.to_owned(),
            reason: format!(
                "pg_restore cannot read the archive's data: {}",
                String::from_utf8_lossy(&errors).trim()
            ),
        });
    }
    if stray_copy {
        return Err(Error::BadBackup {
            path: dump.to_owned(),
            reason: "the archive holds rows outside any table's data entry".into(),
        });
    }
    Ok(counts)
}

/// `(schema, table)` of a `TABLE DATA` entry from the rest of pg_restore's
/// comment `-- Data for Name: <table>; Type: <type>; Schema: <schema>;
/// Owner: <owner>`; `None` for other types (a sequence's value).
fn parse_entry_comment(rest: &str) -> Option<(String, String)> {
    let (name, rest) = rest.split_once("; Type: ")?;
    let rest = rest.strip_prefix("TABLE DATA; Schema: ")?;
    let schema = rest.rfind("; Owner: ").map_or(rest, |i| &rest[..i]);
    Some((schema.to_owned(), name.to_owned()))
}

/// Reads `manifest.json` (a regular file, not a link) and checks what it
/// names: a backup directory is untrusted input.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let mut text = String::new();
    open_backup_file(dir, "manifest.json")?
        .take(64 * 1024 * 1024)
        .read_to_string(&mut text)
        .map_err(|source| Error::ReadFile { path: path.clone(), what: "backup manifest", source })?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::BadBackup { path: path.clone(), reason: e.to_string() })?;
    check_manifest(&path, &manifest)?;
    Ok(manifest)
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreSummary {
    /// Tables restored.
    pub tables: usize,
    /// Whether their schema was created (else only data was loaded into
    /// existing, empty tables).
    pub created_schema: bool,
    /// Rows restored per job table.
    pub job_rows: BTreeMap<String, u64>,
    /// Job rows skipped because a row with the same key already existed.
    pub job_rows_skipped: BTreeMap<String, u64>,
}

/// Restores a backup into the database `paths` names, meant for an
/// archive instance kept on LAVA 2017.10.  Refuses when V1 tables there
/// hold any row.
pub fn restore(paths: &Paths, dir: &Path, options: &BackupOptions) -> Result<RestoreSummary> {
    // Everything the manifest names is checked here, before anything is
    // done with it; the archive is restored only as far as `restore_list`.
    let (manifest, restore_list) = verify_with_list(dir, options, Hashes::Reread, &mut Clock::start())?;
    let db = paths.database()?;
    let mut client = crate::db::connect(&db)?;
    let state = detect::inspect(&mut client, &db.describe(), true)?;
    // pg_restore puts every table back into the schema it was dumped from.
    let schema = crate::db::work_schema(&mut client)?;
    if schema != manifest.schema {
        return Err(Error::refused(format!(
            "the backup was taken from schema `{}`, but {} works on schema `{schema}` (the first of its search_path that exists); restore needs the same schema",
            manifest.schema,
            db.describe()
        )));
    }
    let wanted: Vec<&String> = manifest.tables.keys().collect();
    let existing: Vec<&detect::TableRows> =
        state.v1_tables.iter().filter(|t| wanted.contains(&&t.name)).collect();
    if let Some(t) = existing.iter().find(|t| t.rows.unwrap_or(0) > 0) {
        return Err(Error::refused_with_hint(
            format!(
                "{} already holds V1 data ({} has {} rows); restore only into an instance without V1 data",
                db.describe(),
                t.name,
                t.rows.unwrap_or(0)
            ),
            "restore into a separate archive instance kept on LAVA 2017.10",
        ));
    }
    let created_schema = existing.is_empty();
    if !created_schema && existing.len() != wanted.len() {
        return Err(Error::refused(format!(
            "{} has only some of the V1 tables ({} of {}); restore needs all or none",
            db.describe(),
            existing.len(),
            wanted.len()
        )));
    }
    let mut summary = RestoreSummary { tables: wanted.len(), created_schema, ..Default::default() };
    if !wanted.is_empty() {
        let passfile = PassFile::new(dir, &db)?;
        let mut cmd = Command::new(&options.pg_restore);
        cmd.args([
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
        ]);
        if !created_schema {
            cmd.arg("--data-only");
        }
        // Only the checked entries, from the archive opened in the backup
        // directory (never through a link).
        let list =
            fdsafe::fd::memory_file("lava-v1-restore-list", restore_list.as_bytes()).map_err(|source| {
                Error::Backup { path: dir.to_owned(), doing: "preparing the restore of".into(), source }
            })?;
        let list_path = fdsafe::fd::inherit(&mut cmd, &list);
        cmd.arg(format!("--use-list={list_path}"))
            .arg(format!("--dbname={}", db.effective_name()))
            .stdin(open_backup_file(dir, DUMP)?);
        libpq_env(&mut cmd, &db, &passfile)?;
        run(&mut cmd, "pg_restore")?;
    }

    // The job rows, in one transaction; rows whose key exists are kept.
    let mut tx = client.transaction().map_err(|e| Error::db("starting the job restore", e, ""))?;
    for copy in &manifest.job_rows {
        // Nothing of the manifest is formatted into SQL: the table is ours
        // (checked against JOB_TABLES), the columns the catalogue's.
        let (table, _) = job_table(&copy.table).ok_or_else(|| Error::BadBackup {
            path: dir.to_owned(),
            reason: format!("{:?} is not a V1 job table", copy.table),
        })?;
        let qtable = qualified(&schema, table);
        let live: Vec<String> = tx
            .query(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::text::regclass
                 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[&qtable],
            )
            .map_err(|e| Error::db(format!("reading the columns of {table}"), e, ""))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut columns = Vec::new();
        for c in &copy.columns {
            match live.iter().find(|l| *l == c) {
                Some(l) => columns.push(quote_ident(l)),
                None => {
                    return Err(Error::refused(format!(
                        "the backup's rows of {table} have a column {c:?} that {table} here does not have; nothing was restored"
                    )))
                }
            }
        }
        let cols = columns.join(", ");
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE restore_rows ON COMMIT DROP AS SELECT {cols} FROM {qtable} WITH NO DATA"
        ))
        .map_err(|e| Error::db(format!("preparing the restore of {table}"), e, ""))?;
        let path = dir.join(job_file(table));
        let mut data = open_backup_file(dir, &job_file(table))?;
        let mut writer = tx
            .copy_in(&format!("COPY restore_rows ({cols}) FROM STDIN"))
            .map_err(|e| Error::db(format!("restoring {}", copy.table), e, ""))?;
        std::io::copy(&mut data, &mut writer).map_err(io_err(&path))?;
        writer.finish().map_err(|e| Error::db(format!("restoring {}", copy.table), e, ""))?;
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO {qtable} ({cols}) SELECT {cols} FROM restore_rows ON CONFLICT DO NOTHING"
                ),
                &[],
            )
            .map_err(|e| Error::db(format!("restoring {}", copy.table), e, ""))?;
        tx.batch_execute("DROP TABLE restore_rows")
            .map_err(|e| Error::db("cleaning up the restore", e, ""))?;
        summary.job_rows.insert(copy.table.clone(), inserted);
        summary
            .job_rows_skipped
            .insert(copy.table.clone(), copy.rows.max(0) as u64 - inserted.min(copy.rows.max(0) as u64));
    }
    tx.commit().map_err(|e| Error::db("committing the job restore", e, ""))?;
    Ok(summary)
}

/// The password for libpq, in an anonymous memory file (mode 0600, a
/// regular file as libpq requires) that only the program it is handed to
/// inherits, as `PGPASSFILE=/proc/self/fd/<n>`: it never lands on any
/// file system, so no kill can leave it behind.
struct PassFile(File);

impl PassFile {
    fn new(dir: &Path, db: &DbConfig) -> Result<PassFile> {
        let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
        let line = format!(
            "{}:{}:{}:{}:{}\n",
            esc(&db.server),
            db.effective_port()?,
            esc(&db.effective_name()),
            esc(&db.effective_user()),
            esc(&db.password)
        );
        fdsafe::fd::memory_file("lava-v1-pgpass", line.as_bytes()).map(PassFile).map_err(|source| {
            Error::Backup {
                path: dir.to_owned(),
                doing: "preparing the password for pg_dump and pg_restore, for".into(),
                source,
            }
        })
    }
}

/// Connection settings for libpq programs, through the environment and a
/// passfile in memory: nothing secret on the command line, in the
/// environment or on disk.
fn libpq_env(cmd: &mut Command, db: &DbConfig, passfile: &PassFile) -> Result<()> {
    let passfile = fdsafe::fd::inherit(cmd, &passfile.0);
    cmd.env_remove("PGPASSWORD")
        .env("PGHOST", &db.server)
        .env("PGPORT", db.effective_port()?.to_string())
        .env("PGUSER", db.effective_user())
        .env("PGDATABASE", db.effective_name())
        .env("PGPASSFILE", passfile)
        .env("PGCONNECT_TIMEOUT", "15")
        .env("PGSSLMODE", "prefer")
        .env("PGAPPNAME", "lava-v1");
    Ok(())
}

fn run(cmd: &mut Command, program: &str) -> Result<()> {
    log::debug!("running {program}");
    let out = cmd.output().map_err(|source| Error::Spawn { program: program.into(), source })?;
    exited_ok(program, out.status, &out.stderr)
}

/// A tool's exit: [`Error::ToolFailed`] with what it printed on stderr
/// unless it succeeded.
fn exited_ok(program: &str, status: std::process::ExitStatus, stderr: &[u8]) -> Result<()> {
    if status.success() {
        return Ok(());
    }
    Err(Error::ToolFailed {
        program: program.into(),
        status: status.to_string(),
        stderr: String::from_utf8_lossy(stderr).trim().to_owned(),
    })
}

/// Reads a spawned tool's piped stderr to its end on a thread of its own,
/// so that a tool writing much there never blocks on a full pipe.
fn read_stderr(child: &mut std::process::Child) -> std::thread::JoinHandle<Vec<u8>> {
    let mut errors = child.stderr.take().expect("the tool's stderr is piped");
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = errors.read_to_end(&mut text);
        text
    })
}

fn tool_version(program: &Path) -> Result<String> {
    let out = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|source| Error::Spawn { program: program.display().to_string(), source })?;
    // A dump tool that cannot even say its version is not one to trust
    // with the backup; nor is a manifest with an empty version.
    let name = format!("{} --version", program.display());
    exited_ok(&name, out.status, &out.stderr)?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if version.is_empty() {
        return Err(Error::ToolFailed {
            program: name,
            status: out.status.to_string(),
            stderr: "it printed nothing".into(),
        });
    }
    Ok(version)
}

/// Makes a file (or a directory's entries) durable.
fn sync_file(path: &Path) -> Result<()> {
    File::open(path).and_then(|f| f.sync_all()).map_err(io_err(path))
}

fn private_file(path: &Path) -> Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io_err(path))
}

fn set_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err(path))
}

fn checksum(path: &Path) -> Result<(u64, String)> {
    let f = File::open(path).map_err(|source| Error::ReadFile {
        path: path.to_owned(),
        what: "backup file",
        source,
    })?;
    checksum_of(f, path)
}

fn checksum_of(mut f: File, path: &Path) -> Result<(u64, String)> {
    hash_through(&mut f, &mut std::io::sink()).map_err(|source| Error::ReadFile {
        path: path.to_owned(),
        what: "backup file",
        source,
    })
}

/// Copies `from` to its end into `to`: the bytes and their SHA-256.
fn hash_through(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok((total, hex(&hasher.finalize())))
}

/// A digest in lower-case hex.
pub(crate) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rows and hashes of everything V1: the V1 tables, and the V1 job rows and
/// their dependants.  Two instances with equal V1 fingerprints hold the same
/// V1 data.
pub fn v1_fingerprint<C: GenericClient>(client: &mut C) -> Result<BTreeMap<String, (i64, String)>> {
    let mut out = BTreeMap::new();
    let schema = crate::db::work_schema(client)?;
    let tables: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $2 AND c.relkind = 'r' AND c.relname = ANY($1) ORDER BY 1",
            &[&crate::schema::V1_TABLES.to_vec(), &schema],
        )
        .map_err(|e| Error::db("listing the V1 tables", e, ""))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut sources: Vec<(String, String)> = tables
        .into_iter()
        .map(|t| (t.clone(), format!("SELECT * FROM {}", qualified(&schema, &t))))
        .collect();
    for (table, filter) in JOB_TABLES {
        sources.push((
            format!("{table} (V1 jobs)"),
            format!(
                "WITH v1 AS (SELECT id FROM {testjob} WHERE NOT is_pipeline)
                 SELECT * FROM {qtable} WHERE {filter}",
                testjob = qualified(&schema, crate::schema::TESTJOB),
                qtable = qualified(&schema, table),
                filter = job_filter(filter, &schema),
            ),
        ));
    }
    for (name, select) in sources {
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '')
                     FROM (SELECT md5(x::text) AS h FROM ({select}) x) y"
                ),
                &[],
            )
            .map_err(|e| Error::db(format!("hashing {name}"), e, ""))?;
        out.insert(name, (row.get(0), row.get(1)));
    }
    Ok(out)
}
