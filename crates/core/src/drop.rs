//! The V1 drop: LAVA 2017.12's migrations `lava_scheduler_app 0029` and
//! `dashboard_app 0023`, in that order, in **one** transaction.
//!
//! What the two migrations do, and what we do instead:
//!
//! * 0029 drops the foreign key of `lava_scheduler_app_testjob.results_bundle_id`
//!   and then the column (its UNIQUE constraint and index go with it).  LAVA
//!   uses `DROP COLUMN … CASCADE`, which silently takes any view reading the
//!   column with it; the 2017.12 packaging dropped the `query_<N>` caches
//!   first.  We drop exactly the `query_<N>` materialized views that read
//!   the column, and refuse (changing nothing) if anything else does.
//! * 0023 removes every dashboard table.  We drop the 45 tables in one
//!   `DROP TABLE` without `CASCADE`, so an object of the admin's that depends
//!   on them makes the whole transaction fail instead of vanishing.
//! * Django records each migration in `django_migrations` after it commits,
//!   outside its transaction.  We insert both rows inside ours, with
//!   `applied` the time each step finished, so a later `lava-server manage
//!   migrate` has nothing of these two left to do.
//!
//! Constraint names differ between Django versions; they are read from the
//! catalogue.  A `lock_timeout` makes a busy database an error instead of a
//! hang.  Every step checks the catalogue first, so a database left half way
//! by LAVA's own `migrate` is finished correctly, and a second run is a
//! no-op that says so.

use std::time::{Duration, Instant};

use postgres::error::SqlState;
use serde::Serialize;

use crate::config::Paths;
use crate::detect::{self, DbState};
use crate::schema::{self, quote_ident, Migration, MIGRATION_0023, MIGRATION_0029};
use crate::{fault, Error, Result};

/// How the drop behaves.
#[derive(Debug, Clone)]
pub struct DropOptions {
    /// How long to wait for each lock before giving up with
    /// [`Error::LockTimeout`].
    pub lock_timeout: Duration,
    /// Check the rights the drop needs before taking any lock, and warn
    /// (never refuse) when the instance is outside the maintenance window
    /// ([`crate::preflight`]).
    pub preflight: bool,
}

impl Default for DropOptions {
    fn default() -> Self {
        DropOptions { lock_timeout: Duration::from_secs(10), preflight: true }
    }
}

/// What one run of the drop did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DropSummary {
    /// `query_<N>` views dropped because they read `results_bundle_id`.
    pub views_dropped: Vec<String>,
    /// Foreign-key constraints dropped.
    pub constraints_dropped: Vec<String>,
    /// Whether `results_bundle_id` was dropped by this run.
    pub column_dropped: bool,
    /// V1 tables dropped by this run.
    pub tables_dropped: Vec<String>,
    /// `django_migrations` rows inserted by this run.
    pub migrations_recorded: Vec<Migration>,
    /// Wall time of the transaction, in milliseconds.
    pub elapsed_ms: u128,
}

/// The result of a drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum DropOutcome {
    /// Nothing was left to do; nothing was changed.
    AlreadyDone,
    /// The drop committed.
    Dropped(DropSummary),
}

/// One line for the journal and the maintainer scripts.
impl std::fmt::Display for DropOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropOutcome::AlreadyDone => f.write_str("nothing to do, the V1 data was already removed"),
            DropOutcome::Dropped(d) => write!(
                f,
                "committed: {} tables, column {}, views [{}], migrations recorded [{}], {} ms",
                d.tables_dropped.len(),
                if d.column_dropped { "dropped" } else { "already gone" },
                d.views_dropped.join(", "),
                d.migrations_recorded
                    .iter()
                    .map(|m| format!("{} {}", m.app, m.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                d.elapsed_ms
            ),
        }
    }
}

/// Connects with `paths`' settings and runs [`drop_v1`].
pub fn run(paths: &Paths, options: &DropOptions) -> Result<DropOutcome> {
    let db = paths.database()?;
    let mut client = crate::db::connect(&db)?;
    drop_v1(&mut client, &db.describe(), options)
}

