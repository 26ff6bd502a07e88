//! Connecting to LAVA's database with the settings from `instance.conf`.

use std::time::Duration;

use postgres::GenericClient;

use crate::config::DbConfig;
use crate::{Error, Result};

/// How long to wait for the server to answer a connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Opens a connection the way libpq would with LAVA's settings: TCP to the
/// server (or a Unix socket when the server is a directory), no TLS.
pub fn connect(db: &DbConfig) -> Result<postgres::Client> {
    let mut config = postgres::Config::new();
    config
        .host(&db.server)
        .port(db.effective_port()?)
        .user(&db.effective_user())
        .dbname(&db.effective_name())
        .application_name("lava-v1")
        .connect_timeout(CONNECT_TIMEOUT);
    if !db.password.is_empty() {
        config.password(&db.password);
    }
    log::debug!("connecting to {}", db.describe());
    config.connect(postgres::NoTls).map_err(|source| Error::Connect { target: db.describe(), source })
}

/// The schema the V1 removal works on: the connection's `current_schema()`
/// (the first schema of its `search_path` that exists; `"$user"`, so a
/// schema named like the role, comes before `public` by default).
/// Detection, the drop, the backup and the restore all work on this one
/// schema; everything that names a table outside SQL (pg_dump's and
/// pg_restore's table patterns) takes it from here.
pub fn work_schema<C: GenericClient>(client: &mut C) -> Result<String> {
    let schema: Option<String> = client
        .query_one("SELECT current_schema()::text", &[])
        .map_err(|e| Error::db("reading the current schema", e, ""))?
        .get(0);
    schema.ok_or_else(|| {
        Error::refused_with_hint(
            "no schema of the search_path exists, so there is no current schema to work on",
            "check the search_path of the LAVA database role",
        )
    })
}

/// A read-only transaction: nothing the caller runs can change anything.
pub fn read_only(client: &mut postgres::Client) -> Result<postgres::Transaction<'_>> {
    client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| Error::db("starting a read-only transaction", e, ""))
}

/// A read-only transaction on one snapshot (REPEATABLE READ): every
/// statement sees the database as it was at the first.
pub fn snapshot(client: &mut postgres::Client) -> Result<postgres::Transaction<'_>> {
    client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| Error::db("starting a read-only transaction on one snapshot", e, ""))
}
