//! The project's 2017.10 fixture against the reference DDL it was made
//! from, when that reference is available beside the project.

use std::path::Path;

use lava_v1_testkit::cluster::LAVA_ROLE;
use lava_v1_testkit::Cluster;

const REFERENCE: &str = "../../../shared/reference/lava-2017.10-schema.sql";

fn catalogue(client: &mut postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT 'col ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull
             FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
             UNION ALL
             SELECT 'con ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
             FROM pg_constraint WHERE connamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'idx ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
             UNION ALL
             SELECT 'mig ' || app || ' ' || name FROM django_migrations
             UNION ALL
             SELECT 'ct ' || app_label || '.' || model FROM django_content_type
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The catalogue of the fixture as the reference DDL has it, kept with the
/// project so that the check compares against something when the
/// reference is not beside it.
const CATALOGUE: &str = "../testkit/fixtures/lava-2017.10.catalogue";

/// Loads `sql` (or, for `None`, the project's fixture) into a new database
/// and lists its catalogue.
fn catalogue_of(cluster: &Cluster, name: &str, sql: Option<&str>) -> Vec<String> {
    let mut admin = cluster.client("postgres");
    admin.batch_execute(&format!("CREATE DATABASE {name} OWNER {LAVA_ROLE}")).unwrap();
    match sql {
        Some(sql) => cluster.client_as(LAVA_ROLE, name).batch_execute(sql).unwrap(),
        None => lava_v1_testkit::instance::load(
            cluster,
            name,
            &lava_v1_testkit::Seed { scale: 0, media: false, django110_names: false },
        ),
    }
    let listed = catalogue(&mut cluster.client(name));
    admin.batch_execute(&format!("DROP DATABASE {name}")).unwrap();
    listed
}

#[test]
fn fixture_matches_the_reference_schema() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cluster = Cluster::shared();
    let pid = std::process::id();
    // Where the reference itself is beside the project, the kept catalogue
    // must be its catalogue (`LAVA_V1_BLESS=1` rewrites it from there).
    let reference = std::fs::read_to_string(manifest.join(REFERENCE))
        .ok()
        .map(|sql| catalogue_of(cluster, &format!("ref_{pid}"), Some(&sql)));
    if let (Some(reference), true) = (&reference, std::env::var_os("LAVA_V1_BLESS").is_some_and(|v| v == "1"))
    {
        std::fs::write(manifest.join(CATALOGUE), reference.join("\n") + "\n").unwrap();
    }
    let kept: Vec<String> =
        std::fs::read_to_string(manifest.join(CATALOGUE)).unwrap().lines().map(str::to_owned).collect();
    assert!(kept.len() > 1000, "{CATALOGUE} is too short");
    match reference {
        Some(reference) => assert!(reference == kept, "{CATALOGUE} is not the reference's catalogue"),
        None => eprintln!("note: the reference DDL is not beside the project; compared with {CATALOGUE}"),
    }
    let fixture = catalogue_of(cluster, &format!("fix_{pid}"), None);
    assert!(fixture == kept, "the fixture no longer matches the catalogue of the 2017.10 reference");
}
