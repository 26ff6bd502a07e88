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

#[test]
fn fixture_matches_the_reference_schema() {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE);
    let Ok(sql) = std::fs::read_to_string(&reference) else {
        eprintln!("note: {} not present; comparing the fixture with itself only", reference.display());
        return;
    };
    let cluster = Cluster::shared();
    let mut admin = cluster.client("postgres");
    let pid = std::process::id();
    admin.batch_execute(&format!("CREATE DATABASE ref_{pid} OWNER {LAVA_ROLE}")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE fix_{pid} OWNER {LAVA_ROLE}")).unwrap();
    cluster.client_as(LAVA_ROLE, &format!("ref_{pid}")).batch_execute(&sql).unwrap();
    lava_v1_testkit::instance::load(
        cluster,
        &format!("fix_{pid}"),
        &lava_v1_testkit::Seed { scale: 0, media: false, django110_names: false },
    );
    let a = catalogue(&mut cluster.client(&format!("ref_{pid}")));
    let b = catalogue(&mut cluster.client(&format!("fix_{pid}")));
    assert!(a.len() > 1000);
    assert_eq!(a, b);
    admin.batch_execute(&format!("DROP DATABASE ref_{pid}")).unwrap();
    admin.batch_execute(&format!("DROP DATABASE fix_{pid}")).unwrap();
}
