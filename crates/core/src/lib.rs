//! LAVA V1 data: what it is, where it lives, and how to remove it the way
//! lava-server 2017.12 does, but atomically and safely.
//!
//! # A tour
//!
//! * [`config`] reads `instance.conf` and `settings.conf` exactly as LAVA
//!   does, to find the database and the media root ([`config::Paths`]).
//! * [`db`] connects with those settings.
//! * [`schema`] holds the facts: the 45 `dashboard_app` tables, the
//!   `results_bundle_id` column and the two 2017.12 migrations.
//! * [`detect`] builds a read-only [`detect::Report`] of what V1 data
//!   exists, in the database and under the media root ([`media`] measures
//!   the V1 media directories).
//! * [`preflight`] checks, read-only, the maintenance window and what the
//!   drop needs (rights, objects of yours that depend on V1 data).
//! * [`drop`](mod@drop) removes it in one transaction, leaving the database as
//!   LAVA's own migrations `lava_scheduler_app 0029` and `dashboard_app
//!   0023` would, `django_migrations` rows included.
//! * [`fingerprint`] summarises everything that must survive, so tests
//!   (and admins) can prove nothing else changed.
//! * [`state`] is the state directory: an exclusive lock and the journal.
//! * [`backup`] writes and verifies a backup of the V1 data (tables, V1
//!   job rows, media) before it goes, and restores one.
//! * [`export`] writes the V1 results into one self-contained SQLite file
//!   (tables, V1 jobs, media as BLOBs, views that answer the usual
//!   questions), checked before it gets its name.
//! * [`jobs`] removes V1 `TestJob` rows the way `lava-server manage jobs rm
//!   --v1` does, set-based and in batches, then their output directories.
//! * [`files`] removes the V1 media directories once the tables are gone.
//!   Both remove through the `fdsafe` crate's safe remover:
//!   descriptor-relative, never following a link, never crossing a mount.
//! * [`report`] writes the bug report the upstream page asks for, every
//!   password masked; the caller hands in what dpkg and debconf say.
//! * [`fault`] holds the fault-injection points tests pause a run at.
//! * [`explain`] is how every program tells an admin about an error: the
//!   error, each cause once, the hint last.
//!
//! The library never prints: it logs with `log`, and returns values for
//! the binaries to render.

pub mod backup;
pub mod config;
pub mod db;
pub mod detect;
pub mod drop;
mod error;
pub mod explain;
pub mod export;
pub mod fault;
pub mod files;
pub mod fingerprint;
pub mod jobs;
pub mod media;
pub mod preflight;
pub mod report;
pub mod schema;
pub mod state;

pub use error::{Error, Result};
pub use explain::Hinted;
