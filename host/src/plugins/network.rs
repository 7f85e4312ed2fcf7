//! Outbound network policy as pure data: parsing `[network] allow` entries,
//! operator deny lists and CIDR ranges, matching a request's scheme, host and
//! port against them, and classifying resolved IP addresses.
//!
//! Nothing here opens a socket, resolves a name or reads the environment;
//! `outbound` applies these decisions to real requests and `sidecar` builds
//! the grant from a plugin's sidecar.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

/// Longest literal text allowed around `${…}` references in a credential
/// value: room for a scheme word such as `Bearer ` or `token `, too little for
/// a secret pasted into the sidecar by mistake.
pub(crate) const MAX_CREDENTIAL_LITERAL: usize = 32;

/// Per-request timeout when the sidecar sets none: a slow or stalled upstream
/// must not hold a call, and the instance slot it occupies, for long.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Response body bytes per request when the sidecar sets none: an upstream
/// that streams without end must not fill guest memory or host buffers.
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// Requests per call when the sidecar sets none: one call must not fan out
/// into a flood against an upstream from the server's address.
pub(crate) const DEFAULT_MAX_REQUESTS_PER_CALL: u32 = 100;

/// `http://` or `https://`; nothing else leaves the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

/// A host as written in a request: a DNS name (lowercase, no trailing dot)
/// or an IP literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Where a plugin's request goes, as parsed from its URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) scheme: Scheme,
    pub(crate) host: Host,
    pub(crate) port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The host part of an allow or deny entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    Exact(Host),
    /// `*.base`: one or more labels in front of `base`, never `base` itself.
    Wildcard(String),
}

impl HostPattern {
    fn matches(&self, host: &Host) -> bool {
        match (self, host) {
            (HostPattern::Exact(want), got) => want == got,
            (HostPattern::Wildcard(base), Host::Name(name)) => name
                .strip_suffix(base.as_str())
                .and_then(|front| front.strip_suffix('.'))
                .is_some_and(|front| !front.is_empty()),
            (HostPattern::Wildcard(_), Host::Ip(_)) => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(host) => write!(f, "{host}"),
            HostPattern::Wildcard(base) => write!(f, "*.{base}"),
        }
    }
}

/// One `[network] allow` entry: `[http://|https://]host[:port]`, where host
/// may start with `*.`. HTTPS and port 443 unless written otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowRule {
    scheme: Scheme,
    host: HostPattern,
    port: u16,
}

impl AllowRule {
    pub(crate) fn matches(&self, target: &Target) -> bool {
        self.scheme == target.scheme && self.port == target.port && self.host.matches(&target.host)
    }

    /// The single destination this rule names, unless it is a wildcard.
    pub(crate) fn exact_target(&self) -> Option<Target> {
        match &self.host {
            HostPattern::Exact(host) => Some(Target {
                scheme: self.scheme,
                host: host.clone(),
                port: self.port,
            }),
            HostPattern::Wildcard(_) => None,
        }
    }
}

impl Target {
    /// Whether the host is `localhost` or a loopback address, where plain
    /// HTTP never crosses a network.
    pub(crate) fn is_loopback(&self) -> bool {
        match &self.host {
            Host::Name(name) => name == "localhost",
            Host::Ip(ip) => classify(*ip) == AddressClass::Loopback,
        }
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl FromStr for AllowRule {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<AllowRule, NetworkError> {
        let err = |reason: String| NetworkError::Entry {
            entry: text.to_string(),
            reason,
        };
        let (scheme, rest) = match text.split_once("://") {
            Some(("https", rest)) => (Scheme::Https, rest),
            Some(("http", rest)) => (Scheme::Http, rest),
            Some((other, _)) => {
                return Err(err(format!(
                    "scheme {other:?} is not allowed; only http:// and https://"
                )));
            }
            None => (Scheme::Https, text),
        };
        let (host, port) = split_host_port(rest).map_err(err)?;
        Ok(AllowRule {
            scheme,
            host: parse_host_pattern(host).map_err(err)?,
            port: port.unwrap_or(scheme.default_port()),
        })
    }
}

/// An IP range in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address
/// is a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }

    fn is_single(&self, ip: IpAddr) -> bool {
        let full = if ip.is_ipv4() { 32 } else { 128 };
        self.network == ip && self.prefix == full
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<Cidr, NetworkError> {
        let err = |reason: &str| NetworkError::Entry {
            entry: text.to_string(),
            reason: reason.to_string(),
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| err("not an IP address or CIDR range"))?;
        let full = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => full,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= full)
                .ok_or_else(|| err("the prefix length is too long for the address"))?,
            Some(_) => return Err(err("the prefix length must be a number")),
        };
        let cidr = Cidr { network, prefix };
        let masked_equal = match network {
            IpAddr::V4(ip) => {
                (0..4).all(|i| ip.octets()[i] == mask_byte(ip.octets()[i], i, prefix))
            }
            IpAddr::V6(ip) => {
                (0..16).all(|i| ip.octets()[i] == mask_byte(ip.octets()[i], i, prefix))
            }
        };
        if !masked_equal {
            return Err(err(
                "the address has bits set beyond the prefix length; write the network address",
            ));
        }
        Ok(cidr)
    }
}

