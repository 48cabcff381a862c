//! `echo_client` integration tests.
