//! A fingerprint of everything the V1 drop must leave alone.
//!
//! For every table outside `dashboard_app`: its row count and a hash of all
//! its rows (with `lava_scheduler_app_testjob.results_bundle_id` left out,
//! since the drop removes exactly that column, and without the
//! `django_migrations` rows of the 2017.12 migrations, which it adds);
//! every sequence's position except `django_migrations_id_seq` (`nextval`
//! is not transactional in PostgreSQL, so even a rolled-back attempt to
//! record a migration moves it, for Django as for us);
//! and a hash of the schema of those tables (columns, constraints, indexes)
//! minus what the drop is meant to remove.  Two fingerprints are equal when
//! nothing that must survive has changed, byte for byte.

use std::collections::BTreeMap;

use postgres::GenericClient;
use serde::Serialize;

use crate::schema::{quote_ident, DROP_MIGRATIONS, LATER_MIGRATIONS, RESULTS_BUNDLE_COLUMN, TESTJOB};
use crate::{Error, Result};

/// Rows and content hash of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableFingerprint {
    /// Row count.
    pub rows: i64,
    /// md5 over the md5 of every row's text, in sorted order.
    pub hash: String,
}

/// Everything that must survive the drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    /// Per table.
    pub tables: BTreeMap<String, TableFingerprint>,
    /// Sequence name → `last_value:is_called`.
    pub sequences: BTreeMap<String, String>,
    /// Hash of the surviving schema.
    pub schema: String,
}

impl Fingerprint {
    /// Names of the entries that differ from `other`, for assertions.
    pub fn diff(&self, other: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        for (name, fp) in &self.tables {
            if other.tables.get(name) != Some(fp) {
                out.push(format!("table {name}"));
            }
        }
        for name in other.tables.keys().filter(|n| !self.tables.contains_key(*n)) {
            out.push(format!("table {name}"));
        }
        if self.sequences != other.sequences {
            out.push("sequences".into());
        }
        if self.schema != other.schema {
            out.push("schema".into());
        }
        out
    }
}

fn err(doing: &str) -> impl Fn(postgres::Error) -> Error + '_ {
    move |e| Error::db(doing, e, "")
}

/// Computes the fingerprint of everything outside V1.
pub fn v2<C: GenericClient>(client: &mut C) -> Result<Fingerprint> {
    let tables: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
               AND c.relname NOT LIKE 'dashboard\\_app\\_%' ORDER BY 1",
            &[],
        )
        .map_err(err("listing tables"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = BTreeMap::new();
    for table in tables {
        let columns: Vec<String> = client
            .query(
                "SELECT attname::text FROM pg_attribute
                 WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped
                 ORDER BY attnum",
                &[&table],
            )
            .map_err(err("listing columns"))?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|c| !(table == TESTJOB && c == RESULTS_BUNDLE_COLUMN))
            .collect();
        let row_expr =
            format!("ROW({})::text", columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", "));
        let filter = if table == "django_migrations" {
            let rows: Vec<String> = DROP_MIGRATIONS
                .iter()
                .chain(LATER_MIGRATIONS.iter())
                .map(|m| format!("('{}', '{}')", m.app, m.name))
                .collect();
            format!("WHERE (app, name) NOT IN ({})", rows.join(", "))
        } else {
            String::new()
        };
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '')
                     FROM (SELECT md5({row_expr}) AS h FROM {} {filter}) x",
                    quote_ident(&table)
                ),
                &[],
            )
            .map_err(err("hashing a table"))?;
        out.insert(table, TableFingerprint { rows: row.get(0), hash: row.get(1) });
    }

    let mut sequences = BTreeMap::new();
    let seqs: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind = 'S'
               AND c.relname NOT LIKE 'dashboard\\_app\\_%'
               AND c.relname <> 'django_migrations_id_seq' ORDER BY 1",
            &[],
        )
        .map_err(err("listing sequences"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for s in seqs {
        let r = client
            .query_one(
                &format!("SELECT last_value::text || ':' || is_called::text FROM {}", quote_ident(&s)),
                &[],
            )
            .map_err(err("reading a sequence"))?;
        sequences.insert(s, r.get(0));
    }

    // The schema outside V1: columns, constraints and indexes of every
    // surviving table, minus the column (and what hangs off it) that the
    // drop removes.
    let schema: String = client
        .query_one(
            "WITH t AS (
                 SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
                   AND c.relname NOT LIKE 'dashboard\\_app\\_%'),
             items AS (
                 SELECT 'col ' || t.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                        || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') AS item
                 FROM t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
                 LEFT JOIN pg_attrdef d ON d.adrelid = t.oid AND d.adnum = a.attnum
                 WHERE NOT (t.relname = 'lava_scheduler_app_testjob' AND a.attname = 'results_bundle_id')
                 UNION ALL
                 SELECT 'con ' || t.relname || '.' || con.conname || ' ' || pg_get_constraintdef(con.oid)
                 FROM t JOIN pg_constraint con ON con.conrelid = t.oid
                 WHERE pg_get_constraintdef(con.oid) NOT LIKE '%(results_bundle_id)%'
                 UNION ALL
                 SELECT 'idx ' || pg_get_indexdef(i.indexrelid)
                 FROM t JOIN pg_index i ON i.indrelid = t.oid
                 WHERE pg_get_indexdef(i.indexrelid) NOT LIKE '%(results_bundle_id)%')
             SELECT md5(string_agg(item, E'\\n' ORDER BY item)) FROM items",
            &[],
        )
        .map_err(err("hashing the schema"))?
        .get(0);

    Ok(Fingerprint { tables: out, sequences, schema })
}