/// The operator's `plugins.policy.network_deny`: host patterns (any scheme,
/// any port unless one is given) and CIDR ranges (checked on resolved
/// addresses). A deny always wins over a sidecar's allow.
#[derive(Debug, Clone, Default)]
pub(crate) struct DenyList {
    hosts: Vec<(HostPattern, Option<u16>)>,
    ranges: Vec<Cidr>,
}

impl DenyList {
    /// Parses the policy entries once at start-up.
    pub(crate) fn parse(entries: &[String]) -> Result<DenyList, NetworkError> {
        let mut deny = DenyList::default();
        for entry in entries {
            // A bare address is a range of one, so it also covers names
            // that resolve to it.
            let is_range = entry.parse::<IpAddr>().is_ok()
                || entry
                    .split_once('/')
                    .is_some_and(|(addr, _)| addr.parse::<IpAddr>().is_ok());
            if is_range {
                deny.ranges.push(entry.parse()?);
                continue;
            }
            let (host, port) = split_host_port(entry).map_err(|reason| NetworkError::Entry {
                entry: entry.clone(),
                reason,
            })?;
            let host = parse_host_pattern(host).map_err(|reason| NetworkError::Entry {
                entry: entry.clone(),
                reason,
            })?;
            deny.hosts.push((host, port));
        }
        Ok(deny)
    }

    fn denies_target(&self, target: &Target) -> bool {
        self.hosts.iter().any(|(host, port)| {
            host.matches(&target.host) && port.is_none_or(|port| port == target.port)
        })
    }

    fn denies_address(&self, ip: IpAddr, embedded: Option<IpAddr>) -> bool {
        self.ranges
            .iter()
            .any(|range| range.contains(ip) || embedded.is_some_and(|v4| range.contains(v4)))
    }
}

/// Per-request and per-call bounds on a plugin's outbound traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetworkLimits {
    /// Whole exchange: resolution, connect, TLS, headers and body.
    pub(crate) timeout: Duration,
    /// Response body bytes, counted as they stream in.
    pub(crate) max_response_bytes: u64,
    /// Requests one call may start, refused ones included.
    pub(crate) max_requests_per_call: u32,
}

/// A header the host adds to requests for one destination. The plugin never
/// sees the value; `Debug` never prints it.
#[derive(Clone)]
pub(crate) struct Credential {
    pub(crate) target: AllowRule,
    pub(crate) header: HeaderName,
    pub(crate) value: HeaderValue,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("target", &self.target.to_string())
            .field("header", &self.header)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// What one plugin may reach, built from its sidecar at load time and shared
/// by every call of that plugin. The default grants nothing.
#[derive(Debug, Clone)]
pub(crate) struct NetworkGrant {
    pub(crate) allow: Vec<AllowRule>,
    pub(crate) allow_private: Vec<Cidr>,
    pub(crate) limits: NetworkLimits,
    pub(crate) credentials: Vec<Credential>,
}

/// Why a request or a resolved address was refused; logged with the plugin
/// and destination, and mapped to a `wasi:http` error code for the guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("the plugin has no [network] grant")]
    NoNetwork,
    #[error("denied by plugins.policy.network_deny")]
    OperatorDenied,
    #[error("not in the plugin's [network] allow list")]
    NotAllowed,
    #[error("{ip} is denied by plugins.policy.network_deny")]
    OperatorDeniedAddress { ip: IpAddr },
    #[error(
        "{ip} is a non-public address ({class}) outside the plugin's [network] allow_private ranges"
    )]
    NonPublicAddress { ip: IpAddr, class: AddressClass },
}

