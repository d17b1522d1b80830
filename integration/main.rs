//! barnacle's integration tests: one binary, modules by topic.
//!
//! Every test here runs against real parts: PostgreSQL 15 run as `postgres`,
//! real S3 servers (SeaweedFS, Ceph RGW) on loopback over HTTP and HTTPS, and
//! Barman 3.19 from PyPI. The harness starts them on first use and fails loudly
//! when one cannot start: nothing here skips itself.

mod backup_compat;
mod backup_kill;
mod backup_pitr;
mod backup_support;
mod bad_input;
mod catalog_compat;
mod container;
mod credentials;
mod exhaustion;
mod fault_proxy;
mod faults;
mod harness;
mod harness_smoke;
mod http_proxy;
mod kill_storm;
mod manifests;
mod proxy;
mod reliability_summary;
mod reliability_support;
mod retention_compat;
mod retention_kill;
mod retention_pitr;
mod retention_proxy;
mod retention_support;
mod security;
mod sidecar;
mod support;
mod wal_compat;
mod wal_duplicates;
mod wal_errors;
mod wal_postgres;
