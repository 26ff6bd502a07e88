//! The V1 results kept readable: `lava-v1 export` writes them into one
//! self-contained SQLite file that any tool opens (the `sqlite3` shell,
//! Python, Datasette, a spreadsheet import), so an instance can upgrade
//! and still answer "what did job 4711 report on that board in 2016?".
//!
//! The file (mode 0600) holds, read on one snapshot (REPEATABLE READ,
//! read-only):
//!
//! * every row of every `dashboard_app_*` table, in tables of the same
//!   names and columns, with their primary keys, unique constraints (as
//!   unique indexes), the foreign keys between them and indexes on the
//!   foreign-key columns.  Types follow PostgreSQL's: integers and
//!   booleans (0/1) are `INTEGER`, floats `REAL`, `bytea` a `BLOB`,
//!   timestamps ISO 8601 UTC `TEXT` (`2016-03-04T12:34:56.000000Z`;
//!   `infinity`, `-infinity` and years outside 1–9999 as PostgreSQL
//!   writes them), everything else (text, `numeric`, kept exact) `TEXT`;
//! * `testjob`: the V1 jobs (`is_pipeline` false) with their definitions
//!   and, by name, what they refer to (submitter user name, device
//!   hostnames, device type); `testjob_tag` their tags.  No password
//!   hash, e-mail address or other personal column beyond the user name;
//! * `media_bundle`, `media_attachment`, `media_testdefinition`: the V1
//!   media files as BLOBs keyed to their rows (compressed bundles
//!   decompressed), each with its SHA-256, read below the media root
//!   opened once, every component `O_NOFOLLOW`, never crossing into
//!   another file system; what cannot be read is a row of
//!   `export_problems`, not an error;
//! * the views `v1_results`, `v1_jobs` and `v1_test_runs` (see
//!   [`SCHEMA_NOTES`]), and `export_info` (instance, database, source rows
//!   per table, times, tool version, the notes).
//!
//! Rows stream (`COPY … TO STDOUT`, read and decoded on one thread,
//! inserted on another, several rows per prepared insert in large
//! transactions, `journal_mode=OFF` and `synchronous=OFF`: the file is
//! written as `<name>.incomplete` and only renamed once complete); media
//! files are opened, read and hashed by two threads, in chunks, while the
//! writer stores those before, large ones through SQLite's incremental
//! BLOB I/O, so memory stays flat whatever the size.  Before the rename
//! the file is checked: the rows of every table against the source's on
//! the snapshot, `PRAGMA integrity_check` (as `PRAGMA quick_check` and a
//! per-table `PRAGMA integrity_check(table)`, which together are the same
//! checks, on two threads), `PRAGMA foreign_key_check`, and every BLOB
//! against its SHA-256.  A file with the final name is always a whole, checked
//! export.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, MAIN_DB};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::backup::hex;
use crate::config::{InstanceConf, Paths};
use crate::schema::{qualified, quote_ident, TESTJOB, V1_TABLES};
use crate::{detect, state, Error, Result};

/// Where exports go unless told otherwise (beside the backups).
pub const DEFAULT_EXPORT_DIR: &str = crate::backup::DEFAULT_BACKUP_DIR;

/// The suffix of an export still being written, or left by a killed run.
pub const INCOMPLETE: &str = "incomplete";

/// Rows per SQLite transaction while loading.
const ROWS_PER_TRANSACTION: u64 = 500_000;

/// Rows per insert statement while loading, at most.
const ROWS_PER_INSERT: usize = 64;

/// The most parameters one SQLite statement takes (3.32 and later).
const SQLITE_MAX_VARIABLES: usize = 32_766;

/// The largest file (or decompressed bundle) stored as a BLOB: SQLite's
/// default limit on the length of a value is 1,000,000,000 bytes.
const MAX_BLOB: u64 = 1_000_000_000;

/// How to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The file to write; `None`: a new `lava-v1-results-<time>.sqlite`
    /// in `dir`.
    pub output: Option<PathBuf>,
    /// The directory a file without an explicit name goes into.
    pub dir: PathBuf,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { output: None, dir: DEFAULT_EXPORT_DIR.into() }
    }
}

/// A finished, checked export.
#[derive(Debug, Clone, Serialize)]
pub struct Export {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Rows per table, as the source had them on the snapshot (and the
    /// file has them: checked).
    pub tables: BTreeMap<String, i64>,
    /// V1 jobs exported.
    pub jobs: i64,
    /// Media files stored.
    pub media_files: u64,
    /// Bytes of media stored (decompressed).
    pub media_bytes: u64,
    /// Rows of `export_problems`: media files missing or unreadable.
    pub problems: u64,
}

/// What each view's columns mean; also stored in `export_info` under
/// `schema_notes`.
pub const SCHEMA_NOTES: &str = "\
Views (read these; no knowledge of the V1 schema needed):

v1_results: one row per V1 test result.
  job_id        the V1 job (testjob.id) whose bundle holds the result; NULL for bundles uploaded without a job
  submit_time   when the job was submitted (ISO 8601, UTC)
  end_time      when the job ended (ISO 8601, UTC), NULL if it never did
  device        hostname of the device the job ran on
  device_type   that device's type (else the type the job asked for)
  submitter     user name of the job's submitter
  bundle_stream pathname of the bundle stream (e.g. /anonymous/lab/)
  test          the test suite's name (dashboard_app_test.test_id)
  test_case     the test case's name (dashboard_app_testcase.test_case_id), NULL if none
  result        pass, fail, skip or unknown
  measurement   the measured value, as text, NULL if none
  units         the test case's units
  message       the result's message, NULL if none
  timestamp     when the result was recorded (ISO 8601, UTC)
  bundle_id, test_run_id, test_result_id: keys into the dashboard_app_* tables

v1_jobs: one row per V1 job.
  job_id, submit_time, start_time, end_time, status (submitted, running, complete, incomplete,
  canceled, canceling), health_check (0/1), device, device_type, submitter, description,
  tags (comma-separated), bundle_id, bundle_stream, test_runs (how many), results (how many),
  definition (the JSON job definition)

v1_test_runs: one row per V1 test run.
  test_run_id, job_id, bundle_id, bundle_stream, test, uuid (analyzer_assigned_uuid),
  run_date (analyzer_assigned_date, ISO 8601 UTC), device, device_type, submitter,
  pass, fail, skip, unknown (counts of its results)

Tables: dashboard_app_* (every V1 table, every row, the same columns; booleans 0/1, times ISO 8601 UTC text, infinity as infinity);
testjob and testjob_tag (the V1 jobs and their tags, by name); media_bundle, media_attachment,
media_testdefinition (the V1 files as BLOBs with SHA-256; compressed bundles decompressed, decompressed = 1);
export_problems (files that could not be stored, and why); export_info (this file's provenance).
";

/// `v1_results`.
const VIEW_RESULTS: &str = "CREATE VIEW v1_results AS
SELECT j.id AS job_id, j.submit_time, j.end_time, j.actual_device AS device, j.device_type,
       j.submitter, s.pathname AS bundle_stream, t.test_id AS test, c.test_case_id AS test_case,
       CASE r.result WHEN 0 THEN 'pass' WHEN 1 THEN 'fail' WHEN 2 THEN 'skip' ELSE 'unknown' END AS result,
       r.measurement, c.units, r.message, r.\"timestamp\" AS \"timestamp\",
       b.id AS bundle_id, tr.id AS test_run_id, r.id AS test_result_id
FROM dashboard_app_testresult r
JOIN dashboard_app_testrun tr ON tr.id = r.test_run_id
JOIN dashboard_app_bundle b ON b.id = tr.bundle_id
JOIN dashboard_app_bundlestream s ON s.id = b.bundle_stream_id
JOIN dashboard_app_test t ON t.id = tr.test_id
LEFT JOIN dashboard_app_testcase c ON c.id = r.test_case_id
LEFT JOIN testjob j ON j.results_bundle_id = b.id";

/// `v1_jobs`.
const VIEW_JOBS: &str = "CREATE VIEW v1_jobs AS
SELECT j.id AS job_id, j.submit_time, j.start_time, j.end_time, j.status_name AS status,
       j.health_check, j.actual_device AS device, j.device_type, j.submitter, j.description,
       (SELECT group_concat(tag, ', ') FROM (SELECT tag FROM testjob_tag g WHERE g.testjob_id = j.id ORDER BY tag)) AS tags,
       j.results_bundle_id AS bundle_id, s.pathname AS bundle_stream,
       (SELECT count(*) FROM dashboard_app_testrun tr WHERE tr.bundle_id = j.results_bundle_id) AS test_runs,
       (SELECT count(*) FROM dashboard_app_testrun tr JOIN dashboard_app_testresult r ON r.test_run_id = tr.id
         WHERE tr.bundle_id = j.results_bundle_id) AS results,
       j.definition
FROM testjob j
LEFT JOIN dashboard_app_bundle b ON b.id = j.results_bundle_id
LEFT JOIN dashboard_app_bundlestream s ON s.id = b.bundle_stream_id";

/// `v1_test_runs`.
const VIEW_TEST_RUNS: &str = "CREATE VIEW v1_test_runs AS
SELECT tr.id AS test_run_id, j.id AS job_id, b.id AS bundle_id, s.pathname AS bundle_stream,
       t.test_id AS test, tr.analyzer_assigned_uuid AS uuid, tr.analyzer_assigned_date AS run_date,
       j.actual_device AS device, j.device_type, j.submitter,
       (SELECT count(*) FROM dashboard_app_testresult r WHERE r.test_run_id = tr.id AND r.result = 0) AS pass,
       (SELECT count(*) FROM dashboard_app_testresult r WHERE r.test_run_id = tr.id AND r.result = 1) AS fail,
       (SELECT count(*) FROM dashboard_app_testresult r WHERE r.test_run_id = tr.id AND r.result = 2) AS skip,
       (SELECT count(*) FROM dashboard_app_testresult r WHERE r.test_run_id = tr.id AND r.result NOT IN (0, 1, 2)) AS unknown
FROM dashboard_app_testrun tr
JOIN dashboard_app_bundle b ON b.id = tr.bundle_id
JOIN dashboard_app_bundlestream s ON s.id = b.bundle_stream_id
JOIN dashboard_app_test t ON t.id = tr.test_id
LEFT JOIN testjob j ON j.results_bundle_id = b.id";

/// The media tables: (table, key column, the V1 table its rows belong to,
/// the path columns of that table).
const MEDIA: [(&str, &str, &str, &[&str]); 3] = [
    ("media_bundle", "bundle_id", "dashboard_app_bundle", &["content", "gz_content"]),
    ("media_attachment", "attachment_id", "dashboard_app_attachment", &["content"]),
    ("media_testdefinition", "testdefinition_id", "dashboard_app_testdefinition", &["content"]),
];

/// How a PostgreSQL column is read and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `int2`, `int4`, `int8`, `oid`; `bool` as 0/1.
    Integer,
    /// `float4`, `float8`.
    Real,
    /// `bytea`, read as hex.
    Blob,
    /// Everything else, as PostgreSQL writes it.
    Text,
    /// A timestamp, read as PostgreSQL writes it (`DateStyle` ISO, in UTC
    /// for a `timestamptz`) and stored as ISO 8601 text with six
    /// fractional digits, `Z`-suffixed when `utc` (see [`iso8601_into`]).
    Timestamp {
        /// A `timestamptz`, read in UTC.
        utc: bool,
    },
}

impl Kind {
    fn sqlite_type(self) -> &'static str {
        match self {
            Kind::Integer => "INTEGER",
            Kind::Real => "REAL",
            Kind::Blob => "BLOB",
            Kind::Text | Kind::Timestamp { .. } => "TEXT",
        }
    }
}

