//! Facts about LAVA's schema that the V1 removal depends on (LAVA 2017.10
//! and the 2017.12 migrations).

/// The 45 `dashboard_app` tables of LAVA 2017.10: 37 model tables and 8
/// many-to-many join tables.  All of them hold V1 data only.
pub const V1_TABLES: [&str; 45] = [
    "dashboard_app_attachment",
    "dashboard_app_buglink",
    "dashboard_app_buglink_test_result",
    "dashboard_app_buglink_test_runs",
    "dashboard_app_bundle",
    "dashboard_app_bundledeserializationerror",
    "dashboard_app_bundlestream",
    "dashboard_app_hardwaredevice",
    "dashboard_app_image",
    "dashboard_app_imagechartfilter",
    "dashboard_app_imagecharttest",
    "dashboard_app_imagecharttestattribute",
    "dashboard_app_imagecharttestattributeuser",
    "dashboard_app_imagecharttestcase",
    "dashboard_app_imagecharttestcaseattribute",
    "dashboard_app_imagecharttestcaseuser",
    "dashboard_app_imagecharttestuser",
    "dashboard_app_imagechartuser",
    "dashboard_app_imagereport",
    "dashboard_app_imagereportchart",
    "dashboard_app_imagereportgroup",
    "dashboard_app_imageset",
    "dashboard_app_imageset_images",
    "dashboard_app_namedattribute",
    "dashboard_app_pmqabundlestream",
    "dashboard_app_softwarepackage",
    "dashboard_app_softwarepackagescratch",
    "dashboard_app_softwaresource",
    "dashboard_app_tag",
    "dashboard_app_test",
    "dashboard_app_testcase",
    "dashboard_app_testdefinition",
    "dashboard_app_testresult",
    "dashboard_app_testrun",
    "dashboard_app_testrun_devices",
    "dashboard_app_testrun_packages",
    "dashboard_app_testrun_sources",
    "dashboard_app_testrun_tags",
    "dashboard_app_testrundenormalization",
    "dashboard_app_testrunfilter",
    "dashboard_app_testrunfilter_bundle_streams",
    "dashboard_app_testrunfilterattribute",
    "dashboard_app_testrunfiltersubscription",
    "dashboard_app_testrunfiltertest",
    "dashboard_app_testrunfiltertestcase",
];

/// The scheduler's job table.
pub const TESTJOB: &str = "lava_scheduler_app_testjob";
/// The one column outside `dashboard_app` that points into it.
pub const RESULTS_BUNDLE_COLUMN: &str = "results_bundle_id";

/// A `django_migrations` row: `(app, name)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Migration {
    /// The Django app label.
    pub app: &'static str,
    /// The migration name.
    pub name: &'static str,
}

/// `lava_scheduler_app 0029`: drops `testjob.results_bundle_id`.
pub const MIGRATION_0029: Migration =
    Migration { app: "lava_scheduler_app", name: "0029_remove_testjob__results_bundle" };
/// `dashboard_app 0023`: drops every dashboard table.
pub const MIGRATION_0023: Migration = Migration { app: "dashboard_app", name: "0023_drop_dashboard_models" };

/// The migrations this tool performs, in the order Django applies them.
pub const DROP_MIGRATIONS: [Migration; 2] = [MIGRATION_0029, MIGRATION_0023];

/// The other two migrations of 2017.12, which LAVA's own `migrate` applies
/// afterwards; reported, never performed here.
pub const LATER_MIGRATIONS: [Migration; 2] = [
    Migration { app: "lava_scheduler_app", name: "0030_unused_scheduler_fields" },
    Migration { app: "lava_scheduler_app", name: "0031_add_worker_state_and_health" },
];

/// The newest migration of each app that a 2017.10 database has.
pub const REQUIRED_2017_10: [Migration; 3] = [
    Migration { app: "lava_scheduler_app", name: "0028_notify_callback" },
    Migration { app: "dashboard_app", name: "0022_alter_imagechartfilter" },
    Migration { app: "lava_results_app", name: "0014_xaxis_maxlength_increase" },
];

/// V1 directories under `MEDIA_ROOT`, relative to it.
pub const V1_MEDIA_DIRS: [&str; 4] = ["bundles", "compressed-bundles", "attachments", "testdef"];

/// `TestJob.status` names of LAVA 2017.10.
pub fn job_status_name(status: i32) -> String {
    match status {
        0 => "submitted".into(),
        1 => "running".into(),
        2 => "complete".into(),
        3 => "incomplete".into(),
        4 => "canceled".into(),
        5 => "canceling".into(),
        other => format!("status-{other}"),
    }
}

/// Is `name` one of LAVA's cached-query views, `query_<N>`?
pub fn is_query_view(name: &str) -> bool {
    name.strip_prefix("query_").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema.table`, both quoted: safe to format into SQL whatever the names.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// A pg_dump/pg_restore/psql name pattern matching exactly `schema.table`:
/// both parts in double quotes, in which every pattern and regular
/// expression character (`*`, `?`, `.`, `$`, `[`, …) is literal and case
/// is kept; a `"` is doubled, as in an SQL identifier.
pub fn exact_pattern(schema: &str, table: &str) -> String {
    qualified(schema, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_unique_and_dashboard() {
        let mut t = V1_TABLES.to_vec();
        t.sort_unstable();
        t.dedup();
        assert_eq!(t.len(), 45);
        assert!(t.iter().all(|n| n.starts_with("dashboard_app_")));
    }

    #[test]
    fn query_views() {
        assert!(is_query_view("query_1"));
        assert!(is_query_view("query_1234"));
        assert!(!is_query_view("query_"));
        assert!(!is_query_view("query_1a"));
        assert!(!is_query_view("my_query_1"));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("Lava.Server", "t"), "\"Lava.Server\".\"t\"");
        assert_eq!(exact_pattern("a*\"b", "t?"), "\"a*\"\"b\".\"t?\"");
    }
}
