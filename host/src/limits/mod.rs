//! Front-door limits: who may connect (IP allowlist, trusted proxies) and
//! how much they may call (rate limits). The decisions are plain data
//! structures; `layer` adapts the allowlist to axum, and the MCP layer asks
//! the rate table before each tool call.

mod client_ip;
mod layer;
mod rate;

pub use client_ip::{ClientIp, ClientRange, ForwardedHeader, resolve};
pub use layer::{Allowlist, address_budget_layer, client_ip_layer};
pub use rate::{AddressBudget, Limited, RateState, RateTable, RedisBudgets};