/// Removes the V1 tables and column in one transaction.  On any error the
/// transaction is rolled back and nothing has changed.
pub fn drop_v1(client: &mut postgres::Client, target: &str, options: &DropOptions) -> Result<DropOutcome> {
    let started = Instant::now();
    let timeout = format!("{}ms", options.lock_timeout.as_millis());
    let err = |doing: &str| {
        let timeout = timeout.clone();
        let doing = doing.to_owned();
        move |e: postgres::Error| map_error(&doing, e, &timeout)
    };

    let mut tx = client.transaction().map_err(err("starting the transaction"))?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{timeout}'"))
        .map_err(err("setting lock_timeout"))?;

    // django_migrations first: nobody may record a migration while we work.
    // (When it is missing, inspect() below says what the database is.)
    let has_migrations: bool = tx
        .query_one("SELECT to_regclass('django_migrations') IS NOT NULL", &[])
        .map_err(err("looking for django_migrations"))?
        .get(0);
    // What the database is, and the rights, before taking any lock:
    // without the rights the locks below fail with a bare "permission
    // denied".  (All of it is checked again once the tables are locked.)
    let before = detect::inspect(&mut tx, target, false)?;
    check_version(&before)?;
    if !before.drop_pending() {
        log::info!("the V1 data is already removed; nothing to do");
        return Ok(DropOutcome::AlreadyDone);
    }
    if options.preflight {
        let report = crate::preflight::check(&mut tx, &before)?;
        report.enforce()?;
        if let Some(warning) = report.window_warning() {
            for line in warning.lines() {
                log::warn!("{line}");
            }
        }
    }
    if has_migrations {
        // Nobody may record a migration while we work.
        tx.batch_execute("LOCK TABLE django_migrations IN SHARE ROW EXCLUSIVE MODE")
            .map_err(err("locking django_migrations"))?;
    }
    lock_tables(&mut tx, &before).map_err(err("locking LAVA's tables"))?;
    // Look again now that nobody else can change what we look at.
    let state = detect::inspect(&mut tx, target, false)?;
    if !state.drop_pending() {
        log::info!("the V1 data was removed meanwhile; nothing to do");
        return Ok(DropOutcome::AlreadyDone);
    }
    if !state.blockers.is_empty() {
        return Err(Error::Blocked { objects: state.blockers.join("; ") });
    }
    fault::point("after-lock");

    let mut summary = DropSummary::default();

    // lava_scheduler_app 0029_remove_testjob__results_bundle
    if let Some(column) = &state.results_bundle_column {
        for view in state.dependent_views.iter().filter(|v| v.lava_query_cache) {
            tx.batch_execute(&format!("DROP MATERIALIZED VIEW {}", quote_ident(&view.name)))
                .map_err(err(&format!("dropping the query cache view {}", view.name)))?;
            log::info!("dropped materialized view {} (LAVA's refresh_queries recreates it)", view.name);
            summary.views_dropped.push(view.name.clone());
        }
        fault::point("after-views");
        for fk in &column.fk_constraints {
            tx.batch_execute(&format!("ALTER TABLE {} DROP CONSTRAINT {}", schema::TESTJOB, quote_ident(fk)))
                .map_err(err(&format!("dropping constraint {fk}")))?;
            summary.constraints_dropped.push(fk.clone());
        }
        tx.batch_execute(&format!(
            "ALTER TABLE {} DROP COLUMN {}",
            schema::TESTJOB,
            schema::RESULTS_BUNDLE_COLUMN
        ))
        .map_err(err("dropping lava_scheduler_app_testjob.results_bundle_id"))?;
        summary.column_dropped = true;
        log::info!("dropped {}.{}", schema::TESTJOB, schema::RESULTS_BUNDLE_COLUMN);
    }
    fault::point("after-column");
    record(&mut tx, &state, MIGRATION_0029, &mut summary).map_err(err("recording migration 0029"))?;

    // dashboard_app 0023_drop_dashboard_models
    if !state.v1_tables.is_empty() {
        let list: Vec<String> = state.v1_tables.iter().map(|t| quote_ident(&t.name)).collect();
        tx.batch_execute(&format!("DROP TABLE {}", list.join(", ")))
            .map_err(err("dropping the dashboard_app tables"))?;
        summary.tables_dropped = state.v1_tables.iter().map(|t| t.name.clone()).collect();
        log::info!("dropped {} dashboard_app tables", summary.tables_dropped.len());
    }
    fault::point("after-tables");
    record(&mut tx, &state, MIGRATION_0023, &mut summary).map_err(err("recording migration 0023"))?;

    fault::point("before-commit");
    tx.commit().map_err(err("committing the drop"))?;
    summary.elapsed_ms = started.elapsed().as_millis();
    Ok(DropOutcome::Dropped(summary))
}

/// A drop needs a 2017.10 database (or one already past the drop).
fn check_version(state: &DbState) -> Result<()> {
    if !state.missing_prerequisites.is_empty() && state.state != detect::V1State::Removed {
        let names: Vec<String> =
            state.missing_prerequisites.iter().map(|m| format!("{} {}", m.app, m.name)).collect();
        return Err(Error::TooOld { found: format!("not recorded: {}", names.join(", ")) });
    }
    Ok(())
}

fn lock_tables(tx: &mut postgres::Transaction<'_>, state: &DbState) -> Result<(), postgres::Error> {
    let mut tables: Vec<String> = state.v1_tables.iter().map(|t| quote_ident(&t.name)).collect();
    if state.results_bundle_column.is_some() {
        tables.insert(0, schema::TESTJOB.to_owned());
    }
    if tables.is_empty() {
        return Ok(());
    }
    tx.batch_execute(&format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", tables.join(", ")))
}

fn record(
    tx: &mut postgres::Transaction<'_>,
    state: &DbState,
    migration: Migration,
    summary: &mut DropSummary,
) -> Result<(), postgres::Error> {
    if state.recorded(migration) {
        return Ok(());
    }
    // applied = when this step finished, as Django records it.
    tx.execute(
        "INSERT INTO django_migrations (app, name, applied) VALUES ($1, $2, clock_timestamp())",
        &[&migration.app, &migration.name],
    )?;
    summary.migrations_recorded.push(migration);
    Ok(())
}

fn map_error(doing: &str, e: postgres::Error, timeout: &str) -> Error {
    if e.code() == Some(&SqlState::DEPENDENT_OBJECTS_STILL_EXIST) {
        let detail = e
            .as_db_error()
            .map(|d| match d.detail() {
                Some(detail) => format!("{} ({})", d.message(), detail.replace('\n', "; ")),
                None => d.message().to_owned(),
            })
            .unwrap_or_else(|| e.to_string());
        return Error::Blocked { objects: detail };
    }
    Error::db(doing, e, timeout)
}