impl NetworkGrant {
    /// No network at all: what a plugin without a `[network]` table gets,
    /// and what `list-tools` runs with at load time.
    pub(crate) fn none() -> NetworkGrant {
        NetworkGrant {
            allow: Vec::new(),
            allow_private: Vec::new(),
            limits: NetworkLimits {
                timeout: DEFAULT_TIMEOUT,
                max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
                max_requests_per_call: DEFAULT_MAX_REQUESTS_PER_CALL,
            },
            credentials: Vec::new(),
        }
    }

    /// Whether the plugin has any network at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.allow.is_empty()
    }

    /// Checks a request's destination before anything is resolved.
    pub(crate) fn check_target(&self, target: &Target, deny: &DenyList) -> Result<(), Refusal> {
        if self.is_empty() {
            return Err(Refusal::NoNetwork);
        }
        if deny.denies_target(target) {
            return Err(Refusal::OperatorDenied);
        }
        if !self.allow.iter().any(|rule| rule.matches(target)) {
            return Err(Refusal::NotAllowed);
        }
        if let Host::Ip(ip) = target.host {
            self.check_address(ip, deny)?;
        }
        Ok(())
    }

    /// Checks one resolved address. Returns the address to connect to: an
    /// IPv4-mapped IPv6 address comes back as plain IPv4, so the address
    /// checked is the address used.
    pub(crate) fn check_address(&self, ip: IpAddr, deny: &DenyList) -> Result<IpAddr, Refusal> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        let embedded = embedded_ipv4(ip).map(IpAddr::V4);
        if deny.denies_address(ip, embedded) {
            return Err(Refusal::OperatorDeniedAddress { ip });
        }
        let class = classify(ip);
        let granted = match class {
            AddressClass::Public => true,
            // Credentials for the whole cloud account sit behind these; only a
            // range naming the address exactly opens it, never a broad one.
            AddressClass::Metadata => self.allow_private.iter().any(|r| r.is_single(ip)),
            _ => self
                .allow_private
                .iter()
                .any(|r| r.contains(ip) || embedded.is_some_and(|v4| r.contains(v4))),
        };
        if granted {
            Ok(ip)
        } else {
            Err(Refusal::NonPublicAddress { ip, class })
        }
    }

    /// The credential to attach for `target`, if the sidecar declares one.
    pub(crate) fn credential_for(&self, target: &Target) -> Option<&Credential> {
        self.credentials.iter().find(|c| c.target.matches(target))
    }
}

/// What kind of address an IP is, for the private-network check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressClass {
    Public,
    Loopback,
    Private,
    LinkLocal,
    /// 100.64.0.0/10, carrier-grade NAT.
    Shared,
    Unspecified,
    Multicast,
    Broadcast,
    /// Documentation, benchmarking, reserved and deprecated ranges.
    Reserved,
    /// Cloud instance metadata endpoints.
    Metadata,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Shared => "shared (CGNAT)",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Reserved => "reserved",
            AddressClass::Metadata => "cloud metadata",
        })
    }
}

/// Instance metadata services: AWS/GCP/Azure/OpenStack (169.254.169.254), AWS
/// DNS and ECS task credentials, Alibaba, Azure's wire server (a public
/// address), and AWS's IPv6 endpoint.
const METADATA_V4: [Ipv4Addr; 5] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 169, 253),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(168, 63, 129, 16),
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