/// One column of a table to export.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: Kind,
    not_null: bool,
    /// What to select in PostgreSQL (the column, converted).
    select: String,
}

/// The column `name` of PostgreSQL type `typname`, as exported.
fn column(name: &str, typname: &str, not_null: bool) -> Column {
    let q = quote_ident(name);
    let (kind, select) = match typname {
        "int2" | "int4" | "int8" | "oid" => (Kind::Integer, q),
        "bool" => (Kind::Integer, format!("{q}::int")),
        "float4" | "float8" => (Kind::Real, q),
        "bytea" => (Kind::Blob, format!("encode({q}, 'hex')")),
        "timestamptz" => (Kind::Timestamp { utc: true }, format!("({q} AT TIME ZONE 'UTC')::text")),
        "timestamp" => (Kind::Timestamp { utc: false }, format!("{q}::text")),
        "date" => (Kind::Text, format!("to_char({q}, 'YYYY-MM-DD')")),
        _ => (Kind::Text, format!("{q}::text")),
    };
    Column { name: name.to_owned(), kind, not_null, select }
}

/// A table to create in the export.
#[derive(Debug, Clone, Default)]
struct Table {
    name: String,
    columns: Vec<Column>,
    primary_key: Vec<String>,
    unique: Vec<Vec<String>>,
    /// (columns, referenced table, referenced columns).
    foreign_keys: Vec<(Vec<String>, String, Vec<String>)>,
}

impl Table {
    /// `CREATE TABLE`: columns, primary key and foreign keys (unique
    /// constraints and indexes come after the rows, see [`Table::indexes`]).
    fn create_sql(&self) -> String {
        let single_integer_pk = self.primary_key.len() == 1
            && self.columns.iter().any(|c| c.name == self.primary_key[0] && c.kind == Kind::Integer);
        let mut parts: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let mut def = format!("{} {}", quote_ident(&c.name), c.kind.sqlite_type());
                if single_integer_pk && c.name == self.primary_key[0] {
                    // The rowid itself: the fastest key SQLite has.
                    def.push_str(" PRIMARY KEY");
                }
                if c.not_null {
                    def.push_str(" NOT NULL");
                }
                def
            })
            .collect();
        if !single_integer_pk && !self.primary_key.is_empty() {
            parts.push(format!("PRIMARY KEY ({})", idents(&self.primary_key)));
        }
        for (cols, table, refcols) in &self.foreign_keys {
            parts.push(format!(
                "FOREIGN KEY ({}) REFERENCES {} ({})",
                idents(cols),
                quote_ident(table),
                idents(refcols)
            ));
        }
        format!("CREATE TABLE {} (\n  {}\n)", quote_ident(&self.name), parts.join(",\n  "))
    }

    /// The unique indexes, and an index on every foreign key's columns
    /// that no key already starts with.
    fn indexes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut keys: Vec<&Vec<String>> = vec![&self.primary_key];
        for cols in &self.unique {
            out.push(format!(
                "CREATE UNIQUE INDEX {} ON {} ({})",
                quote_ident(&format!("{}__{}__uniq", self.name, cols.join("__"))),
                quote_ident(&self.name),
                idents(cols)
            ));
            keys.push(cols);
        }
        for (cols, _, _) in &self.foreign_keys {
            if keys.iter().any(|k| k.len() >= cols.len() && k[..cols.len()] == cols[..]) {
                continue;
            }
            out.push(format!(
                "CREATE INDEX {} ON {} ({})",
                quote_ident(&format!("{}__{}", self.name, cols.join("__"))),
                quote_ident(&self.name),
                idents(cols)
            ));
            keys.push(cols);
        }
        out
    }

    fn column_list(&self) -> String {
        idents(&self.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>())
    }

    /// An insert of `rows` rows at once.
    fn insert_sql(&self, rows: usize) -> String {
        let marks = format!("({})", vec!["?"; self.columns.len()].join(", "));
        format!(
            "INSERT INTO {} ({}) VALUES {}",
            quote_ident(&self.name),
            self.column_list(),
            vec![marks; rows].join(", ")
        )
    }
}

fn idents(names: &[String]) -> String {
    names.iter().map(|n| quote_ident(n)).collect::<Vec<_>>().join(", ")
}

/// Maps SQLite's error while `doing` on `path`.  Nothing is allocated
/// until an error comes: the hot loops build this for every value bound.
fn sqlite_err<'a>(
    path: &'a Path,
    doing: impl std::fmt::Display + 'a,
) -> impl Fn(rusqlite::Error) -> Error + 'a {
    move |e| Error::Sqlite { path: path.to_owned(), doing: doing.to_string(), message: e.to_string() }
}

fn io_err<'a>(path: &'a Path, doing: &'static str) -> impl Fn(std::io::Error) -> Error + 'a {
    move |source| Error::Export { path: path.to_owned(), doing: doing.into(), source }
}

/// Exports the V1 results of the instance `paths` describe.
pub fn export(paths: &Paths, options: &ExportOptions) -> Result<Export> {
    let db = paths.database()?;
    let instance = InstanceConf::load(&paths.instance_conf)
        .ok()
        .and_then(|c| c.get("LAVA_INSTANCE").map(str::to_owned))
        .unwrap_or_default();
    let media_root = paths.media_root()?;
    let mut client = crate::db::connect(&db)?;
    let mut tx = crate::db::snapshot(&mut client)?;
    // Timestamps are read as text in this form, whatever the server's
    // default (see `iso8601_into`).
    tx.batch_execute("SET LOCAL DateStyle = 'ISO, YMD'")
        .map_err(|e| Error::db("setting DateStyle", e, ""))?;
    let state = detect::inspect(&mut tx, &db.describe(), false)?;
    let schema = crate::db::work_schema(&mut tx)?;
    if state.v1_tables.is_empty() {
        return Err(Error::refused_with_hint(
            format!("{} has no V1 tables (in schema `{schema}`): there are no V1 results to export", db.describe()),
            "export before the V1 tables are dropped, or from an archive instance into which a backup was restored with `lava-v1 restore`",
        ));
    }
    if !state.missing_v1_tables.is_empty() {
        log::warn!(
            "{} of the {} V1 tables are missing and not exported: {}",
            state.missing_v1_tables.len(),
            V1_TABLES.len(),
            state.missing_v1_tables.join(", ")
        );
    }
    let v1: Vec<String> = state.v1_tables.iter().map(|t| t.name.clone()).collect();

    let (path, partial) = claim_output(options)?;
    log::info!("writing the V1 results to {}", partial.display());
    let source = Source {
        db: db.describe(),
        instance,
        schema,
        v1,
        has_bundle_column: state.results_bundle_column.is_some(),
        media_root,
    };
    let written = write_export(&mut tx, &source, &partial);
    let written = written.and_then(|w| {
        tx.commit().map_err(|e| Error::db("finishing the export's read-only transaction", e, ""))?;
        crate::fault::point("export-before-check");
        let checking = std::time::Instant::now();
        check(&partial, &w)?;
        log::debug!("export: checked in {:.3} s", checking.elapsed().as_secs_f64());
        Ok(w)
    });
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            discard(&partial);
            return Err(e);
        }
    };
    File::open(&partial).and_then(|f| f.sync_all()).map_err(io_err(&partial, "syncing"))?;
    crate::fault::point("export-before-rename");
    nix::fcntl::renameat2(None, &partial, None, &path, nix::fcntl::RenameFlags::RENAME_NOREPLACE).map_err(
        |e| {
            discard(&partial);
            io_err(&path, "renaming the finished export to")(e.into())
        },
    )?;
    sync_dir(&path)?;
    let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    log::info!("export complete and checked: {}", path.display());
    Ok(Export {
        path,
        bytes,
        jobs: written.counts.get("testjob").copied().unwrap_or(0),
        tables: written.counts,
        media_files: written.media_files,
        media_bytes: written.media_bytes,
        problems: written.problems,
    })
}

