//! End-to-end tests: each starts the real `toolhost` binary on a free port
//! over real TLS and talks to it as an MCP client would.
//!
//! Artefacts come from `cargo xtask test`: `TOOLHOST_BIN`, `TOOLHOST_PLUGINS`
//! (the plugins `cargo xtask run` serves) and `TOOLHOST_TEST_PLUGINS` (fixtures:
//! `tests/plugins` and the conformance suite's tools).

mod audit;
mod auth;
mod auth_abuse;
mod auth_races;
mod bad_input;
mod browser;
mod cli;
mod conformance;
mod deploy;
mod external_idp;
mod faults;
mod first_run;
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
mod state;
mod stateless;
mod tls;
mod upstream;
