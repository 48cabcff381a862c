//! The textbook tokio echo server, kept as the baseline (to be written).

/// Serves on the address in `args`.
pub fn main(_args: &[String]) {}
