//! Turning reports, outcomes and errors into text for people.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use fdsafe::remove::{Failure, Tally};
use lava_v1_core::detect::{Report, V1State};
use lava_v1_core::drop::DropOutcome;

pub(crate) fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The human-readable `status` report.
pub(crate) fn status(r: &Report) -> String {
    let mut s = String::new();
    let db = &r.db;
    let _ = writeln!(s, "LAVA V1 data in {}", r.database);
    let state = match db.state {
        V1State::Present => "present: a 2017.10 database with its V1 tables",
        V1State::Partial => "partly removed: an earlier upgrade attempt stopped half way",
        V1State::Removed => "removed: nothing of the V1 drop is left to do",
    };
    let _ = writeln!(s, "state: {state}");

    let total: i64 = db.v1_tables.iter().filter_map(|t| t.rows).sum();
    let _ = writeln!(
        s,
        "\nV1 tables: {} of {} present, {} rows",
        db.v1_tables.len(),
        lava_v1_core::schema::V1_TABLES.len(),
        thousands(total)
    );
    for t in db.v1_tables.iter().filter(|t| t.rows.unwrap_or(0) > 0) {
        let _ = writeln!(s, "  {:<44} {:>12}", t.name, thousands(t.rows.unwrap_or(0)));
    }
    let empty = db.v1_tables.iter().filter(|t| t.rows == Some(0)).count();
    if empty > 0 {
        let _ = writeln!(s, "  ({empty} more tables are empty)");
    }
    for t in &db.unknown_dashboard_tables {
        let _ = writeln!(s, "  {t}: not a LAVA 2017.10 table, left alone");
    }

    match &db.results_bundle_column {
        Some(c) => {
            let _ = writeln!(
                s,
                "\nlava_scheduler_app_testjob.results_bundle_id: present, {} jobs point at a bundle (foreign key: {})",
                thousands(c.jobs_with_bundle.unwrap_or(0)),
                if c.fk_constraints.is_empty() { "none".to_owned() } else { c.fk_constraints.join(", ") }
            );
        }
        None => {
            let _ = writeln!(s, "\nlava_scheduler_app_testjob.results_bundle_id: dropped");
        }
    }
    if !db.dependent_views.is_empty() {
        let _ = writeln!(s, "views reading results_bundle_id:");
        for v in &db.dependent_views {
            let what = if v.lava_query_cache {
                "LAVA query cache: dropped with the column, `lava-server manage refresh_queries --all` recreates it"
            } else {
                "not LAVA's: blocks the drop"
            };
            let _ = writeln!(s, "  {} ({}): {what}", v.name, v.kind);
        }
    }
    if !db.blockers.is_empty() {
        let _ = writeln!(s, "blocking the drop (objects outside V1 that depend on it):");
        for b in &db.blockers {
            let _ = writeln!(s, "  {b}");
        }
    }

    let statuses: Vec<String> =
        db.v1_jobs.by_status.iter().map(|(k, v)| format!("{k} {}", thousands(*v))).collect();
    let _ = writeln!(
        s,
        "\nV1 jobs: {}{}; V2 jobs: {}",
        thousands(db.v1_jobs.total),
        if statuses.is_empty() { String::new() } else { format!(" ({})", statuses.join(", ")) },
        thousands(db.v2_jobs)
    );

    let _ = writeln!(s, "\n2017.12 migrations:");
    for m in &db.migrations {
        let _ = writeln!(
            s,
            "  {:<20} {:<40} {}",
            m.migration.app,
            m.migration.name,
            m.applied.as_deref().map_or("not applied".to_owned(), |t| format!("applied {t}"))
        );
    }
    if !db.missing_prerequisites.is_empty() {
        let names: Vec<String> =
            db.missing_prerequisites.iter().map(|m| format!("{} {}", m.app, m.name)).collect();
        let _ = writeln!(s, "  missing 2017.10 migrations: {}", names.join(", "));
    }

    let _ = writeln!(s, "\nV1 media under {}:", r.media_root.display());
    for m in &r.media {
        let what = if !m.exists {
            "absent".to_owned()
        } else if m.is_symlink {
            "a symbolic link (not followed)".to_owned()
        } else {
            format!(
                "{} files, {}{}",
                thousands(m.files as i64),
                bytes(m.bytes),
                if m.skipped > 0 {
                    format!(", {} entries left out (unreadable, or mount points)", m.skipped)
                } else {
                    String::new()
                }
            )
        };
        let _ = writeln!(s, "  {:<20} {what}", m.name);
    }

    let next = match db.state {
        V1State::Removed if r.media.iter().any(|m| m.has_data()) => {
            "\nThe V1 tables are gone; the V1 files above remain.\n"
        }
        V1State::Removed => "\nNothing V1 is left in the database.\n",
        _ if !db.blockers.is_empty() => "\nThe drop is blocked: deal with the objects listed above first.\n",
        _ => "\nTo remove the V1 tables: make sure you have a backup, then `lava-v1 drop --yes`.\n",
    };
    s.push_str(next);
    s
}

