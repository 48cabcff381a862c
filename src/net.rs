//! Network endpoints: the addresses users type, and (from them) listening and connecting.

pub mod addr;
pub mod endpoint;
pub mod listen;
pub mod stream;
