//! Placeholder; the real benchmark is being written.
fn main() {}
