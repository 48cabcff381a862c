//! `cat` integration tests.
