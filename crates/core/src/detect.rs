//! Finding out what V1 data an instance still holds.  Read-only.
//!
//! Copes with a database at every point of the road: a 2017.10 database
//! with V1 data, one already past the drop, one half way through an earlier
//! attempt (LAVA's own `migrate` commits each migration and its
//! `django_migrations` row separately, so a crash can leave a changed schema
//! without its row), and databases that are not LAVA's at all.

use std::collections::BTreeMap;
use std::path::PathBuf;

use postgres::GenericClient;
use serde::Serialize;

use crate::config::Paths;
use crate::media::{self, MediaDir};
use crate::schema::{self, Migration, DROP_MIGRATIONS, LATER_MIGRATIONS, REQUIRED_2017_10, V1_TABLES};
use crate::{Error, Result};

/// Where the instance stands with respect to the V1 drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum V1State {
    /// Every V1 table and the column exist, no 2017.12 row is recorded:
    /// a 2017.10 database.
    Present,
    /// Some of the drop is done and some is not.
    Partial,
    /// Nothing of the drop is left to do.
    Removed,
}

/// A V1 table and its exact row count (when counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRows {
    /// Table name.
    pub name: String,
    /// Rows, or `None` when the caller did not ask for counts.
    pub rows: Option<i64>,
}

/// The `results_bundle_id` column of `lava_scheduler_app_testjob`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleColumn {
    /// Its column number (for catalogue look-ups).
    #[serde(skip)]
    pub attnum: i16,
    /// Names of the foreign-key constraints on it, as this instance
    /// named them.
    pub fk_constraints: Vec<String>,
    /// Jobs that still point at a bundle (when counted).
    pub jobs_with_bundle: Option<i64>,
}

/// A view or materialized view that reads `results_bundle_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependentView {
    /// The view's name.
    pub name: String,
    /// `materialized view` or `view`.
    pub kind: String,
    /// A LAVA `query_<N>` cache, dropped with the column (LAVA's
    /// `refresh_queries` recreates it); anything else blocks the drop.
    pub lava_query_cache: bool,
}

/// One of the 2017.12 `django_migrations` rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationRow {
    /// The migration.
    #[serde(flatten)]
    pub migration: Migration,
    /// When it was applied (UTC, RFC 3339), if it was.
    pub applied: Option<String>,
}

/// V1 jobs (`is_pipeline = false`) by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    /// All V1 jobs.
    pub total: i64,
    /// By status name (`complete`, `running`, …).
    pub by_status: BTreeMap<String, i64>,
}

/// What the database holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbState {
    /// Overall state.
    pub state: V1State,
    /// The V1 tables that exist.
    pub v1_tables: Vec<TableRows>,
    /// V1 tables that no longer exist.
    pub missing_v1_tables: Vec<String>,
    /// `dashboard_app_*` tables that are not among LAVA 2017.10's 45; left alone.
    pub unknown_dashboard_tables: Vec<String>,
    /// The column, if it still exists.
    pub results_bundle_column: Option<BundleColumn>,
    /// Views reading the column.
    pub dependent_views: Vec<DependentView>,
    /// Objects outside V1 that depend on V1 tables (a drop would break them).
    pub blockers: Vec<String>,
    /// V1 jobs (zero unless counted).
    pub v1_jobs: JobCounts,
    /// V2 jobs (zero unless counted).
    pub v2_jobs: i64,
    /// The four 2017.12 migrations and whether each is recorded.
    pub migrations: Vec<MigrationRow>,
    /// 2017.10 migrations that are missing (an older LAVA).
    pub missing_prerequisites: Vec<Migration>,
}

impl DbState {
    /// Whether the drop migration `m` is recorded.
    pub fn recorded(&self, m: Migration) -> bool {
        self.migrations.iter().any(|r| r.migration == m && r.applied.is_some())
    }

    /// Any V1 rows left in the database (dashboard rows or job links)?
    pub fn has_v1_rows(&self) -> bool {
        self.v1_tables.iter().any(|t| t.rows.unwrap_or(1) > 0)
            || self.results_bundle_column.as_ref().is_some_and(|c| c.jobs_with_bundle.unwrap_or(1) > 0)
    }

    /// Is there anything left for the drop to do?
    pub fn drop_pending(&self) -> bool {
        self.state != V1State::Removed
    }
}