/// Syncs the directory holding `path` (its new entry durable).
fn sync_dir(path: &Path) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir, "syncing"))
}

/// Removes the incomplete file this run made.
fn discard(partial: &Path) {
    if let Err(e) = fs::remove_file(partial) {
        if e.kind() != std::io::ErrorKind::NotFound {
            log::warn!(
                "could not remove the incomplete export {}: {e}; delete it by hand",
                partial.display()
            );
        }
    }
}

/// The final name and the `.incomplete` file (created, empty, mode 0600)
/// this run writes.  Never over an existing file: a new default name gets
/// a `-2`, `-3`… suffix; an explicit one that exists is refused.  A
/// `.incomplete` file beside an explicit name is what a killed run left,
/// and is replaced.
fn claim_output(options: &ExportOptions) -> Result<(PathBuf, PathBuf)> {
    let create = |p: &Path| OpenOptions::new().write(true).create_new(true).mode(0o600).open(p);
    if let Some(output) = &options.output {
        if fs::symlink_metadata(output).is_ok() {
            return Err(Error::refused_with_hint(
                format!("`{}` exists; an export never replaces a file", output.display()),
                "name a new file with --output, or move that one away",
            ));
        }
        let name = output.file_name().ok_or_else(|| {
            Error::refused_with_hint(
                format!("`{}` names no file", output.display()),
                "give --output a file name, e.g. /var/backups/lava-server/v1-results.sqlite",
            )
        })?;
        let partial = output.with_file_name(format!("{}.{INCOMPLETE}", name.to_string_lossy()));
        if fs::symlink_metadata(&partial).is_ok() {
            log::warn!("{} is what an interrupted export left; replacing it", partial.display());
            fs::remove_file(&partial).map_err(io_err(&partial, "removing"))?;
        }
        create(&partial).map_err(io_err(&partial, "creating"))?;
        return Ok((output.clone(), partial));
    }
    let base = &options.dir;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(base).map_err(io_err(base, "creating"))?;
    warn_of_interrupted_exports(base);
    let stamp = format!("lava-v1-results-{}", state::utc_now().replace([':', '-'], ""));
    for n in 1..1000 {
        let name = if n == 1 { format!("{stamp}.sqlite") } else { format!("{stamp}-{n}.sqlite") };
        let (path, partial) = (base.join(&name), base.join(format!("{name}.{INCOMPLETE}")));
        if fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        match create(&partial) {
            Ok(_) => return Ok((path, partial)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&partial, "creating")(e)),
        }
    }
    Err(Error::refused(format!("no free name for a new export in `{}`", base.display())))
}

/// Tells the admin about files interrupted exports left.
fn warn_of_interrupted_exports(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("lava-v1-results-") && name.ends_with(&format!(".{INCOMPLETE}")) {
            log::warn!(
                "{} is what an interrupted export left: it is not an export, and can be deleted",
                e.path().display()
            );
        }
    }
}

/// What is exported.
struct Source {
    db: String,
    instance: String,
    schema: String,
    /// The V1 tables present.
    v1: Vec<String>,
    /// Whether `testjob.results_bundle_id` exists.
    has_bundle_column: bool,
    media_root: PathBuf,
}

/// What was written, for the checks and the summary.
struct Written {
    /// Source rows per table, on the snapshot.
    counts: BTreeMap<String, i64>,
    media_files: u64,
    media_bytes: u64,
    problems: u64,
}

/// Opens the export for writing: no journal, no syncs (the file is
/// renamed only once complete and synced), foreign keys checked at the
/// end, a bounded page cache (8 MiB) and SQLite's memory held under 32 MiB
/// (the sorter of `CREATE INDEX` spills to a temporary file beyond it).
fn open_sqlite(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(sqlite_err(path, "opening"))?;
    conn.execute_batch(
        "PRAGMA page_size = 8192;
         PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA foreign_keys = OFF;
         PRAGMA cache_size = -8192;
         PRAGMA soft_heap_limit = 33554432;
         PRAGMA temp_store = FILE;",
    )
    .map_err(sqlite_err(path, "setting up"))?;
    Ok(conn)
}

fn write_export(tx: &mut postgres::Transaction<'_>, src: &Source, path: &Path) -> Result<Written> {
    let mut conn = open_sqlite(path)?;
    let started = std::time::Instant::now();
    let phase = |what: &str| {
        log::debug!("export: {what} at {:.3} s ({})", started.elapsed().as_secs_f64(), memory());
    };
    let mut counts = BTreeMap::new();
    let mut tables = Vec::new();
    for name in &src.v1 {
        tables.push(v1_table(tx, &src.schema, name, &src.v1)?);
    }
    let (jobs, job_select, tags, tag_select) = job_tables(tx, src)?;
    for t in tables.iter().chain([&jobs, &tags]) {
        conn.execute_batch(&t.create_sql()).map_err(sqlite_err(path, format!("creating {}", t.name)))?;
    }
    for t in &tables {
        let select = format!(
            "SELECT {} FROM {}",
            t.columns.iter().map(|c| c.select.as_str()).collect::<Vec<_>>().join(", "),
            qualified(&src.schema, &t.name)
        );
        let count = format!("SELECT count(*) FROM {}", qualified(&src.schema, &t.name));
        counts.insert(t.name.clone(), copy_rows(tx, &mut conn, path, t, &select, &count)?);
        crate::fault::point("export-after-table");
    }
    let count = format!("SELECT count(*) FROM ({job_select}) x");
    counts.insert(jobs.name.clone(), copy_rows(tx, &mut conn, path, &jobs, &job_select, &count)?);
    let count = format!("SELECT count(*) FROM ({tag_select}) x");
    counts.insert(tags.name.clone(), copy_rows(tx, &mut conn, path, &tags, &tag_select, &count)?);
    phase("rows copied");
    for t in tables.iter().chain([&jobs, &tags]) {
        for sql in t.indexes() {
            conn.execute_batch(&sql).map_err(sqlite_err(path, format!("indexing {}", t.name)))?;
        }
    }
    phase("indexes made");
    let media = write_media(&conn, path, src)?;
    phase("media stored");
    for view in [VIEW_RESULTS, VIEW_JOBS, VIEW_TEST_RUNS] {
        conn.execute_batch(view).map_err(sqlite_err(path, "creating the views"))?;
    }
    write_info(tx, &conn, path, src, &counts)?;
    // Statistics from a sample of each index, enough for the planner.
    conn.execute_batch("PRAGMA analysis_limit = 1000; ANALYZE").map_err(sqlite_err(path, "analysing"))?;
    phase("analysed");
    conn.close().map_err(|(_, e)| sqlite_err(path, "closing")(e))?;
    Ok(Written { counts, media_files: media.files, media_bytes: media.bytes, problems: media.problems })
}

