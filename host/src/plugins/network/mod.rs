//! Outbound network policy as pure data: what a plugin's `[network]` grant
//! and the operator's deny list say, and whether a destination or a resolved
//! address passes them.
//!
//! - `target.rs`: destinations as written: scheme, host, port, host patterns.
//! - `allow.rs`: `[network] allow` entries and operator deny entries, and
//!   which destinations they match.
//! - `address.rs`: CIDR ranges and address classes (private, link-local,
//!   CGNAT, cloud metadata).
//! - `credentials.rs`: credential templates and the resolved header.
//! - `grant.rs`: a plugin's whole grant and the checks `outbound` asks for.
//!
//! Nothing here opens a socket, resolves a name or reads the environment;
//! `outbound` applies these decisions to real requests and `sidecar` builds
//! the grant from a plugin's sidecar.

mod address;
mod allow;
mod credentials;
mod grant;
mod target;

pub(crate) use address::{AddressClass, Cidr, classify};
pub(crate) use allow::{AllowRule, DenyList, NetworkError};
pub(crate) use credentials::{Credential, TemplatePart, parse_credential_template};
pub(crate) use grant::{
    DEFAULT_MAX_REQUESTS_PER_CALL, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, NetworkGrant,
    NetworkLimits, Refusal,
};
pub(crate) use target::{Host, Scheme, Target, parse_target};
