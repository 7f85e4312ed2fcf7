//! End-to-end tests: each starts the real `toolhost` binary on a free port
//! over real TLS and talks to it as an MCP client would.
//!
//! Artefacts come from `cargo xtask test`: `TOOLHOST_BIN`, `TOOLHOST_PLUGINS`
//! (bundled plugins) and `TOOLHOST_TEST_PLUGINS` (fixtures in `tests/plugins`).

mod audit;
mod auth;
mod auth_abuse;
mod auth_races;
mod bad_input;
mod cli;
mod conformance;
mod external_idp;
mod faults;
mod github;
mod guest_logs;
mod harness;
mod interop;
mod jira;
mod languages;
mod limits;
mod loading;
mod metrics;
mod mtls;
mod network;
mod reference;
mod reload;
mod reload_load;
mod sandbox;
mod session_era;
mod stateless;
mod tls;
mod upstream;