/// Classifies an address. IPv6 forms that carry an IPv4 address (mapped,
/// compatible, NAT64, 6to4) are classified by the IPv4 address they carry,
/// since that is where the packets end up.
pub(crate) fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if METADATA_V6.contains(&v6) {
                return AddressClass::Metadata;
            }
            if v6.is_unspecified() {
                return AddressClass::Unspecified;
            }
            if v6.is_loopback() {
                return AddressClass::Loopback;
            }
            if let Some(v4) = embedded_ipv4(ip) {
                return classify_v4(v4);
            }
            let seg = v6.segments();
            match seg[0] {
                s if s & 0xfe00 == 0xfc00 => AddressClass::Private,
                s if s & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
                // Site-local (deprecated) addresses route like private ones.
                s if s & 0xffc0 == 0xfec0 => AddressClass::Private,
                s if s & 0xff00 == 0xff00 => AddressClass::Multicast,
                // NAT64 local-use prefix (RFC 8215) reaches a private network.
                0x64 if seg[1] == 0xff9b && seg[2] == 1 => AddressClass::Private,
                // Discard-only (100::/64), Teredo (2001::/32), documentation.
                0x100 if seg[1..4] == [0, 0, 0] => AddressClass::Reserved,
                0x2001 if seg[1] == 0 || seg[1] == 0xdb8 => AddressClass::Reserved,
                s if s & 0xe000 != 0x2000 => AddressClass::Reserved,
                _ => AddressClass::Public,
            }
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    if METADATA_V4.contains(&ip) {
        return AddressClass::Metadata;
    }
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => AddressClass::Unspecified,
        (127, _, _) => AddressClass::Loopback,
        (10, _, _) => AddressClass::Private,
        (172, 16..=31, _) => AddressClass::Private,
        (192, 168, _) => AddressClass::Private,
        (169, 254, _) => AddressClass::LinkLocal,
        (100, 64..=127, _) => AddressClass::Shared,
        (224..=239, _, _) => AddressClass::Multicast,
        (255, 255, 255) if ip == Ipv4Addr::BROADCAST => AddressClass::Broadcast,
        (240..=255, _, _) => AddressClass::Reserved,
        (192, 0, 0) | (192, 0, 2) | (192, 88, 99) | (198, 51, 100) | (203, 0, 113) => {
            AddressClass::Reserved
        }
        (198, 18..=19, _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

/// The IPv4 address an IPv6 address carries, for the forms that deliver to
/// it: mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`).
fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let seg = v6.segments();
    let tail = Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    );
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if seg[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback() {
        return Some(tail);
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if seg[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        ));
    }
    None
}

/// One piece of a credential value: literal text or a reference resolved by
/// the host at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplatePart {
    Literal(String),
    Env(String),
    File(PathBuf),
}

/// Parses a credential value such as `Bearer ${env:GITHUB_TOKEN}`.
///
/// The rule that keeps secrets out of sidecar files: a value holds at least
/// one `${env:NAME}` or `${file:/absolute/path}` reference, and the literal
/// text around the references is at most [`MAX_CREDENTIAL_LITERAL`] bytes of
/// ASCII letters, spaces and `-` `.` `:` `_` (no digits), enough for `Bearer `
/// or `token ` and too little for a token. Error messages never repeat the
/// value.
pub(crate) fn parse_credential_template(text: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    let mut literal_len = 0;
    let mut n_refs = 0;
    while !rest.is_empty() {
        let (literal, after) = match rest.find("${") {
            Some(idx) => (&rest[..idx], Some(&rest[idx + 2..])),
            None => (rest, None),
        };
        if !literal.is_empty() {
            let allowed = literal
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b" -.:_".contains(&b));
            literal_len += literal.len();
            if !allowed || literal_len > MAX_CREDENTIAL_LITERAL {
                return Err(TEMPLATE_RULE.to_string());
            }
            parts.push(TemplatePart::Literal(literal.to_string()));
        }
        let Some(after) = after else { break };
        let (reference, tail) = after
            .split_once('}')
            .ok_or_else(|| "a ${ reference is not closed with }".to_string())?;
        let part = match reference.split_once(':') {
            Some(("env", name)) if is_env_name(name) => TemplatePart::Env(name.to_string()),
            Some(("env", _)) => {
                return Err("${env:NAME} needs a variable name of [A-Za-z0-9_]".into());
            }
            Some(("file", path)) if path.starts_with('/') => TemplatePart::File(path.into()),
            Some(("file", _)) => return Err("${file:PATH} needs an absolute path".into()),
            _ => {
                return Err("references must be ${env:NAME} or ${file:/absolute/path}".to_string());
            }
        };
        parts.push(part);
        n_refs += 1;
        rest = tail;
    }
    if n_refs == 0 {
        return Err(TEMPLATE_RULE.to_string());
    }
    Ok(parts)
}

/// The rule a credential value breaks, stated without repeating the value.
const TEMPLATE_RULE: &str = "a credential value must be built from ${env:NAME} or \
    ${file:/absolute/path} references, with at most 32 letters, spaces and - . : _ of literal \
    text around them (such as \"Bearer \"); literal secrets are refused";

fn is_env_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Why an entry of a grant or policy did not parse.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetworkError {
    #[error("{entry:?}: {reason}")]
    Entry { entry: String, reason: String },
}