/// This process's resident and peak memory, for the debug log.
fn memory() -> String {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).map_or("?".to_owned(), |v| v.trim().to_owned())
    };
    format!("RSS {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}

/// The source's row count from `sql`, which must be what was copied:
/// on one snapshot, nothing can differ.
fn count(tx: &mut postgres::Transaction<'_>, sql: &str, what: &str, copied: u64) -> Result<i64> {
    let n: i64 =
        tx.query_one(sql, &[]).map_err(|e| Error::db(format!("counting the rows of {what}"), e, ""))?.get(0);
    if n != copied as i64 {
        return Err(Error::refused(format!(
            "{what}: {copied} rows were copied but the snapshot holds {n}; nothing was kept"
        )));
    }
    Ok(n)
}

/// A V1 table as it is in the catalogue: columns, primary key, unique
/// constraints, and the foreign keys to other V1 tables.
fn v1_table(tx: &mut postgres::Transaction<'_>, schema: &str, name: &str, v1: &[String]) -> Result<Table> {
    let qname = qualified(schema, name);
    let columns = tx
        .query(
            "SELECT a.attname::text, t.typname::text, a.attnotnull
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&qname],
        )
        .map_err(|e| Error::db(format!("reading the columns of {name}"), e, ""))?
        .iter()
        .map(|r| column(r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut table = Table { name: name.to_owned(), columns, ..Table::default() };
    let constraints = tx
        .query(
            "SELECT c.contype::text,
                    ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
                    r.relname::text, rn.nspname::text,
                    ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
             FROM pg_constraint c
             LEFT JOIN pg_class r ON r.oid = c.confrelid
             LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
             WHERE c.conrelid = $1::text::regclass AND c.contype IN ('p', 'u', 'f')
             ORDER BY c.contype, c.conname",
            &[&qname],
        )
        .map_err(|e| Error::db(format!("reading the constraints of {name}"), e, ""))?;
    for c in constraints {
        let kind: String = c.get(0);
        let cols: Vec<String> = c.get(1);
        match kind.as_str() {
            "p" => table.primary_key = cols,
            "u" => table.unique.push(cols),
            _ => {
                let (target, target_schema): (Option<String>, Option<String>) = (c.get(2), c.get(3));
                if let (Some(target), Some(target_schema)) = (target, target_schema) {
                    // Only the links between exported tables: a user or
                    // a content type is not in the file.
                    if target_schema == schema && v1.contains(&target) {
                        table.foreign_keys.push((cols, target, c.get(4)));
                    }
                }
            }
        }
    }
    Ok(table)
}

/// `testjob` and `testjob_tag`, with the queries that fill them.
fn job_tables(tx: &mut postgres::Transaction<'_>, src: &Source) -> Result<(Table, String, Table, String)> {
    let present: Vec<String> = tx
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::text::regclass
             AND attnum > 0 AND NOT attisdropped",
            &[&qualified(&src.schema, TESTJOB)],
        )
        .map_err(|e| Error::db(format!("reading the columns of {TESTJOB}"), e, ""))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let has = |c: &str| present.iter().any(|p| p == c);
    let ts = |c: &str| format!("(j.{c} AT TIME ZONE 'UTC')::text");
    let status_name = format!(
        "CASE j.status {} ELSE 'status-' || j.status END",
        (0..=5).map(|s| format!("WHEN {s} THEN '{}'", crate::schema::job_status_name(s))).collect::<String>()
    );
    // (column, kind, not null, expression); an expression of a column this
    // database does not have becomes NULL.
    let plain = |c: &str| if has(c) { format!("j.{}", quote_ident(c)) } else { "NULL".to_owned() };
    let spec: Vec<(&str, Kind, bool, String)> = vec![
        ("id", Kind::Integer, true, "j.id".into()),
        ("sub_id", Kind::Text, false, plain("sub_id")),
        ("target_group", Kind::Text, false, plain("target_group")),
        ("description", Kind::Text, false, plain("description")),
        ("health_check", Kind::Integer, true, "j.health_check::int".into()),
        (
            "is_public",
            Kind::Integer,
            false,
            if has("is_public") { "j.is_public::int".into() } else { "NULL".into() },
        ),
        ("visibility", Kind::Integer, false, plain("visibility")),
        ("priority", Kind::Integer, false, plain("priority")),
        ("submit_time", Kind::Timestamp { utc: true }, true, ts("submit_time")),
        ("start_time", Kind::Timestamp { utc: true }, false, ts("start_time")),
        ("end_time", Kind::Timestamp { utc: true }, false, ts("end_time")),
        ("status", Kind::Integer, true, "j.status".into()),
        ("status_name", Kind::Text, true, status_name),
        ("submitter", Kind::Text, false, "u.username".into()),
        ("requested_device", Kind::Text, false, plain("requested_device_id")),
        ("requested_device_type", Kind::Text, false, plain("requested_device_type_id")),
        ("actual_device", Kind::Text, false, plain("actual_device_id")),
        (
            "device_type",
            Kind::Text,
            false,
            format!("coalesce(d.device_type_id, {})", plain("requested_device_type_id")),
        ),
        (
            "results_bundle_id",
            Kind::Integer,
            false,
            if src.has_bundle_column { "j.results_bundle_id".into() } else { "NULL".into() },
        ),
        ("results_link", Kind::Text, false, plain("results_link")),
        ("failure_comment", Kind::Text, false, plain("failure_comment")),
        ("definition", Kind::Text, false, plain("definition")),
        ("original_definition", Kind::Text, false, plain("original_definition")),
        ("multinode_definition", Kind::Text, false, plain("multinode_definition")),
        ("vm_group", Kind::Text, false, plain("vm_group")),
        ("vmgroup_definition", Kind::Text, false, plain("vmgroup_definition")),
    ];
    let jobs = Table {
        name: "testjob".into(),
        columns: spec
            .iter()
            .map(|(n, k, nn, s)| Column { name: (*n).into(), kind: *k, not_null: *nn, select: s.clone() })
            .collect(),
        primary_key: vec!["id".into()],
        unique: vec![vec!["results_bundle_id".into()]],
        foreign_keys: if src.v1.iter().any(|t| t == "dashboard_app_bundle") {
            vec![(vec!["results_bundle_id".into()], "dashboard_app_bundle".into(), vec!["id".into()])]
        } else {
            Vec::new()
        },
    };
    let q = |t: &str| qualified(&src.schema, t);
    let job_select = format!(
        "SELECT {} FROM {} j LEFT JOIN {} u ON u.id = j.submitter_id
         LEFT JOIN {} d ON d.hostname = j.actual_device_id WHERE NOT j.is_pipeline",
        jobs.columns.iter().map(|c| c.select.as_str()).collect::<Vec<_>>().join(", "),
        q(TESTJOB),
        q("auth_user"),
        q("lava_scheduler_app_device"),
    );
    let tags = Table {
        name: "testjob_tag".into(),
        columns: vec![
            Column { name: "id".into(), kind: Kind::Integer, not_null: true, select: "t.id".into() },
            Column {
                name: "testjob_id".into(),
                kind: Kind::Integer,
                not_null: true,
                select: "t.testjob_id".into(),
            },
            Column { name: "tag".into(), kind: Kind::Text, not_null: true, select: "g.name::text".into() },
        ],
        primary_key: vec!["id".into()],
        unique: Vec::new(),
        foreign_keys: vec![(vec!["testjob_id".into()], "testjob".into(), vec!["id".into()])],
    };
    let tag_select = format!(
        "SELECT t.id, t.testjob_id, g.name::text FROM {} t JOIN {} g ON g.id = t.tag_id
         WHERE t.testjob_id IN (SELECT id FROM {} WHERE NOT is_pipeline)",
        q("lava_scheduler_app_testjob_tags"),
        q("lava_scheduler_app_tag"),
        q(TESTJOB),
    );
    Ok((jobs, job_select, tags, tag_select))
}

/// Rows decoded from `COPY`'s text format, on their way to SQLite: the
/// fields' bytes, and for each field its end in `data` (`None`: NULL).
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    fields: Vec<Option<u32>>,
}

/// A batch is sent on once it holds this many bytes (or fields).
const BATCH_BYTES: usize = 1024 * 1024;
const BATCH_FIELDS: usize = 64 * 1024;
/// Batches in flight between the reader and the writer: memory stays
/// bounded by about `(BATCHES + 2) * BATCH_BYTES`.
const BATCHES: usize = 4;

/// Streams the rows of `select` (`COPY … TO STDOUT`, text format) into
/// `table`: this thread reads and decodes them, a second one inserts them
/// (one prepared insert per row, a transaction every
/// [`ROWS_PER_TRANSACTION`] rows), so reading and writing overlap.
/// Returns how many rows.
fn copy_rows(
    tx: &mut postgres::Transaction<'_>,
    conn: &mut Connection,
    path: &Path,
    table: &Table,
    select: &str,
    count_sql: &str,
) -> Result<i64> {
    let name = &table.name;
    let started = std::time::Instant::now();
    let (send, receive) = std::sync::mpsc::sync_channel::<Batch>(BATCHES);
    // Emptied batches go back to the reader, which refills them: the same
    // few buffers serve a whole table, whatever its size.
    let (recycle, reuse) = std::sync::mpsc::sync_channel::<Batch>(BATCHES + 2);
    let (read, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || insert_rows(conn, path, table, receive, recycle));
        // While the writer finishes, the source's own count, on the same
        // snapshot, which must be what was read.
        let read =
            read_rows(tx, path, table, select, send, reuse).and_then(|n| count(tx, count_sql, name, n));
        (read, writer.join().unwrap_or_else(|_| Err(Error::refused(format!("writing {name} failed")))))
    });
    // The writer's error first: a reader stopped by it only says so.
    let written = written?;
    let read = read?;
    if read as u64 != written {
        return Err(Error::refused(format!(
            "{name}: {read} rows read but {written} written; nothing was kept"
        )));
    }
    log::debug!("export: {name}: {read} rows in {:.3} s ({})", started.elapsed().as_secs_f64(), memory());
    Ok(read)
}

/// Reads and decodes the rows of `select` into batches for
/// [`insert_rows`]; returns how many rows.
fn read_rows(
    tx: &mut postgres::Transaction<'_>,
    path: &Path,
    table: &Table,
    select: &str,
    send: std::sync::mpsc::SyncSender<Batch>,
    reuse: std::sync::mpsc::Receiver<Batch>,
) -> Result<u64> {
    let name = &table.name;
    let mut reader = std::io::BufReader::with_capacity(
        256 * 1024,
        tx.copy_out(&format!("COPY ({select}) TO STDOUT"))
            .map_err(|e| Error::db(format!("reading {name}"), e, ""))?,
    );
    let columns = table.columns.len();
    let mut line = Vec::with_capacity(4096);
    let mut batch = Batch::default();
    let mut rows = 0u64;
    let stopped = || Error::refused(format!("writing {name} stopped"));
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|source| Error::Export {
            path: path.to_owned(),
            doing: format!("reading the rows of {name} for"),
            source,
        })?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let mut fields = 0;
        for raw in line.split(|&b| b == b'\t') {
            fields += 1;
            if raw == b"\\N" {
                batch.fields.push(None);
            } else {
                match table.columns.get(fields - 1).map(|c| c.kind) {
                    Some(Kind::Timestamp { utc }) => iso8601_into(raw, utc, &mut batch.data),
                    _ => unescape_into(raw, &mut batch.data),
                }
                let end = u32::try_from(batch.data.len()).map_err(|_| bad_row(name, rows))?;
                batch.fields.push(Some(end));
            }
        }
        if fields != columns {
            return Err(bad_row(name, rows));
        }
        rows += 1;
        if batch.data.len() >= BATCH_BYTES || batch.fields.len() >= BATCH_FIELDS {
            let next = reuse.try_recv().unwrap_or_default();
            send.send(std::mem::replace(&mut batch, next)).map_err(|_| stopped())?;
        }
    }
    if !batch.fields.is_empty() {
        send.send(batch).map_err(|_| stopped())?;
    }
    Ok(rows)
}