/// The human-readable outcome of `drop`.
pub(crate) fn outcome(o: &DropOutcome) -> String {
    let mut s = String::new();
    match o {
        DropOutcome::AlreadyDone => {
            s.push_str("Nothing to do: the V1 tables and results_bundle_id are already gone and both migrations are recorded.\n");
        }
        DropOutcome::Dropped(d) => {
            let _ = writeln!(s, "V1 data dropped in one transaction ({} ms):", d.elapsed_ms);
            if d.column_dropped {
                let _ = writeln!(s, "  lava_scheduler_app_testjob.results_bundle_id dropped");
            }
            for c in &d.constraints_dropped {
                let _ = writeln!(s, "  foreign key {c} dropped");
            }
            if !d.views_dropped.is_empty() {
                let _ = writeln!(
                    s,
                    "  query cache views dropped: {} (run `lava-server manage refresh_queries --all` to recreate them)",
                    d.views_dropped.join(", ")
                );
            }
            let _ = writeln!(s, "  {} dashboard_app tables dropped", d.tables_dropped.len());
            for m in &d.migrations_recorded {
                let _ = writeln!(s, "  recorded migration {} {}", m.app, m.name);
            }
            s.push_str("V1 jobs and V1 files are still there; they are removed separately.\n");
        }
    }
    s
}

/// Prints an error on stderr: the one way every command reports one
/// (the error, each cause once, the hint last).
pub(crate) fn error(e: &dyn lava_v1_core::Hinted) {
    let _ = std::io::stderr().lock().write_all(lava_v1_core::explain::render("lava-v1", e).as_bytes());
}

/// Prints a refusal and what to do instead.
pub(crate) fn refusal(what: &str, hint: &str) {
    error(&lava_v1_core::Error::refused_with_hint(what, hint));
}

/// The human-readable result of `preflight`.
pub(crate) fn preflight(r: &lava_v1_core::preflight::Preflight) -> String {
    let mut s = String::new();
    if r.in_maintenance_window() {
        s.push_str("Maintenance window: yes (no job unfinished, every device offline or retired)\n");
    } else {
        s.push_str("Maintenance window: no (the upstream upgrade page recommends one; the drop does not require it)\n");
        for line in r.window_lines() {
            let _ = writeln!(s, "  {line}");
        }
    }
    if r.missing_rights.is_empty() {
        s.push_str("Database rights for the drop: all present\n");
    } else {
        s.push_str("Database rights for the drop: missing\n");
        for right in &r.missing_rights {
            let _ = writeln!(s, "  {right}");
        }
    }
    if r.blockers.is_empty() {
        s.push_str("Objects of yours depending on V1 data: none\n");
    } else {
        s.push_str("Objects of yours depending on V1 data (they would stop the drop):\n");
        for b in &r.blockers {
            let _ = writeln!(s, "  {b}");
        }
    }
    s.push_str(match (r.in_maintenance_window(), r.ready()) {
        (true, true) => "\nReady: the upgrade can remove the V1 data now.\n",
        (false, true) => "\nNot in a maintenance window: the upgrade would still remove the V1 data (running V1 jobs lose their results).\n",
        (_, false) => "\nNot ready: the upgrade would stop before unpacking until the problems above are fixed.\n",
    });
    s
}

pub(crate) fn left_exit(complete: bool, left: u64) -> ExitCode {
    if complete {
        return ExitCode::SUCCESS;
    }
    crate::render::refusal(
        &format!(
            "{} paths could not be removed (listed in the report); everything else was",
            thousands(left as i64)
        ),
        "deal with the reasons given, then run the same command again: it removes only what is left",
    );
    ExitCode::FAILURE
}

pub(crate) fn tally(t: &Tally) -> String {
    let mut s = format!("{} files", thousands(t.files as i64));
    if t.symlinks > 0 {
        let _ = write!(s, ", {} symbolic links (unlinked, not followed)", thousands(t.symlinks as i64));
    }
    let _ = write!(s, ", {} directories, {}", thousands(t.dirs as i64), bytes(t.bytes));
    s
}

pub(crate) fn left(s: &mut String, items: &[Failure], more: u64) {
    if items.is_empty() && more == 0 {
        return;
    }
    let _ = writeln!(s, "\nLeft in place:");
    for f in items {
        let _ = writeln!(s, "  {}: {}", f.path, f.reason);
    }
    if more > 0 {
        let _ = writeln!(s, "  … and {} more (see the log)", thousands(more as i64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(-1000), "-1,000");
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(2048), "2.0 KiB");
    }
}
