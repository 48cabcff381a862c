//! `echo_server` integration tests.
