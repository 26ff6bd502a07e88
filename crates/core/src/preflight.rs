//! What is known before anything is dropped, in two kinds.
//!
//! * **Advice**: the maintenance window the upstream page recommends (no
//!   job submitted, running or canceling; every device offline or
//!   retired).  The drop is one transaction with a lock timeout and is safe
//!   without it, so an instance outside the window is told so
//!   ([`Preflight::window_warning`]), never refused.
//! * **Blocking problems**: what would make the drop fail: a right the
//!   connecting role lacks (ownership of the V1 tables and of
//!   `lava_scheduler_app_testjob`, INSERT on `django_migrations`), or an
//!   object of the admin's that depends on the V1 tables or on
//!   `results_bundle_id` (a view, a foreign key, a rule, a trigger…; see
//!   [`crate::detect`]).  [`Preflight::enforce`] refuses on these, before
//!   anything has changed: the package's preinst runs it before dpkg
//!   unpacks anything.
//!
//! `lava-v1 preflight` prints all of it, for admins and configuration
//! management that want to enforce a window before they run apt.

use postgres::GenericClient;
use serde::Serialize;

use crate::detect::DbState;
use crate::schema::{job_status_name, V1_TABLES};
use crate::{Error, Result};

/// How many jobs and devices are named (the rest are counted).
pub const SHOWN: usize = 20;

/// A job that is not finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnfinishedJob {
    /// Its id.
    pub id: i32,
    /// `submitted`, `running` or `canceling`.
    pub status: String,
    /// A V1 job (`is_pipeline = false`)?
    pub v1: bool,
}

/// A device that is neither offline nor retired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnlineDevice {
    /// Its hostname.
    pub hostname: String,
    /// `idle`, `running`, `reserved`…
    pub status: String,
}

/// What the checks found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Preflight {
    /// How many jobs are submitted, running or canceling.
    pub unfinished_jobs_total: i64,
    /// The first [`SHOWN`] of them, by id.
    pub unfinished_jobs: Vec<UnfinishedJob>,
    /// How many devices are neither offline nor retired.
    pub online_devices_total: i64,
    /// The first [`SHOWN`] of them, by hostname.
    pub online_devices: Vec<OnlineDevice>,
    /// Rights the connecting role lacks (blocking).
    pub missing_rights: Vec<String>,
    /// Objects of the admin's that depend on V1 data (blocking).
    pub blockers: Vec<String>,
}

impl Preflight {
    /// No job unfinished, every device offline or retired.
    pub fn in_maintenance_window(&self) -> bool {
        self.unfinished_jobs_total == 0 && self.online_devices_total == 0
    }

    /// Nothing would make the drop fail.
    pub fn ready(&self) -> bool {
        self.missing_rights.is_empty() && self.blockers.is_empty()
    }

    /// Refuses, with every blocking problem and its remedy, when the drop
    /// would fail.  The maintenance window is not checked here: it is
    /// advice ([`Preflight::window_warning`]).
    pub fn enforce(&self) -> Result<()> {
        if self.ready() {
            return Ok(());
        }
        if self.missing_rights.is_empty() {
            return Err(Error::Blocked { objects: self.blockers.join("; ") });
        }
        let mut lines = Vec::new();
        for r in &self.missing_rights {
            lines.push(format!("missing right: {r}"));
        }
        for b in &self.blockers {
            lines.push(format!("depends on V1 data: {b}"));
        }
        Err(Error::Preflight { problems: lines.join("\n") })
    }

    /// What stands outside the maintenance window, one line per job and
    /// device named (the first [`SHOWN`]); empty when in the window.
    pub fn window_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.unfinished_jobs_total > 0 {
            lines.push(format!("{} jobs are submitted, running or canceling:", self.unfinished_jobs_total));
            for j in &self.unfinished_jobs {
                lines.push(format!("  job {} ({}, {})", j.id, if j.v1 { "V1" } else { "V2" }, j.status));
            }
            let more = self.unfinished_jobs_total - self.unfinished_jobs.len() as i64;
            if more > 0 {
                lines.push(format!("  … and {more} more"));
            }
        }
        if self.online_devices_total > 0 {
            lines.push(format!(
                "{} devices are online (neither offline nor retired):",
                self.online_devices_total
            ));
            for d in &self.online_devices {
                lines.push(format!("  device {} ({})", d.hostname, d.status));
            }
            let more = self.online_devices_total - self.online_devices.len() as i64;
            if more > 0 {
                lines.push(format!("  … and {more} more"));
            }
        }
        lines
    }

    /// The warning for an instance outside the maintenance window, or
    /// `None` inside it.  Several lines, each meant to be prefixed by the
    /// caller's name.
    pub fn window_warning(&self) -> Option<String> {
        if self.in_maintenance_window() {
            return None;
        }
        let mut lines = vec![
            "warning: this instance is not in the maintenance window the upstream upgrade page recommends:"
                .to_owned(),
        ];
        lines.extend(self.window_lines());
        lines.push(
            "The removal goes on: it is one transaction with a lock timeout, safe while LAVA runs. \
             Running V1 jobs lose their results; V2 jobs and devices are not touched."
                .to_owned(),
        );
        Some(lines.join("\n"))
    }

    /// The window in one sentence, with at most `names` jobs and devices
    /// named (for the debconf question, which is one paragraph).
    pub fn window_summary(&self, names: usize) -> Option<String> {
        if self.in_maintenance_window() {
            return None;
        }
        let mut parts = Vec::new();
        if self.unfinished_jobs_total > 0 {
            let ids: Vec<String> = self
                .unfinished_jobs
                .iter()
                .take(names)
                .map(|j| format!("{} ({}, {})", j.id, if j.v1 { "V1" } else { "V2" }, j.status))
                .collect();
            parts.push(format!(
                "{} jobs are not finished (job {}{})",
                self.unfinished_jobs_total,
                ids.join(", "),
                if self.unfinished_jobs_total > ids.len() as i64 { ", …" } else { "" }
            ));
        }
        if self.online_devices_total > 0 {
            let hosts: Vec<String> = self
                .online_devices
                .iter()
                .take(names)
                .map(|d| format!("{} ({})", d.hostname, d.status))
                .collect();
            parts.push(format!(
                "{} devices are online ({}{})",
                self.online_devices_total,
                hosts.join(", "),
                if self.online_devices_total > hosts.len() as i64 { ", …" } else { "" }
            ));
        }
        Some(format!("This instance is not in a maintenance window: {}.", parts.join("; ")))
    }
}

