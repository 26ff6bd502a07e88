//! Test support for the V1 removal: a private Apache ([`apache`]), throwaway PostgreSQL clusters
//! ([`cluster`]), seeded LAVA 2017.10 instances ([`instance`]), hostile media trees ([`hostile`])
//! and a pseudo-terminal to answer questions on ([`pty`]).
//!
//! Test code: it panics with a clear message instead of returning errors.
#![allow(clippy::print_stderr, clippy::print_stdout)]

pub mod apache;
pub mod cluster;
pub mod hostile;
pub mod instance;
pub mod pty;

pub use cluster::Cluster;
pub use instance::{Instance, Seed};