/// Parses the host of a request URI (`api.github.com`, `[::1]`, `10.0.0.1`)
/// with its scheme and optional port.
pub(crate) fn parse_target(
    scheme: Scheme,
    host: &str,
    port: Option<u16>,
) -> Result<Target, String> {
    let host = match parse_host_pattern(host)? {
        HostPattern::Exact(host) => host,
        HostPattern::Wildcard(_) => return Err("a wildcard is not a host".into()),
    };
    Ok(Target {
        scheme,
        host,
        port: port.unwrap_or(scheme.default_port()),
    })
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    if text.contains(['/', '?', '#']) {
        return Err(HOST_PORT_SHAPE.into());
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs a closing ]")?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("only :port may follow an IPv6 address")?,
                ),
            ),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err("the port must be 1-65535".into()),
                Ok(port) => Some(port),
            }
        }
        Some(_) => {
            return Err(HOST_PORT_SHAPE.into());
        }
    };
    Ok((host, port))
}

const HOST_PORT_SHAPE: &str =
    "expected host or host:port (no path; IPv6 in brackets, such as [::1]:8080)";

fn parse_host_pattern(text: &str) -> Result<HostPattern, String> {
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .map_or(text, |v6| v6);
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(HostPattern::Exact(Host::Ip(ip)));
    }
    let (wildcard, name) = match text.strip_prefix("*.") {
        Some(base) => (true, base),
        None => (false, text),
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let valid = !name.is_empty()
        && name.len() <= 253
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(
            "not a valid host name (ASCII letters, digits, - and _ in dot-separated labels; \
             use punycode for international names)"
                .into(),
        );
    }
    // An all-digit last label is not a DNS name but a resolver may read it as
    // an IPv4 address in another notation (`127.1`, `2130706433`).
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("looks like an IPv4 address in a nonstandard notation".into());
    }
    if wildcard {
        if labels.len() < 2 {
            return Err(
                "a wildcard must cover a domain with at least two labels, such as *.example.com"
                    .into(),
            );
        }
        return Ok(HostPattern::Wildcard(name));
    }
    Ok(HostPattern::Exact(Host::Name(name)))
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    (0..a.len()).all(|i| mask_byte(a[i], i, prefix) == mask_byte(b[i], i, prefix))
}