/// Inserts the batches [`read_rows`] sends until it is done; returns how
/// many rows.
fn insert_rows(
    conn: &mut Connection,
    path: &Path,
    table: &Table,
    receive: std::sync::mpsc::Receiver<Batch>,
    recycle: std::sync::mpsc::SyncSender<Batch>,
) -> Result<u64> {
    let name = &table.name;
    let doing = format!("writing {name}");
    let err = || sqlite_err(path, &doing);
    let kinds: Vec<Kind> = table.columns.iter().map(|c| c.kind).collect();
    // Several rows per insert: SQLite's work per statement is shared.
    let group = (SQLITE_MAX_VARIABLES / kinds.len()).clamp(1, ROWS_PER_INSERT);
    let mut many =
        conn.prepare(&table.insert_sql(group)).map_err(sqlite_err(path, format!("preparing {name}")))?;
    let mut one =
        conn.prepare(&table.insert_sql(1)).map_err(sqlite_err(path, format!("preparing {name}")))?;
    let transaction = |sql: &str| conn.execute_batch(sql).map_err(err());
    transaction("BEGIN")?;
    let mut rows = 0u64;
    for mut batch in receive {
        let mut start = 0usize;
        for chunk in batch.fields.chunks(kinds.len() * group) {
            let (stmt, in_chunk) =
                if chunk.len() == kinds.len() * group { (&mut many, group) } else { (&mut one, 1) };
            for part in chunk.chunks(kinds.len() * in_chunk) {
                for (i, end) in part.iter().enumerate() {
                    let index = i + 1;
                    let Some(end) = *end else {
                        stmt.raw_bind_parameter(index, rusqlite::types::Null).map_err(err())?;
                        continue;
                    };
                    let field = &batch.data[start..end as usize];
                    start = end as usize;
                    let row = rows + (i / kinds.len()) as u64;
                    match kinds[i % kinds.len()] {
                        Kind::Integer => {
                            let v = std::str::from_utf8(field).ok().and_then(|s| s.parse::<i64>().ok());
                            stmt.raw_bind_parameter(index, v.ok_or_else(|| bad_row(name, row))?)
                        }
                        Kind::Real => {
                            let v = std::str::from_utf8(field).ok().and_then(|s| s.parse::<f64>().ok());
                            stmt.raw_bind_parameter(index, v.ok_or_else(|| bad_row(name, row))?)
                        }
                        Kind::Blob => {
                            let v = from_hex(field).ok_or_else(|| bad_row(name, row))?;
                            stmt.raw_bind_parameter(index, v)
                        }
                        Kind::Text | Kind::Timestamp { .. } => match std::str::from_utf8(field) {
                            Ok(s) => stmt.raw_bind_parameter(index, s),
                            // A database in SQL_ASCII may hold any bytes: kept as they are.
                            Err(_) => stmt.raw_bind_parameter(index, field),
                        },
                    }
                    .map_err(err())?;
                }
                stmt.raw_execute().map_err(err())?;
                let before = rows;
                rows += in_chunk as u64;
                if rows / ROWS_PER_TRANSACTION != before / ROWS_PER_TRANSACTION {
                    transaction("COMMIT")?;
                    transaction("BEGIN")?;
                }
            }
        }
        batch.data.clear();
        batch.fields.clear();
        // Full: the reader has buffers enough, this one goes.
        let _ = recycle.try_send(batch);
    }
    drop((many, one));
    transaction("COMMIT")?;
    Ok(rows)
}

fn bad_row(table: &str, row: u64) -> Error {
    Error::refused(format!("row {} of {table} is not what its columns say; nothing was kept", row + 1))
}

/// A timestamp as PostgreSQL writes it with `DateStyle` ISO
/// (`YYYY-MM-DD HH:MM:SS`, then up to six fractional digits; no escapes)
/// appended to `out` as ISO 8601 with six fractional digits, and `Z` when
/// `utc`: `2016-03-04 12:34:56.12` → `2016-03-04T12:34:56.120000Z`.
/// What has another form (`infinity`, `-infinity`, a year before 1 or
/// after 9999) is appended as PostgreSQL wrote it, never lost.
fn iso8601_into(raw: &[u8], utc: bool, out: &mut Vec<u8>) {
    let digits = |r: std::ops::Range<usize>| raw[r].iter().all(u8::is_ascii_digit);
    let plain = raw.len() >= 19
        && digits(0..4)
        && raw[4] == b'-'
        && digits(5..7)
        && raw[7] == b'-'
        && digits(8..10)
        && raw[10] == b' '
        && digits(11..13)
        && raw[13] == b':'
        && digits(14..16)
        && raw[16] == b':'
        && digits(17..19);
    let fraction = &raw[raw.len().min(19)..];
    let fraction_ok = fraction.is_empty()
        || (fraction[0] == b'.'
            && (2..=7).contains(&fraction.len())
            && fraction[1..].iter().all(u8::is_ascii_digit));
    if !(plain && fraction_ok) {
        out.extend_from_slice(raw);
        return;
    }
    out.extend_from_slice(&raw[..10]);
    out.push(b'T');
    out.extend_from_slice(&raw[11..19]);
    out.push(b'.');
    let given = fraction.get(1..).unwrap_or_default();
    out.extend_from_slice(given);
    out.extend(std::iter::repeat_n(b'0', 6 - given.len()));
    if utc {
        out.push(b'Z');
    }
}

/// Decodes one field of `COPY`'s text format (backslash escapes) into `out`.
#[cfg(test)]
fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    unescape_into(raw, out);
}

/// Decodes one field of `COPY`'s text format (backslash escapes), appending
/// it to `out`.
fn unescape_into(raw: &[u8], out: &mut Vec<u8>) {
    if !raw.contains(&b'\\') {
        out.extend_from_slice(raw);
        return;
    }
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' || i == raw.len() {
            out.push(b);
            continue;
        }
        let c = raw[i];
        i += 1;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' => {
                let mut v = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    out.push(b'x');
                } else {
                    out.push(v as u8);
                }
            }
            other => out.push(other),
        }
    }
}

fn from_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16)?;
            let lo = (p[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

/// What went into the media tables.
#[derive(Debug, Default)]
struct MediaTally {
    files: u64,
    bytes: u64,
    problems: u64,
}

/// The media tables and `export_problems`, filled from the files the
/// exported rows name, read below the media root opened once.
fn write_media(conn: &Connection, path: &Path, src: &Source) -> Result<MediaTally> {
    let err = |doing: &'static str| sqlite_err(path, doing);
    conn.execute_batch(
        "CREATE TABLE export_problems (
           id INTEGER PRIMARY KEY,
           table_name TEXT NOT NULL,
           row_id INTEGER,
           field TEXT,
           path TEXT,
           problem TEXT NOT NULL
         )",
    )
    .map_err(err("creating export_problems"))?;
    for (table, key, parent, _) in MEDIA {
        let fk = if src.v1.iter().any(|t| t == parent) {
            format!(", FOREIGN KEY ({key}) REFERENCES {parent} (id)")
        } else {
            String::new()
        };
        conn.execute_batch(&format!(
            "CREATE TABLE {table} (
               {key} INTEGER NOT NULL,
               field TEXT NOT NULL,
               path TEXT NOT NULL,
               content BLOB NOT NULL,
               bytes INTEGER NOT NULL,
               sha256 TEXT NOT NULL,
               decompressed INTEGER NOT NULL,
               file_bytes INTEGER NOT NULL,
               file_sha256 TEXT NOT NULL,
               PRIMARY KEY ({key}, field){fk}
             )"
        ))
        .map_err(err("creating the media tables"))?;
    }
    let mut out = MediaOut { conn, path, tally: MediaTally::default() };
    out.conn.execute_batch("BEGIN").map_err(err("starting a transaction"))?;
    let root = match fdsafe::remove::open_root(&src.media_root) {
        Ok(root) => Some(root),
        Err(e) => {
            let root = src.media_root.display().to_string();
            let what = format!("cannot open the media root: {}; no V1 file was stored", e.source);
            out.problem("media root", None, None, Some(&root), what)?;
            None
        }
    };
    let root_dev = root.as_ref().and_then(|r| nix::sys::stat::fstat(r.as_raw_fd()).ok()).map(|st| st.st_dev);
    if let (Some(root), Some(root_dev)) = (root, root_dev) {
        // Other threads open, read, decompress and hash the files while
        // this one stores those before: chunk `n` goes to reader `n %
        // READERS` and comes back from it, so files come back in order; at
        // most `IN_FLIGHT` chunks at a time, so memory stays bounded.
        let root = fdsafe::fd::reopen_dir(&root).map_err(io_err(&src.media_root, "opening again"))?;
        std::thread::scope(|scope| {
            let mut readers = Vec::with_capacity(READERS);
            for _ in 0..READERS {
                let (want, wanted) = std::sync::mpsc::sync_channel(IN_FLIGHT);
                let (ready_send, ready) = std::sync::mpsc::sync_channel(IN_FLIGHT);
                let root = &root;
                scope.spawn(move || read_chunks(root, root_dev, wanted, ready_send));
                readers.push((want, ready));
            }
            // Returning drops the senders, which ends the readers, whether
            // or not everything went.
            out.store_all(src, readers)
        })?;
    }
    out.conn.execute_batch("COMMIT").map_err(err("writing the media"))?;
    Ok(out.tally)
}

/// A reader is gone (it only goes when this thread stopped asking).
fn stopped() -> Error {
    Error::refused("reading the media files stopped".to_owned())
}

/// A media file asked of the reading thread and not yet stored.
struct Asked {
    /// Index in [`MEDIA`].
    media: usize,
    id: i64,
    /// Index in that table's path columns.
    field: usize,
    rel: String,
}