/// A LAVA device status as the web interface names it.
pub fn device_status_name(status: i32) -> String {
    match status {
        0 => "offline".into(),
        1 => "idle".into(),
        2 => "running".into(),
        3 => "going offline".into(),
        4 => "retired".into(),
        5 => "reserved".into(),
        other => format!("status {other}"),
    }
}

/// Looks at jobs, devices, rights, and (from `state`, what
/// [`crate::detect::inspect`] found) the objects depending on V1 data.
/// Read-only.
pub fn check<C: GenericClient>(client: &mut C, state: &DbState) -> Result<Preflight> {
    let err = |doing: &'static str| move |e| Error::db(doing, e, "");
    let shown = SHOWN as i64;
    let unfinished_jobs_total: i64 = client
        .query_one("SELECT count(*) FROM lava_scheduler_app_testjob WHERE status IN (0, 1, 5)", &[])
        .map_err(err("counting unfinished jobs"))?
        .get(0);
    let unfinished_jobs = if unfinished_jobs_total == 0 {
        Vec::new()
    } else {
        client
            .query(
                "SELECT id, status, NOT is_pipeline FROM lava_scheduler_app_testjob
                 WHERE status IN (0, 1, 5) ORDER BY id LIMIT $1",
                &[&shown],
            )
            .map_err(err("listing unfinished jobs"))?
            .iter()
            .map(|r| UnfinishedJob { id: r.get(0), status: job_status_name(r.get(1)), v1: r.get(2) })
            .collect()
    };
    let online_devices_total: i64 = client
        .query_one("SELECT count(*) FROM lava_scheduler_app_device WHERE status NOT IN (0, 4)", &[])
        .map_err(err("counting online devices"))?
        .get(0);
    let online_devices = if online_devices_total == 0 {
        Vec::new()
    } else {
        client
            .query(
                "SELECT hostname::text, status FROM lava_scheduler_app_device
                 WHERE status NOT IN (0, 4) ORDER BY 1 LIMIT $1",
                &[&shown],
            )
            .map_err(err("listing online devices"))?
            .iter()
            .map(|r| OnlineDevice { hostname: r.get(0), status: device_status_name(r.get(1)) })
            .collect()
    };
    let missing_rights = missing_rights(client)?;
    Ok(Preflight {
        unfinished_jobs_total,
        unfinished_jobs,
        online_devices_total,
        online_devices,
        missing_rights,
        blockers: state.blockers.clone(),
    })
}

/// The rights the drop needs and the connecting role lacks.
pub fn missing_rights<C: GenericClient>(client: &mut C) -> Result<Vec<String>> {
    let err = |doing: &'static str| move |e| Error::db(doing, e, "");
    // The drop alters or drops these: it must own them (or be superuser).
    let mut names: Vec<String> = V1_TABLES.iter().map(|s| (*s).to_owned()).collect();
    names.push("lava_scheduler_app_testjob".into());
    let mut missing: Vec<String> = client
        .query(
            "SELECT 'ownership of ' || c.relname || ' (owned by ' || pg_get_userbyid(c.relowner) || ', connected as '
                    || current_user || ')'
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relname = ANY($1)
               AND NOT pg_has_role(current_user, c.relowner, 'USAGE')
             ORDER BY 1 LIMIT 5",
            &[&names],
        )
        .map_err(err("checking table ownership"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let can_record: bool = client
        .query_one(
            "SELECT has_table_privilege('django_migrations', 'INSERT')
                AND has_sequence_privilege('django_migrations_id_seq', 'USAGE')",
            &[],
        )
        .map_err(err("checking the rights on django_migrations"))?
        .get(0);
    if !can_record {
        missing.push("INSERT on django_migrations (and USAGE on its id sequence)".into());
    }
    Ok(missing)
}

/// The room the package's preinst checks for, before dpkg unpacks
/// anything: the backup, the readable copy of the V1 results, or both,
/// under `dir`.
#[derive(Debug, Clone, Copy)]
pub struct Room<'a> {
    /// Where they go.
    pub dir: &'a std::path::Path,
    /// The backup will be taken.
    pub backup: bool,
    /// The V1 results will be exported.
    pub export: bool,
}

/// Connects with `paths`' settings and runs every check, read-only, in
/// one transaction.  With `room`, also checks that the backup and the
/// export it names would fit (the package's preinst, before dpkg unpacks
/// anything): [`Error::NoSpace`] if not.
pub fn run(paths: &crate::config::Paths, room: Option<Room<'_>>) -> Result<Preflight> {
    let db = paths.database()?;
    let mut client = crate::db::connect(&db)?;
    let mut tx = crate::db::read_only(&mut client)?;
    let state = crate::detect::inspect(&mut tx, &db.describe(), false)?;
    let report = check(&mut tx, &state)?;
    if let Some(room) = room {
        crate::backup::check_room(&mut tx, &state, &paths.media_root()?, &room)?;
    }
    tx.commit().map_err(|e| Error::db("finishing the read-only transaction", e, ""))?;
    Ok(report)
}