/// Byte `idx` of an address with everything past `prefix` bits cleared.
fn mask_byte(byte: u8, idx: usize, prefix: u8) -> u8 {
    let start = idx * 8;
    let keep = (prefix as usize).saturating_sub(start).min(8);
    match keep {
        0 => 0,
        8 => byte,
        n => byte & !(0xffu8 >> n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(allow: &[&str], allow_private: &[&str]) -> NetworkGrant {
        NetworkGrant {
            allow: allow
                .iter()
                .map(|a| a.parse().expect("allow entry"))
                .collect(),
            allow_private: allow_private
                .iter()
                .map(|a| a.parse().expect("cidr"))
                .collect(),
            limits: NetworkLimits {
                timeout: Duration::from_secs(1),
                max_response_bytes: 1,
                max_requests_per_call: 1,
            },
            credentials: Vec::new(),
        }
    }

    fn target(url: &str) -> Target {
        let (scheme, rest) = url.split_once("://").expect("scheme");
        let scheme = if scheme == "http" {
            Scheme::Http
        } else {
            Scheme::Https
        };
        let (host, port) = split_host_port(rest).expect("authority");
        parse_target(scheme, host, port).expect("target")
    }

    #[test]
    fn allow_entries_parse() {
        let check =
            |entry: &str, expect: Result<&str, &str>| match (entry.parse::<AllowRule>(), expect) {
                (Ok(rule), Ok(shown)) => assert_eq!(rule.to_string(), shown, "{entry}"),
                (Err(err), Err(part)) => {
                    let err = err.to_string();
                    assert!(err.contains(part), "{entry}: {err:?} lacks {part:?}");
                }
                (res, expect) => panic!("{entry}: got {res:?}, expected {expect:?}"),
            };
        check("api.github.com", Ok("https://api.github.com:443"));
        check("API.GitHub.com.", Ok("https://api.github.com:443"));
        check("*.atlassian.net:443", Ok("https://*.atlassian.net:443"));
        check("http://localhost:8080", Ok("http://localhost:8080"));
        check("http://example.com", Ok("http://example.com:80"));
        check("https://example.com:8443", Ok("https://example.com:8443"));
        check("10.1.2.3:9000", Ok("https://10.1.2.3:9000"));
        check("http://[::1]:8080", Ok("http://[::1]:8080"));
        check("ftp://example.com", Err("only http:// and https://"));
        check("example.com/path", Err("no path"));
        check("example.com:0", Err("1-65535"));
        check("example.com:70000", Err("1-65535"));
        check("example.com:", Err("host:port"));
        check("*", Err("valid host name"));
        check("*.com", Err("at least two labels"));
        check("a.*.example.com", Err("valid host name"));
        check("*.10.0.0.1", Err("nonstandard notation"));
        check("127.1", Err("nonstandard notation"));
        check("2130706433", Err("nonstandard notation"));
        check("::1", Err("host:port"));
        check("user@example.com", Err("valid host name"));
        check("exa mple.com", Err("valid host name"));
        check("bücher.de", Err("punycode"));
        check("", Err("valid host name"));
    }

    #[test]
    fn targets_match_rules() {
        let check = |allow: &[&str], url: &str, expect: bool| {
            let res = grant(allow, &[])
                .allow
                .iter()
                .any(|r| r.matches(&target(url)));
            assert_eq!(res, expect, "{allow:?} vs {url}");
        };
        check(&["api.github.com"], "https://api.github.com", true);
        check(&["api.github.com"], "https://API.GITHUB.COM.", true);
        check(&["api.github.com"], "https://api.github.com:443", true);
        check(&["api.github.com"], "http://api.github.com", false);
        check(&["api.github.com"], "https://api.github.com:8443", false);
        check(&["api.github.com"], "https://github.com", false);
        check(&["api.github.com"], "https://evil.api.github.com", false);
        check(
            &["api.github.com"],
            "https://api.github.com.evil.com",
            false,
        );
        check(&["*.atlassian.net"], "https://a.atlassian.net", true);
        check(&["*.atlassian.net"], "https://a.b.atlassian.net", true);
        check(&["*.atlassian.net"], "https://atlassian.net", false);
        check(&["*.atlassian.net"], "https://evilatlassian.net", false);
        check(&["*.atlassian.net"], "https://a.atlassian.net:8443", false);
        check(&["http://localhost:8080"], "http://localhost:8080", true);
        check(&["http://localhost:8080"], "https://localhost:8080", false);
        check(&["http://localhost:8080"], "http://localhost", false);
        check(&["http://localhost:8080"], "http://127.0.0.1:8080", false);
        check(&["http://127.0.0.1:8080"], "http://127.0.0.1:8080", true);
        check(&["http://[::1]:80"], "http://[::1]", true);
    }

    #[test]
    fn address_classes() {
        let check = |ip: &str, expect: AddressClass| {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(classify(ip), expect, "{ip}");
        };
        use AddressClass::*;
        check("8.8.8.8", Public);
        check("140.82.112.6", Public);
        check("127.0.0.1", Loopback);
        check("127.255.0.9", Loopback);
        check("10.0.0.1", Private);
        check("172.16.0.1", Private);
        check("172.31.255.255", Private);
        check("172.32.0.1", Public);
        check("192.168.1.1", Private);
        check("169.254.1.1", LinkLocal);
        check("169.254.169.254", Metadata);
        check("169.254.170.2", Metadata);
        check("100.100.100.200", Metadata);
        check("168.63.129.16", Metadata);
        check("100.64.0.1", Shared);
        check("100.127.255.255", Shared);
        check("100.128.0.1", Public);
        check("0.0.0.0", Unspecified);
        check("0.1.2.3", Unspecified);
        check("224.0.0.1", Multicast);
        check("255.255.255.255", Broadcast);
        check("240.0.0.1", Reserved);
        check("192.0.2.1", Reserved);
        check("198.18.0.1", Reserved);
        check("2606:4700::1111", Public);
        check("::", Unspecified);
        check("::1", Loopback);
        check("fc00::1", Private);
        check("fd12:3456::1", Private);
        check("fd00:ec2::254", Metadata);
        check("fe80::1", LinkLocal);
        check("fec0::1", Private);
        check("ff02::1", Multicast);
        check("::ffff:127.0.0.1", Loopback);
        check("::ffff:169.254.169.254", Metadata);
        check("::ffff:8.8.8.8", Public);
        check("::10.0.0.1", Private);
        check("64:ff9b::a9fe:a9fe", Metadata);
        check("64:ff9b::808:808", Public);
        check("64:ff9b:1::1", Private);
        check("2002:7f00:1::", Loopback);
        check("2002:c0a8:101::1", Private);
        check("2001:db8::1", Reserved);
        check("2001:0:4136:e378::1", Reserved);
        check("100::1", Reserved);
        check("4000::1", Reserved);
    }

    #[test]
    fn addresses_against_grants() {
        let check =
            |allow_private: &[&str], deny: &[&str], ip: &str, expect: Result<&str, &str>| {
                let deny = DenyList::parse(&deny.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                    .expect("deny");
                let ip: IpAddr = ip.parse().expect("ip");
                let res = grant(&["example.com"], allow_private).check_address(ip, &deny);
                match (res, expect) {
                    (Ok(got), Ok(want)) => assert_eq!(got.to_string(), want),
                    (Err(err), Err(part)) => {
                        let err = err.to_string();
                        assert!(err.contains(part), "{ip}: {err:?} lacks {part:?}");
                    }
                    (res, expect) => panic!("{ip}: got {res:?}, expected {expect:?}"),
                }
            };
        check(&[], &[], "93.184.216.34", Ok("93.184.216.34"));
        check(&[], &[], "127.0.0.1", Err("(loopback) outside"));
        check(&["127.0.0.0/8"], &[], "127.0.0.1", Ok("127.0.0.1"));
        check(&["127.0.0.0/8"], &[], "::ffff:127.0.0.1", Ok("127.0.0.1"));
        check(&["127.0.0.0/8"], &[], "::1", Err("loopback"));
        check(&["::1"], &[], "::1", Ok("::1"));
        check(&["10.0.0.0/8"], &[], "10.9.9.9", Ok("10.9.9.9"));
        check(&["10.0.0.0/8"], &[], "11.0.0.1", Ok("11.0.0.1"));
        check(&["10.1.0.0/16"], &[], "10.2.0.1", Err("(private) outside"));
        check(&["10.0.0.0/8"], &[], "64:ff9b::a00:1", Ok("64:ff9b::a00:1"));
        check(&[], &[], "169.254.169.254", Err("cloud metadata"));
        check(
            &["169.254.0.0/16"],
            &[],
            "169.254.169.254",
            Err("cloud metadata"),
        );
        check(
            &["0.0.0.0/0"],
            &[],
            "169.254.169.254",
            Err("cloud metadata"),
        );
        check(
            &["169.254.169.254/32"],
            &[],
            "169.254.169.254",
            Ok("169.254.169.254"),
        );
        check(&["fd00::/8"], &[], "fd00:ec2::254", Err("cloud metadata"));
        check(&[], &[], "168.63.129.16", Err("cloud metadata"));
        check(&["0.0.0.0/0"], &[], "0.0.0.0", Ok("0.0.0.0"));
        check(&[], &[], "0.0.0.0", Err("unspecified"));
        check(&[], &[], "100.64.1.1", Err("shared (CGNAT)"));
        check(&[], &[], "fe80::1", Err("link-local"));
        check(
            &[],
            &["93.184.0.0/16"],
            "93.184.216.34",
            Err("network_deny"),
        );
        check(
            &["10.0.0.0/8"],
            &["10.0.0.0/8"],
            "10.1.1.1",
            Err("network_deny"),
        );
        check(&[], &["10.0.0.0/8"], "::ffff:10.0.0.1", Err("network_deny"));
        check(
            &[],
            &["93.184.216.34"],
            "93.184.216.34",
            Err("network_deny"),
        );
    }

    #[test]
    fn targets_against_grants() {
        let check = |allow: &[&str], deny: &[&str], url: &str, expect: Result<(), &str>| {
            let deny = DenyList::parse(&deny.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .expect("deny");
            let res = grant(allow, &[]).check_target(&target(url), &deny);
            match (res, expect) {
                (Ok(()), Ok(())) => {}
                (Err(err), Err(part)) => {
                    let err = err.to_string();
                    assert!(err.contains(part), "{url}: {err:?} lacks {part:?}");
                }
                (res, expect) => panic!("{url}: got {res:?}, expected {expect:?}"),
            }
        };
        check(
            &[],
            &[],
            "https://api.github.com",
            Err("no [network] grant"),
        );
        check(&["api.github.com"], &[], "https://api.github.com", Ok(()));
        check(
            &["api.github.com"],
            &[],
            "https://example.com",
            Err("allow list"),
        );
        check(
            &["api.github.com"],
            &["api.github.com"],
            "https://api.github.com",
            Err("network_deny"),
        );
        check(
            &["*.github.com"],
            &["gist.github.com:443"],
            "https://gist.github.com",
            Err("network_deny"),
        );
        check(
            &["*.github.com"],
            &["gist.github.com:80"],
            "https://gist.github.com",
            Ok(()),
        );
        check(
            &["*.github.com"],
            &["*.internal.github.com"],
            "https://a.internal.github.com",
            Err("network_deny"),
        );
        check(
            &["http://169.254.169.254"],
            &[],
            "http://169.254.169.254",
            Err("cloud metadata"),
        );
        check(
            &["http://127.0.0.1:80"],
            &[],
            "http://127.0.0.1",
            Err("loopback"),
        );
        check(&["http://localhost:80"], &[], "http://localhost", Ok(()));
    }

    #[test]
    fn deny_entries_parse() {
        let check = |entry: &str, expect: Result<(), &str>| match (
            DenyList::parse(&[entry.to_string()]),
            expect,
        ) {
            (Ok(_), Ok(())) => {}
            (Err(err), Err(part)) => {
                let err = err.to_string();
                assert!(err.contains(part), "{entry}: {err:?} lacks {part:?}");
            }
            (res, expect) => panic!("{entry}: got {res:?}, expected {expect:?}"),
        };
        check("metadata.google.internal", Ok(()));
        check("*.corp.example.com", Ok(()));
        check("example.com:8080", Ok(()));
        check("169.254.0.0/16", Ok(()));
        check("10.1.2.3", Ok(()));
        check("fd00::/8", Ok(()));
        check("10.0.0.1/8", Err("write the network address"));
        check("10.0.0.0/33", Err("too long"));
        check("10.0.0.0/x", Err("must be a number"));
        check("nope/8", Err("host:port"));
        check("https://example.com", Err("host:port"));
    }

    #[test]
    fn cidr_contains() {
        let check = |cidr: &str, ip: &str, expect: bool| {
            let cidr: Cidr = cidr.parse().expect("cidr");
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(cidr.contains(ip), expect, "{cidr} ∋ {ip}");
        };
        check("127.0.0.0/8", "127.1.2.3", true);
        check("127.0.0.0/8", "128.0.0.1", false);
        check("172.16.0.0/12", "172.31.0.1", true);
        check("172.16.0.0/12", "172.32.0.1", false);
        check("10.0.0.5", "10.0.0.5", true);
        check("10.0.0.5", "10.0.0.6", false);
        check("0.0.0.0/0", "1.2.3.4", true);
        check("0.0.0.0/0", "::1", false);
        check("fc00::/7", "fdff::1", true);
        check("fc00::/7", "fe00::1", false);
        check("::1/128", "::1", true);
    }

    #[test]
    fn credential_templates() {
        let check = |text: &str, expect: Result<Vec<TemplatePart>, &str>| match (
            parse_credential_template(text),
            expect,
        ) {
            (Ok(parts), Ok(want)) => assert_eq!(parts, want, "{text}"),
            (Err(err), Err(part)) => {
                assert!(err.contains(part), "{text}: {err:?} lacks {part:?}");
                assert!(
                    !err.contains(text) || text.len() < 8,
                    "error echoes the value"
                );
            }
            (res, expect) => panic!("{text}: got {res:?}, expected {expect:?}"),
        };
        use TemplatePart::*;
        check(
            "Bearer ${env:GITHUB_TOKEN}",
            Ok(vec![Literal("Bearer ".into()), Env("GITHUB_TOKEN".into())]),
        );
        check(
            "${file:/run/secrets/jira_token}",
            Ok(vec![File("/run/secrets/jira_token".into())]),
        );
        check(
            "${env:A}:${env:B}",
            Ok(vec![Env("A".into()), Literal(":".into()), Env("B".into())]),
        );
        check(
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            Err("literal secrets are refused"),
        );
        check(
            "Bearer ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            Err("literal secrets"),
        );
        check("Bearer abc123${env:X}", Err("literal secrets are refused"));
        check(&format!("{}${{env:X}}", "a".repeat(33)), Err("at most 32"));
        check("Bearer", Err("literal secrets are refused"));
        check("", Err("literal secrets are refused"));
        check("${env:}", Err("variable name"));
        check("${env:A-B}", Err("variable name"));
        check("${file:relative/path}", Err("absolute path"));
        check("${vault:x}", Err("references must be"));
        check("Bearer ${env:X", Err("not closed"));
    }
}