/// The full read-only report: database and media.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Which database, without the password.
    pub database: String,
    /// What it holds.
    #[serde(flatten)]
    pub db: DbState,
    /// The media root that was inspected.
    pub media_root: PathBuf,
    /// The V1 media directories.
    pub media: Vec<MediaDir>,
}

/// Builds the full report for the instance `paths` describe.
pub fn report(paths: &Paths) -> Result<Report> {
    let db = paths.database()?;
    let media_root = paths.media_root()?;
    let mut client = crate::db::connect(&db)?;
    let mut tx = crate::db::read_only(&mut client)?;
    let state = inspect(&mut tx, &db.describe(), true)?;
    tx.commit().map_err(|e| Error::db("finishing the read-only transaction", e, ""))?;
    Ok(Report { database: db.describe(), db: state, media: media::v1_media(&media_root), media_root })
}

fn q<C: GenericClient>(
    client: &mut C,
    doing: &str,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Vec<postgres::Row>> {
    client.query(sql, params).map_err(|e| Error::db(doing, e, ""))
}

/// Checks that the database is LAVA's and describes what it holds.
/// `counts` adds exact row counts (a scan of every V1 table).
pub fn inspect<C: GenericClient>(client: &mut C, target: &str, counts: bool) -> Result<DbState> {
    check_is_lava(client, target)?;

    let rows = q(
        client,
        "listing the dashboard_app tables",
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
           AND c.relname LIKE 'dashboard\\_app\\_%' ORDER BY 1",
        &[],
    )?;
    let existing: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let mut v1_tables = Vec::new();
    let mut missing_v1_tables = Vec::new();
    for t in V1_TABLES {
        if existing.iter().any(|e| e == t) {
            v1_tables.push(TableRows { name: t.to_owned(), rows: None });
        } else {
            missing_v1_tables.push(t.to_owned());
        }
    }
    let unknown_dashboard_tables: Vec<String> =
        existing.iter().filter(|e| !V1_TABLES.contains(&e.as_str())).cloned().collect();
    if counts && !v1_tables.is_empty() {
        // One round trip; each branch is numbered so the order of the
        // result does not matter.
        let numbered = format!(
            "SELECT n, c FROM ({}) AS x(n, c) ORDER BY n",
            v1_tables
                .iter()
                .enumerate()
                .map(|(i, t)| format!("SELECT {i}, count(*) FROM {}", schema::quote_ident(&t.name)))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        );
        for r in q(client, "counting rows in the V1 tables", &numbered, &[])? {
            let i: i32 = r.get(0);
            v1_tables[i as usize].rows = Some(r.get(1));
        }
    }

    let results_bundle_column = bundle_column(client, counts)?;
    let dependent_views = match &results_bundle_column {
        Some(col) => dependent_views(client, col.attnum)?,
        None => Vec::new(),
    };
    let mut blockers: Vec<String> = match &results_bundle_column {
        Some(col) => column_blockers(client, col.attnum)?,
        None => Vec::new(),
    };
    let own_fks = results_bundle_column.as_ref().map(|c| c.fk_constraints.clone()).unwrap_or_default();
    blockers.extend(table_blockers(client, &v1_tables, &own_fks)?);

    let mut v1_jobs = JobCounts::default();
    let mut v2_jobs = 0;
    // A sequential scan of every job (is_pipeline has no index): only when
    // counts were asked for, never inside the drop.
    let job_rows = if counts {
        q(
        client,
        "counting jobs",
        "SELECT is_pipeline, status, count(*) FROM lava_scheduler_app_testjob GROUP BY 1, 2 ORDER BY 1, 2",
        &[],
        )?
    } else {
        Vec::new()
    };
    for r in job_rows {
        let pipeline: bool = r.get(0);
        let n: i64 = r.get(2);
        if pipeline {
            v2_jobs += n;
        } else {
            v1_jobs.total += n;
            *v1_jobs.by_status.entry(schema::job_status_name(r.get(1))).or_default() += n;
        }
    }

    let applied = migration_rows(client)?;
    let migrations = DROP_MIGRATIONS
        .iter()
        .chain(LATER_MIGRATIONS.iter())
        .map(|m| MigrationRow { migration: *m, applied: applied.get(&(m.app, m.name)).cloned() })
        .collect::<Vec<_>>();
    let missing_prerequisites =
        REQUIRED_2017_10.iter().filter(|m| !applied.contains_key(&(m.app, m.name))).copied().collect();

    let recorded = |m: Migration| migrations.iter().any(|r| r.migration == m && r.applied.is_some());
    let any_recorded = DROP_MIGRATIONS.iter().any(|m| recorded(*m));
    let all_recorded = DROP_MIGRATIONS.iter().all(|m| recorded(*m));
    let state = if v1_tables.is_empty() && results_bundle_column.is_none() && all_recorded {
        V1State::Removed
    } else if missing_v1_tables.is_empty() && results_bundle_column.is_some() && !any_recorded {
        V1State::Present
    } else {
        V1State::Partial
    };

    Ok(DbState {
        state,
        v1_tables,
        missing_v1_tables,
        unknown_dashboard_tables,
        results_bundle_column,
        dependent_views,
        blockers,
        v1_jobs,
        v2_jobs,
        migrations,
        missing_prerequisites,
    })
}

fn check_is_lava<C: GenericClient>(client: &mut C, target: &str) -> Result<()> {
    let row = client
        .query_one(
            "SELECT to_regclass('django_migrations') IS NOT NULL,
                    to_regclass('lava_scheduler_app_testjob') IS NOT NULL,
                    (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')),
                    (SELECT coalesce(string_agg(relname, ', ' ORDER BY relname), '')
                     FROM (SELECT c.relname::text AS relname FROM pg_class c
                           JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
                           ORDER BY 1 LIMIT 5) x)",
            &[],
        )
        .map_err(|e| Error::db("looking at the database's tables", e, ""))?;
    let (has_migrations, has_testjob, tables, sample): (bool, bool, i64, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let not_lava = |found: String| Err(Error::NotLava { target: target.to_owned(), found });
    if tables == 0 {
        return not_lava("the database is empty (no tables in the current schema)".into());
    }
    if !has_migrations {
        return not_lava(format!("{tables} tables but no django_migrations table (e.g. {sample})"));
    }
    let apps: Vec<String> = client
        .query("SELECT DISTINCT app::text FROM django_migrations ORDER BY 1", &[])
        .map_err(|e| Error::db("reading django_migrations", e, ""))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !has_testjob || !apps.iter().any(|a| a == "lava_scheduler_app") {
        return not_lava(format!(
            "a Django database without LAVA's scheduler (migrations recorded for: {})",
            if apps.is_empty() { "nothing".to_owned() } else { apps.join(", ") }
        ));
    }
    Ok(())
}

fn bundle_column<C: GenericClient>(client: &mut C, counts: bool) -> Result<Option<BundleColumn>> {
    let rows = q(
        client,
        "looking for lava_scheduler_app_testjob.results_bundle_id",
        "SELECT a.attnum FROM pg_attribute a
         WHERE a.attrelid = 'lava_scheduler_app_testjob'::regclass
           AND a.attname = 'results_bundle_id' AND NOT a.attisdropped",
        &[],
    )?;
    let Some(row) = rows.first() else { return Ok(None) };
    let attnum: i16 = row.get(0);
    let fk_constraints = q(
        client,
        "looking up the results_bundle_id foreign key",
        "SELECT conname::text FROM pg_constraint
         WHERE conrelid = 'lava_scheduler_app_testjob'::regclass AND contype = 'f'
           AND conkey = ARRAY[$1::int2] ORDER BY 1",
        &[&attnum],
    )?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let jobs_with_bundle = if counts {
        let r = q(
            client,
            "counting jobs with a bundle",
            "SELECT count(results_bundle_id) FROM lava_scheduler_app_testjob",
            &[],
        )?;
        Some(r[0].get(0))
    } else {
        None
    };
    Ok(Some(BundleColumn { attnum, fk_constraints, jobs_with_bundle }))
}

fn dependent_views<C: GenericClient>(client: &mut C, attnum: i16) -> Result<Vec<DependentView>> {
    let rows = q(
        client,
        "finding views that read results_bundle_id",
        "SELECT DISTINCT v.relname::text, v.relkind::text
         FROM pg_depend d
         JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
         JOIN pg_class v ON v.oid = r.ev_class
         WHERE d.refclassid = 'pg_class'::regclass
           AND d.refobjid = 'lava_scheduler_app_testjob'::regclass
           AND d.refobjsubid = $1 AND v.oid <> d.refobjid
         ORDER BY 1",
        &[&(attnum as i32)],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let name: String = r.get(0);
            let kind: String = r.get(1);
            let materialized = kind == "m";
            DependentView {
                lava_query_cache: materialized && schema::is_query_view(&name),
                kind: if materialized { "materialized view".into() } else { "view".into() },
                name,
            }
        })
        .collect())
}

/// Objects outside the V1 tables that depend on them, so that dropping the
/// tables without `CASCADE` would fail: every *normal* dependency (views,
/// foreign keys, rules, column types, functions with SQL bodies…) on a V1
/// table or on anything that goes with one (its row type, its indexes,
/// its sequences), from an object that does not itself go with the V1
/// tables.  The one LAVA foreign key the drop removes itself is not one.
fn table_blockers<C: GenericClient>(
    client: &mut C,
    v1_tables: &[TableRows],
    own_fks: &[String],
) -> Result<Vec<String>> {
    if v1_tables.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = v1_tables.iter().map(|t| t.name.as_str()).collect();
    let rows = q(
        client,
        "finding objects that depend on the V1 tables",
        "WITH RECURSIVE gone(classid, objid) AS (
             SELECT 'pg_class'::regclass::oid, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relname = ANY($1)
             UNION
             SELECT d.classid, d.objid FROM pg_depend d JOIN gone g
               ON d.refclassid = g.classid AND d.refobjid = g.objid
             WHERE d.deptype IN ('a', 'i'))
         SELECT DISTINCT
                CASE WHEN r.rulename = '_RETURN' THEN pg_describe_object('pg_class'::regclass, r.ev_class, 0)
                     ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END
         FROM pg_depend d
         JOIN gone g ON d.refclassid = g.classid AND d.refobjid = g.objid
         LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
         WHERE d.deptype = 'n'
           AND (d.classid, d.objid) NOT IN (SELECT classid, objid FROM gone)
           AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN (
                 SELECT oid FROM pg_constraint
                 WHERE conrelid = 'lava_scheduler_app_testjob'::regclass AND conname = ANY($2)))
         ORDER BY 1",
        &[&names, &own_fks],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Objects other than LAVA's `query_<N>` caches that depend on
/// `results_bundle_id` (views, rules, column triggers…), so that dropping
/// the column without `CASCADE` would fail.  Its own foreign key, index
/// and UNIQUE constraint go with it.
fn column_blockers<C: GenericClient>(client: &mut C, attnum: i16) -> Result<Vec<String>> {
    let rows = q(
        client,
        "finding objects that depend on results_bundle_id",
        "SELECT DISTINCT
                CASE WHEN r.rulename = '_RETURN' THEN pg_describe_object('pg_class'::regclass, r.ev_class, 0)
                     ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END,
                CASE WHEN r.rulename = '_RETURN' THEN (SELECT relkind = 'm' AND relname::text ~ '^query_[0-9]+$'
                                                      FROM pg_class WHERE oid = r.ev_class)
                     ELSE false END
         FROM pg_depend d
         LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
         WHERE d.refclassid = 'pg_class'::regclass
           AND d.refobjid = 'lava_scheduler_app_testjob'::regclass
           AND d.refobjsubid = $1 AND d.deptype = 'n'
         ORDER BY 1",
        &[&(attnum as i32)],
    )?;
    Ok(rows
        .iter()
        .filter(|r| !r.get::<_, Option<bool>>(1).unwrap_or(false))
        .map(|r| {
            format!("{} (reads {}.{})", r.get::<_, String>(0), schema::TESTJOB, schema::RESULTS_BUNDLE_COLUMN)
        })
        .collect())
}

fn migration_rows<C: GenericClient>(
    client: &mut C,
) -> Result<BTreeMap<(&'static str, &'static str), String>> {
    let rows = q(
        client,
        "reading django_migrations",
        "SELECT app::text, name::text,
                to_char(applied AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
         FROM django_migrations",
        &[],
    )?;
    let known = DROP_MIGRATIONS.iter().chain(LATER_MIGRATIONS.iter()).chain(REQUIRED_2017_10.iter());
    let mut out = BTreeMap::new();
    for m in known {
        if let Some(r) =
            rows.iter().find(|r| r.get::<_, String>(0) == m.app && r.get::<_, String>(1) == m.name)
        {
            out.insert((m.app, m.name), r.get::<_, String>(2));
        }
    }
    Ok(out)
}
