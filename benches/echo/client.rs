//! Client benchmark (to be written).

/// Runs the client half.
pub fn run() {}
