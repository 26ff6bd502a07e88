//! Connecting to LAVA's database with the settings from `instance.conf`.

use std::time::Duration;

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
