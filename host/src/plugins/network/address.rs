//! IP addresses as the private-network check sees them: CIDR ranges, the
//! class of an address (loopback, private, link-local, CGNAT, cloud
//! metadata, …) and the IPv4 address an IPv6 form delivers to.
//!
//! Knows nothing of names, ports or grants: it answers questions about one
//! address, and `grant` decides what the answer permits.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::allow::NetworkError;

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

    pub(super) fn is_single(&self, ip: IpAddr) -> bool {
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
pub(super) fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
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
}
