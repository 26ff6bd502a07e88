//! Checks before anything is dropped: the maintenance window the upstream
//! page asks for (no job running, submitted or canceling; every device
//! offline or retired) and the database rights the drop needs, checked
//! before starting rather than discovered half way.

use postgres::GenericClient;
use serde::Serialize;

use crate::schema::{job_status_name, V1_TABLES};
use crate::{Error, Result};

/// What stands in the way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Preflight {
    /// Jobs still submitted, running or canceling: `(id, status, V1?)`.
    pub active_jobs: Vec<(i32, String, bool)>,
    /// Devices neither offline nor retired: `(hostname, status)`.
    pub busy_devices: Vec<(String, String)>,
    /// Rights the connecting role lacks.
    pub missing_rights: Vec<String>,
}

impl Preflight {
    /// Nothing stands in the way.
    pub fn is_clear(&self) -> bool {
        self.active_jobs.is_empty() && self.busy_devices.is_empty() && self.missing_rights.is_empty()
    }

    /// Fails with every problem listed, each with its remedy.
    pub fn enforce(&self) -> Result<()> {
        if self.is_clear() {
            return Ok(());
        }
        let mut lines = Vec::new();
        const SHOWN: usize = 20;
        if !self.active_jobs.is_empty() {
            lines.push(format!(
                "{} jobs are not finished (wait for them, or cancel them in the web interface):",
                self.active_jobs.len()
            ));
            for (id, status, v1) in self.active_jobs.iter().take(SHOWN) {
                lines.push(format!("  job {id} ({}, {status})", if *v1 { "V1" } else { "V2" }));
            }
            if self.active_jobs.len() > SHOWN {
                lines.push(format!("  … and {} more", self.active_jobs.len() - SHOWN));
            }
        }
        if !self.busy_devices.is_empty() {
            lines.push(format!(
                "{} devices are not offline or retired (put them offline in the web interface):",
                self.busy_devices.len()
            ));
            for (host, status) in self.busy_devices.iter().take(SHOWN) {
                lines.push(format!("  device {host} ({status})"));
            }
            if self.busy_devices.len() > SHOWN {
                lines.push(format!("  … and {} more", self.busy_devices.len() - SHOWN));
            }
        }
        for r in &self.missing_rights {
            lines.push(format!("missing right: {r}"));
        }
        Err(Error::Preflight { problems: lines.join("\n") })
    }
}

fn device_status_name(status: i32) -> String {
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

/// Looks at jobs, devices and rights.
pub fn check<C: GenericClient>(client: &mut C) -> Result<Preflight> {
    let err = |doing: &'static str| move |e| Error::db(doing, e, "");
    let active_jobs = client
        .query(
            "SELECT id, status, NOT is_pipeline FROM lava_scheduler_app_testjob
             WHERE status IN (0, 1, 5) ORDER BY id",
            &[],
        )
        .map_err(err("listing unfinished jobs"))?
        .iter()
        .map(|r| (r.get(0), job_status_name(r.get(1)), r.get(2)))
        .collect();
    let busy_devices = client
        .query(
            "SELECT hostname::text, status FROM lava_scheduler_app_device WHERE status NOT IN (0, 4) ORDER BY 1",
            &[],
        )
        .map_err(err("listing devices"))?
        .iter()
        .map(|r| (r.get(0), device_status_name(r.get(1))))
        .collect();
    // The drop alters or drops these: it must own them (or be superuser).
    let mut names: Vec<String> = V1_TABLES.iter().map(|s| (*s).to_owned()).collect();
    names.push("lava_scheduler_app_testjob".into());
    let mut missing_rights: Vec<String> = client
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
        missing_rights.push("INSERT on django_migrations (and USAGE on its id sequence)".into());
    }
    Ok(Preflight { active_jobs, busy_devices, missing_rights })
}
