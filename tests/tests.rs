//! Integration tests: one crate (one link step), a module per subcommand. Every test runs the
//! built binary; set `ASYNCIO_TOOL_BIN` to test another build of it.

#![allow(clippy::unwrap_used)]

mod util;

mod activation;
mod addresses;
mod cat;
mod cli;
mod echo_client;
mod echo_server;
mod faults;
mod generated;
mod hexdump;
mod inetd_hexdump;
mod measure;
mod measure_series;
mod metrics;
mod nc_habits;
mod probe_schedule;
mod proxy_protocol;
mod report;
mod stderr;
mod tls;
mod tls_files;
mod udp;
mod unix;
