//! barnacle: a fast, safe WAL archiver and Barman-compatible backup tool for PostgreSQL.
