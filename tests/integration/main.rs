//! The project's integration tests: the real `lava-v1` binary against real
#![allow(clippy::print_stderr)]
//! PostgreSQL clusters the tests start themselves (see `lava-v1-testkit`).

mod admin;
mod backup;
mod drop;
mod export;
mod faults;
mod files;
mod fixture;
mod jobs;
mod maintenance;
mod reliability;
mod status;
mod util;
