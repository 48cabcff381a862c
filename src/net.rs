//! Network endpoints: the addresses users type, and (from them) listening and connecting.

pub mod addr;
