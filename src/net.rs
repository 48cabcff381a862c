//! Network endpoints: the addresses users type, and (from them) listening and connecting.

pub(crate) mod activation;
pub mod addr;
pub mod endpoint;
pub mod listen;
pub mod proxy;
pub mod sniff;
pub mod stream;
pub mod tls;
pub mod udp;
