//! Server benchmark (to be written).

/// Runs the server half.
pub fn run() {}