impl Asked {
    /// Its media table, that table's key column, the V1 table the row
    /// belongs to, and the path column.
    fn target(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        let (table, key, parent, fields) = MEDIA[self.media];
        (table, key, parent, fields[self.field])
    }

    /// A compressed bundle, decompressed when stored.
    fn gzip(&self) -> bool {
        self.target().3 == "gz_content"
    }
}

/// Where [`write_media`] stores.
struct MediaOut<'a> {
    conn: &'a Connection,
    path: &'a Path,
    tally: MediaTally,
}

impl MediaOut<'_> {
    /// A row of `export_problems`.
    fn problem(
        &mut self,
        table: &str,
        row: Option<i64>,
        field: Option<&str>,
        file: Option<&str>,
        what: String,
    ) -> Result<()> {
        self.tally.problems += 1;
        self.conn
            .execute(
                "INSERT INTO export_problems (table_name, row_id, field, path, problem) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![table, row, field, file, what],
            )
            .map(|_| ())
            .map_err(sqlite_err(self.path, "writing export_problems"))
    }

    /// Asks the readers, in turn, for every file the exported rows name,
    /// [`CHUNK`] at a time, and stores each as it comes back.
    fn store_all(&mut self, src: &Source, readers: Vec<Reader>) -> Result<()> {
        let err = |doing: &'static str| sqlite_err(self.path, doing);
        let mut flight = Flight { readers, pending: Default::default(), sent: 0, received: 0 };
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut buf = vec![0u8; 256 * 1024];
        for (media, (_, _, parent, fields)) in MEDIA.iter().enumerate() {
            if !src.v1.iter().any(|t| t == parent) {
                continue;
            }
            let select = format!(
                "SELECT id, {} FROM {parent} ORDER BY id",
                fields.iter().map(|f| quote_ident(f)).collect::<Vec<_>>().join(", ")
            );
            let mut stmt = self.conn.prepare(&select).map_err(err("reading the media paths"))?;
            let mut rows = stmt.query([]).map_err(err("reading the media paths"))?;
            while let Some(row) = rows.next().map_err(err("reading the media paths"))? {
                let id: i64 = row.get(0).map_err(err("reading the media paths"))?;
                for field in 0..fields.len() {
                    let rel: Option<String> = row.get(field + 1).map_err(err("reading the media paths"))?;
                    let Some(rel) = rel.filter(|r| !r.is_empty()) else { continue };
                    let asked = Asked { media, id, field, rel };
                    chunk.push((asked.rel.clone(), asked.gzip()));
                    flight.pending.push_back(asked);
                    if chunk.len() == CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        self.hand_over(&mut flight, full, &mut buf)?;
                    }
                }
            }
        }
        if !chunk.is_empty() {
            self.hand_over(&mut flight, chunk, &mut buf)?;
        }
        while flight.received < flight.sent {
            self.store_chunk(&mut flight, &mut buf)?;
        }
        Ok(())
    }

    /// Sends `chunk` to the next reader, once a chunk is stored if
    /// [`IN_FLIGHT`] are out already.
    fn hand_over(&mut self, flight: &mut Flight, chunk: Vec<(String, bool)>, buf: &mut [u8]) -> Result<()> {
        if flight.sent - flight.received == IN_FLIGHT {
            self.store_chunk(flight, buf)?;
        }
        flight.send(chunk).ok_or_else(stopped)
    }

    /// Stores the next chunk as it comes back, each file as the one asked
    /// for.
    fn store_chunk(&mut self, flight: &mut Flight, buf: &mut [u8]) -> Result<()> {
        for r in flight.receive().ok_or_else(stopped)? {
            let asked = flight.pending.pop_front().expect("a file asked for per file read");
            self.store_next(&asked, r, buf)?;
        }
        Ok(())
    }

    /// Stores the file `asked`, as the reading thread left it.
    fn store_next(&mut self, asked: &Asked, ready: Ready, buf: &mut [u8]) -> Result<()> {
        let (_, _, parent, field) = asked.target();
        let (id, rel) = (asked.id, asked.rel.as_str());
        match store(self.conn, self.path, asked, ready, buf)? {
            Stored::Ok { bytes, note } => {
                self.tally.files += 1;
                self.tally.bytes += bytes;
                if let Some(note) = note {
                    self.problem(parent, Some(id), Some(field), Some(rel), note)?;
                }
                Ok(())
            }
            Stored::Problem(what) => self.problem(parent, Some(id), Some(field), Some(rel), what),
        }
    }
}

/// What became of one file.
enum Stored {
    /// Stored (`note`: stored, but not as expected: a compressed bundle
    /// that is no gzip stream is kept as it is).
    Ok { bytes: u64, note: Option<String> },
    /// Not stored, and why.
    Problem(String),
}

/// Why `e`, from opening or reading a media file, kept it out.
fn why(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "missing".to_owned(),
        std::io::ErrorKind::PermissionDenied => format!("unreadable: {e}"),
        std::io::ErrorKind::InvalidInput => format!("not read: {e} (links are never followed)"),
        _ => format!("unreadable: {e}"),
    }
}

/// Threads reading the media files.
const READERS: usize = 2;
/// Files asked of a reader at once (one hand-over per file would cost
/// more than reading a small one).
const CHUNK: usize = 64;
/// Chunks asked for and not yet stored.
const IN_FLIGHT: usize = 4;
/// What a reader holds in memory for one chunk, at most (and one file
/// more): past it, the rest of the chunk is only opened, and streamed.
const CHUNK_BYTES: usize = 2 * 1024 * 1024;

/// A reader thread: where it is asked for a chunk of files (path, and
/// whether it is gzip), and where it gives them back.
type Reader = (std::sync::mpsc::SyncSender<Vec<(String, bool)>>, std::sync::mpsc::Receiver<Vec<Ready>>);

/// The chunks handed to the readers, in turn, and the files asked for and
/// not yet stored, in order.
struct Flight {
    readers: Vec<Reader>,
    pending: std::collections::VecDeque<Asked>,
    sent: usize,
    received: usize,
}

impl Flight {
    fn send(&mut self, chunk: Vec<(String, bool)>) -> Option<()> {
        self.readers[self.sent % READERS].0.send(chunk).ok()?;
        self.sent += 1;
        Some(())
    }

    fn receive(&mut self) -> Option<Vec<Ready>> {
        let ready = self.readers[self.received % READERS].1.recv().ok()?;
        self.received += 1;
        Some(ready)
    }
}

/// A reader thread's work: each chunk asked for, read (see [`prepare`]).
fn read_chunks(
    root: &impl AsRawFd,
    root_dev: u64,
    wanted: std::sync::mpsc::Receiver<Vec<(String, bool)>>,
    ready: std::sync::mpsc::SyncSender<Vec<Ready>>,
) {
    for chunk in wanted {
        let mut held = 0usize;
        let mut out = Vec::with_capacity(chunk.len());
        for (rel, gzip) in chunk {
            let r = prepare(root, root_dev, &rel, gzip, held < CHUNK_BYTES);
            if let Ready::Small(small) = &r {
                held += small.content.len();
            }
            out.push(r);
        }
        if ready.send(out).is_err() {
            return;
        }
    }
}

/// A media file as the reading thread leaves it for [`store`].
enum Ready {
    /// Read whole (see [`read_small`]).
    Small(Small),
    /// Open, to be streamed (too large to be held in memory, or its
    /// chunk holds enough already).
    Large(File),
    /// Not read, and why.
    Problem(String),
}

/// A small file read once: what to store and what the file was.
struct Small {
    content: Vec<u8>,
    sha: String,
    decompressed: bool,
    file_bytes: u64,
    file_sha: String,
    note: Option<String>,
}

/// Opens `rel` below `root` (never following a link, never leaving the
/// file system) and, when it is small and `read` says so, reads,
/// decompresses and hashes it.
fn prepare(root: &impl AsRawFd, root_dev: u64, rel: &str, gzip: bool, read: bool) -> Ready {
    if !fdsafe::fd::is_plain_relative(rel) {
        return Ready::Problem("not a plain relative path below the media root; not read".into());
    }
    let mut file = match fdsafe::fd::open_at(root, rel) {
        Ok(f) => f,
        Err(e) => return Ready::Problem(why(&e)),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Ready::Problem(why(&e)),
    };
    if meta.dev() != root_dev {
        return Ready::Problem(
            "on another file system (a mount point below the media root); not read".into(),
        );
    }
    if meta.len() > SMALL_FILE || !read {
        return Ready::Large(file);
    }
    match read_small(&mut file, gzip) {
        Ok(Some(small)) => Ready::Small(small),
        Ok(None) => match file.rewind() {
            Ok(()) => Ready::Large(file),
            Err(e) => Ready::Problem(why(&e)),
        },
        Err(e) => Ready::Problem(why(&e)),
    }
}

/// Stores what [`prepare`] made of the file `asked` as its row of its
/// media table.
fn store(conn: &Connection, path: &Path, asked: &Asked, ready: Ready, buf: &mut [u8]) -> Result<Stored> {
    let small = match ready {
        Ready::Problem(what) => return Ok(Stored::Problem(what)),
        Ready::Large(file) => return store_large(conn, path, asked, file, buf),
        Ready::Small(small) => small,
    };
    let (table, key, _, field) = asked.target();
    let (id, rel) = (asked.id, asked.rel.as_str());
    conn.prepare_cached(&format!(
        "INSERT INTO {table} ({key}, field, path, content, bytes, sha256, decompressed, file_bytes, file_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))
    .and_then(|mut stmt| {
        stmt.execute(params![
            id,
            field,
            rel,
            small.content,
            small.content.len() as i64,
            small.sha,
            small.decompressed,
            small.file_bytes as i64,
            small.file_sha
        ])
    })
    .map_err(sqlite_err(path, format!("writing {table}")))?;
    Ok(Stored::Ok { bytes: small.content.len() as u64, note: small.note })
}

/// Streams a large file into a BLOB of its media table: read once for its size
/// and SHA-256 (and, compressed, once more for what it decompresses to),
/// then once into the BLOB, hashed again on the way.
fn store_large(
    conn: &Connection,
    path: &Path,
    asked: &Asked,
    mut file: File,
    buf: &mut [u8],
) -> Result<Stored> {
    let (table, key, _, field) = asked.target();
    let (id, rel, gzip) = (asked.id, asked.rel.as_str(), asked.gzip());
    // The file as it is: its size and SHA-256; for a gzip file, also what
    // it decompresses to.
    let (file_bytes, file_sha) = match hash_reader(&mut file, buf, u64::MAX) {
        Ok((n, h)) => (n, h),
        Err(e) => return Ok(Stored::Problem(why(&e))),
    };
    let mut note = None;
    let mut decompressed = false;
    let (bytes, sha) = if gzip {
        let rewound = file.rewind();
        let decoded = rewound
            .and_then(|()| hash_reader(&mut flate2::read::MultiGzDecoder::new(&mut file), buf, MAX_BLOB + 1));
        match decoded {
            Ok((n, _)) if n > MAX_BLOB => {
                note = Some(format!("decompresses to more than {MAX_BLOB} bytes; stored compressed"));
                (file_bytes, file_sha.clone())
            }
            Ok((n, h)) => {
                decompressed = true;
                (n, h)
            }
            Err(e) => {
                note = Some(format!("not a valid gzip file ({e}); stored as it is, compressed"));
                (file_bytes, file_sha.clone())
            }
        }
    } else {
        (file_bytes, file_sha.clone())
    };
    if bytes > MAX_BLOB {
        return Ok(Stored::Problem(format!("{bytes} bytes: larger than SQLite's largest value; not stored")));
    }
    conn.execute(
        &format!(
            "INSERT INTO {table} ({key}, field, path, content, bytes, sha256, decompressed, file_bytes, file_sha256)
             VALUES (?1, ?2, ?3, zeroblob(?4), ?4, ?5, ?6, ?7, ?8)"
        ),
        params![id, field, rel, bytes as i64, sha, decompressed, file_bytes as i64, file_sha],
    )
    .map_err(sqlite_err(path, format!("writing {table}")))?;
    let rowid = conn.last_insert_rowid();
    let mut blob = conn
        .blob_open(MAIN_DB, table, "content", rowid, false)
        .map_err(sqlite_err(path, format!("writing {table}")))?;
    // The second read goes into the BLOB; the file must not have changed
    // since the first.
    let copied = file.rewind().and_then(|()| {
        let mut sink = HashingWriter { inner: &mut blob, hasher: Sha256::new(), bytes: 0 };
        if decompressed {
            copy_limited(&mut flate2::read::MultiGzDecoder::new(&mut file), &mut sink, buf, bytes)?;
        } else {
            copy_limited(&mut file, &mut sink, buf, bytes)?;
        }
        Ok((sink.bytes, hex(&sink.hasher.finalize())))
    });
    drop(blob);
    match copied {
        Ok((n, h)) if n == bytes && h == sha => Ok(Stored::Ok { bytes, note }),
        other => {
            conn.execute(&format!("DELETE FROM {table} WHERE rowid = ?1"), [rowid])
                .map_err(sqlite_err(path, format!("writing {table}")))?;
            Ok(Stored::Problem(match other {
                Err(e) => why(&e),
                Ok(_) => "changed while it was being read; not stored".into(),
            }))
        }
    }
}

/// A file this small (and, compressed, what it decompresses to, up to
/// [`SMALL_CONTENT`]) is read once, into memory, and stored in one insert.
const SMALL_FILE: u64 = 1024 * 1024;
const SMALL_CONTENT: u64 = 4 * 1024 * 1024;

/// A small file, read once: `None` when it is not small after all (it
/// grew, or decompresses to more than [`SMALL_CONTENT`]).
fn read_small(file: &mut File, gzip: bool) -> std::io::Result<Option<Small>> {
    let mut raw = Vec::new();
    file.take(SMALL_FILE + 1).read_to_end(&mut raw)?;
    if raw.len() as u64 > SMALL_FILE {
        return Ok(None);
    }
    let file_sha = hex(&Sha256::digest(&raw));
    let mut note = None;
    let mut content = Vec::new();
    let decompressed = gzip
        && match flate2::read::MultiGzDecoder::new(&raw[..]).take(SMALL_CONTENT + 1).read_to_end(&mut content)
        {
            Ok(n) if n as u64 > SMALL_CONTENT => return Ok(None),
            Ok(_) => true,
            Err(e) => {
                note = Some(format!("not a valid gzip file ({e}); stored as it is, compressed"));
                false
            }
        };
    let file_bytes = raw.len() as u64;
    let (content, sha) = if decompressed {
        let sha = hex(&Sha256::digest(&content));
        (content, sha)
    } else {
        (raw, file_sha.clone())
    };
    Ok(Some(Small { content, sha, decompressed, file_bytes, file_sha, note }))
}

/// Reads `r` to its end (or past `limit`): bytes read and SHA-256.
fn hash_reader(r: &mut impl Read, buf: &mut [u8], limit: u64) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = r.read(buf)?;
        if n == 0 || total > limit {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((total, hex(&hasher.finalize())))
}

/// Copies at most `limit` bytes, and one more if there are, so the caller
/// sees a file that grew.
fn copy_limited(
    r: &mut impl Read,
    w: &mut HashingWriter<'_, '_>,
    buf: &mut [u8],
    limit: u64,
) -> std::io::Result<()> {
    loop {
        let n = r.read(buf)?;
        if n == 0 {
            return Ok(());
        }
        let room = (limit - w.bytes.min(limit)) as usize;
        if n > room {
            w.write_all(&buf[..room])?;
            w.bytes += (n - room) as u64;
            return Ok(());
        }
        w.write_all(&buf[..n])?;
    }
}

/// Writes into a BLOB, hashing and counting what it writes.
struct HashingWriter<'a, 'c> {
    inner: &'a mut rusqlite::blob::Blob<'c>,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingWriter<'_, '_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(data)?;
        if n == 0 && !data.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "the file grew while it was being read",
            ));
        }
        self.hasher.update(&data[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `export_info`: where the file comes from.
fn write_info(
    tx: &mut postgres::Transaction<'_>,
    conn: &Connection,
    path: &Path,
    src: &Source,
    counts: &BTreeMap<String, i64>,
) -> Result<()> {
    let row = tx
        .query_one(
            "SELECT current_database()::text, current_setting('server_version'),
                    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            &[],
        )
        .map_err(|e| Error::db("reading the server's version and time", e, ""))?;
    let (dbname, version, snapshot): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let err = sqlite_err(path, "writing export_info");
    conn.execute_batch("CREATE TABLE export_info (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)")
        .map_err(&err)?;
    let mut info: Vec<(String, String)> = vec![
        ("format".into(), "1".into()),
        ("lava_instance".into(), src.instance.clone()),
        ("database".into(), src.db.clone()),
        ("database_name".into(), dbname),
        ("schema".into(), src.schema.clone()),
        ("server_version".into(), version),
        ("snapshot_time".into(), snapshot),
        ("exported_at".into(), state::utc_now()),
        ("tool".into(), format!("lava-v1 {}", env!("CARGO_PKG_VERSION"))),
        ("media_root".into(), src.media_root.display().to_string()),
        ("schema_notes".into(), SCHEMA_NOTES.into()),
    ];
    info.extend(counts.iter().map(|(t, n)| (format!("source_rows.{t}"), n.to_string())));
    let mut stmt = conn.prepare("INSERT INTO export_info (key, value) VALUES (?1, ?2)").map_err(&err)?;
    for (k, v) in info {
        stmt.execute(params![k, v]).map_err(&err)?;
    }
    Ok(())
}

/// The checks before the rename: rows per table, integrity, foreign keys,
/// every BLOB against its SHA-256.
fn check(path: &Path, w: &Written) -> Result<()> {
    // `PRAGMA integrity_check` is `PRAGMA quick_check` (every page and
    // B-tree of the file, each row against its columns) plus, table by
    // table, each index against its table.  Two threads share that work,
    // each on its own read-only connection: one runs the quick check and
    // the other checks, the other the tables, largest first; then both
    // take tables until none is left.
    let tables = {
        let conn = open_for_check(path)?;
        let err = sqlite_err(path, "listing the tables");
        let mut stmt = conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").map_err(&err)?;
        let mut names: Vec<String> =
            stmt.query_map([], |r| r.get(0)).map_err(&err)?.collect::<rusqlite::Result<_>>().map_err(&err)?;
        names.sort_by_key(|t| std::cmp::Reverse(w.counts.get(t).copied().unwrap_or(0)));
        std::sync::Mutex::new(std::collections::VecDeque::from(names))
    };
    std::thread::scope(|scope| {
        let indexes = scope.spawn(|| check_tables(path, &tables));
        let first = check_quick(path)
            .and_then(|()| check_rows_and_keys(path, w))
            .and_then(|()| check_blobs(path))
            .and_then(|()| check_tables(path, &tables));
        let second =
            indexes.join().unwrap_or_else(|_| Err(check_failed(path, "the integrity check failed".into())));
        first.and(second)
    })
}

/// `PRAGMA integrity_check(table)` for each table taken from `tables`
/// until none is left.
fn check_tables(path: &Path, tables: &std::sync::Mutex<std::collections::VecDeque<String>>) -> Result<()> {
    let started = std::time::Instant::now();
    let conn = open_for_check(path)?;
    let err = sqlite_err(path, "checking integrity");
    loop {
        let Some(table) = tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front() else {
            break;
        };
        let lines =
            pragma_lines(&conn, &format!("PRAGMA integrity_check({})", quote_ident(&table))).map_err(&err)?;
        if lines != ["ok"] {
            return Err(check_failed(path, format!("PRAGMA integrity_check({table}): {}", lines.join("; "))));
        }
    }
    log::debug!(
        "export check: tables and their indexes in {:.3} s ({})",
        started.elapsed().as_secs_f64(),
        memory()
    );
    Ok(())
}

/// `PRAGMA quick_check` says `ok`.
fn check_quick(path: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    let conn = open_for_check(path)?;
    let lines = pragma_lines(&conn, "PRAGMA quick_check").map_err(sqlite_err(path, "checking integrity"))?;
    log::debug!("export check: quick check in {:.3} s", started.elapsed().as_secs_f64());
    if lines != ["ok"] {
        return Err(check_failed(path, format!("PRAGMA quick_check: {}", lines.join("; "))));
    }
    Ok(())
}

/// What a checking pragma says, line by line.
fn pragma_lines(conn: &Connection, pragma: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(pragma)?;
    let lines = stmt.query_map([], |r| r.get(0))?.collect();
    lines
}

fn open_for_check(path: &Path) -> Result<Connection> {
    Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sqlite_err(path, "opening for the checks"))
}

fn check_failed(path: &Path, reason: String) -> Error {
    Error::ExportCheck { path: path.to_owned(), reason }
}

/// Every table has the source's rows, and `PRAGMA foreign_key_check`
/// finds nothing.
fn check_rows_and_keys(path: &Path, w: &Written) -> Result<()> {
    let started = std::time::Instant::now();
    let conn = open_for_check(path)?;
    let err = |doing: &'static str| sqlite_err(path, doing);
    for (table, &n) in &w.counts {
        let have: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {}", quote_ident(table)), [], |r| r.get(0))
            .map_err(err("counting rows"))?;
        if have != n {
            return Err(check_failed(path, format!("{table} has {have} rows, the database had {n}")));
        }
    }
    let mut stmt = conn.prepare("PRAGMA foreign_key_check").map_err(err("checking foreign keys"))?;
    let mut rows = stmt.query([]).map_err(err("checking foreign keys"))?;
    if let Some(r) = rows.next().map_err(err("checking foreign keys"))? {
        let table: String = r.get(0).map_err(err("checking foreign keys"))?;
        let rowid: Option<i64> = r.get(1).map_err(err("checking foreign keys"))?;
        let parent: String = r.get(2).map_err(err("checking foreign keys"))?;
        return Err(check_failed(
            path,
            format!(
                "PRAGMA foreign_key_check: row {} of {table} points at a missing row of {parent}",
                rowid.map_or("?".into(), |r| r.to_string())
            ),
        ));
    }
    log::debug!("export check: rows and foreign keys in {:.3} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Every BLOB matches its SHA-256 and size.
fn check_blobs(path: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    let conn = open_for_check(path)?;
    let err = |doing: &'static str| sqlite_err(path, doing);
    let mut buf = vec![0u8; 256 * 1024];
    for (table, _, _, _) in MEDIA {
        let mut stmt = conn
            .prepare(&format!("SELECT rowid, bytes, sha256, path FROM {table}"))
            .map_err(err("checking the media"))?;
        let mut rows = stmt.query([]).map_err(err("checking the media"))?;
        while let Some(r) = rows.next().map_err(err("checking the media"))? {
            let (rowid, bytes, sha, file): (i64, i64, String, String) = (
                r.get(0).map_err(err("checking the media"))?,
                r.get(1).map_err(err("checking the media"))?,
                r.get(2).map_err(err("checking the media"))?,
                r.get(3).map_err(err("checking the media"))?,
            );
            let mut blob =
                conn.blob_open(MAIN_DB, table, "content", rowid, true).map_err(err("checking the media"))?;
            let (n, h) = hash_reader(&mut blob, &mut buf, u64::MAX).map_err(|source| Error::Export {
                path: path.to_owned(),
                doing: "checking".into(),
                source,
            })?;
            if n != bytes as u64 || h != sha {
                return Err(check_failed(
                    path,
                    format!("the BLOB of {file} in {table} does not match its SHA-256"),
                ));
            }
        }
    }
    log::debug!("export check: BLOBs in {:.3} s", started.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file as the checks expect one: a table with an index, rows whose
    /// two columns differ, and the (empty) media tables.
    fn checkable(dir: &Path) -> (PathBuf, Written) {
        let path = dir.join("x.sqlite");
        let conn = Connection::open(&path).unwrap();
        let mut sql = String::from(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER); CREATE INDEX t__a ON t (a);",
        );
        for (table, key, _, _) in MEDIA {
            sql.push_str(&format!(
                "CREATE TABLE {table} ({key} INTEGER, path TEXT, content BLOB, bytes INTEGER, sha256 TEXT);"
            ));
        }
        for i in 0..1000 {
            sql.push_str(&format!("INSERT INTO t (a, b) VALUES ({i}, {});", 5000 - i));
        }
        conn.execute_batch(&sql).unwrap();
        (
            path,
            Written { counts: [("t".to_owned(), 1000)].into(), media_files: 0, media_bytes: 0, problems: 0 },
        )
    }

    #[test]
    fn the_checks_pass_a_sound_file_and_find_an_index_that_is_not_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let (path, w) = checkable(dir.path());
        check(&path, &w).unwrap();
        // The index now claims to be on `b`, but holds the values of `a`:
        // only the per-table half of the integrity check can see it.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = 'CREATE INDEX t__a ON t (b)' WHERE name = 't__a';",
        )
        .unwrap();
        drop(conn);
        assert_eq!(pragma_lines(&open_for_check(&path).unwrap(), "PRAGMA quick_check").unwrap(), ["ok"]);
        let e = check(&path, &w).unwrap_err().to_string();
        assert!(e.contains("PRAGMA integrity_check(t)"), "{e}");
        // And a table whose rows are not those of the source.
        let other = dir.path().join("b");
        std::fs::create_dir_all(&other).unwrap();
        let (path, mut w) = checkable(&other);
        w.counts.insert("t".into(), 999);
        let e = check(&path, &w).unwrap_err().to_string();
        assert!(e.contains("t has 1000 rows, the database had 999"), "{e}");
    }

    #[test]
    fn timestamps_become_iso8601_and_odd_ones_stay_as_they_are() {
        let iso = |raw: &str, utc: bool| {
            let mut out = b"x".to_vec();
            iso8601_into(raw.as_bytes(), utc, &mut out);
            String::from_utf8(out[1..].to_vec()).unwrap()
        };
        assert_eq!(iso("2016-03-04 12:34:56.12", true), "2016-03-04T12:34:56.120000Z");
        assert_eq!(iso("2016-03-04 12:34:56", true), "2016-03-04T12:34:56.000000Z");
        assert_eq!(iso("2016-03-04 12:34:56.123456", false), "2016-03-04T12:34:56.123456");
        for odd in [
            "infinity",
            "-infinity",
            "0044-03-15 12:00:00 BC",
            "10000-01-01 00:00:00",
            "2016-03-04 12:34:56.1234567",
            "",
        ] {
            assert_eq!(iso(odd, true), odd);
        }
    }

    #[test]
    fn copy_text_escapes() {
        let mut out = Vec::new();
        unescape(b"a\\tb\\nc\\\\d\\r\\011\\x41\\.", &mut out);
        assert_eq!(out, b"a\tb\nc\\d\r\tA.");
        unescape(b"plain", &mut out);
        assert_eq!(out, b"plain");
        assert_eq!(from_hex(b"00ff41"), Some(vec![0, 255, b'A']));
        assert_eq!(from_hex(b"0"), None);
        assert_eq!(from_hex(b"zz"), None);
    }

    #[test]
    fn types_and_keys() {
        assert_eq!(column("x", "bool", true).kind, Kind::Integer);
        assert_eq!(column("x", "numeric", false).kind, Kind::Text);
        assert!(column("t", "timestamptz", false).select.contains("AT TIME ZONE 'UTC'"));
        let t = Table {
            name: "a\"b".into(),
            columns: vec![column("id", "int4", true), column("p", "int4", true), column("q", "int4", true)],
            primary_key: vec!["id".into()],
            unique: vec![vec!["p".into(), "q".into()]],
            foreign_keys: vec![
                (vec!["p".into()], "parent".into(), vec!["id".into()]),
                (vec!["q".into()], "parent".into(), vec!["id".into()]),
            ],
        };
        let create = t.create_sql();
        assert!(create.starts_with("CREATE TABLE \"a\"\"b\""), "{create}");
        assert!(create.contains("\"id\" INTEGER PRIMARY KEY NOT NULL"), "{create}");
        let indexes = t.indexes();
        // p is covered by the unique (p, q); q gets its own.
        assert_eq!(indexes.len(), 2, "{indexes:?}");
        assert!(indexes[1].contains("(\"q\")"), "{indexes:?}");
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE parent (id INTEGER PRIMARY KEY)").unwrap();
        conn.execute_batch(&create).unwrap();
        for i in indexes {
            conn.execute_batch(&i).unwrap();
        }
        conn.execute(&t.insert_sql(1), [1, 2, 3]).unwrap();
        conn.execute(&t.insert_sql(2), [4, 5, 6, 7, 8, 9]).unwrap();
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {}", quote_ident(&t.name)), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
    }
}
