//! Client networks a CI credential may be used from: `203.0.113.0/24`, `2001:db8::/32`.
//! Written canonically (the network address with its host bits zero), so that the tapped intent
//! says exactly what is allowed.

use std::net::IpAddr;

/// A network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn full(width: u8) -> u128 {
    if width == 32 { u128::from(u32::MAX) } else { u128::MAX }
}

/// The network bits of a `width`-bit address under `prefix`.
fn mask(prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let host = u32::from(width.saturating_sub(prefix));
    full(width) & !((1u128 << host) - 1)
}

impl Cidr {
    /// Reads `ADDRESS/PREFIX` in canonical form; the error says what to write instead.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a network: write ADDRESS/PREFIX, e.g. 203.0.113.0/24"))?;
        let network: IpAddr = addr.parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
        let (value, width) = bits(network);
        let canonical_number = prefix == "0" || !prefix.starts_with('0');
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= width && canonical_number)
            .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {width}"))?;
        let cidr = Cidr { network, prefix };
        if value & !mask(prefix, width) & full(width) != 0 {
            return Err(format!(
                "{text:?} has host bits set: write the network address, {}",
                cidr.normalised()
            ));
        }
        if cidr.to_string() != text {
            return Err(format!("write {text:?} as {cidr}"));
        }
        Ok(cidr)
    }

    fn normalised(&self) -> String {
        let (value, width) = bits(self.network);
        let net = value & mask(self.prefix, width);
        let ip = if width == 32 {
            IpAddr::V4(std::net::Ipv4Addr::from(u32::try_from(net).unwrap_or(0)))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(net))
        };
        format!("{ip}/{}", self.prefix)
    }

    /// Whether `ip` is in the network (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let ((net, w1), (addr, w2)) = (bits(self.network), bits(ip));
        w1 == w2 && (net ^ addr) & mask(self.prefix, w1) == 0
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let net = Cidr::parse("10.1.0.0/16").unwrap_or_else(|e| panic!("{e}"));
        assert!(net.contains(ip("10.1.200.3")));
        assert!(net.contains(ip("::ffff:10.1.0.1")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(!net.contains(ip("::1")));
        let one = Cidr::parse("127.0.0.1/32").unwrap_or_else(|e| panic!("{e}"));
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap_or_else(|e| panic!("{e}"));
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap_or_else(|e| panic!("{e}")).contains(ip("192.0.2.1")));
    }

    #[test]
    fn only_canonical_networks_are_accepted() {
        for bad in ["10.1.2.3/16", "10.0.0.0", "10.0.0.0/33", "10.0.0.0/08", "x/8", "2001:DB8::/32"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        let err = Cidr::parse("10.1.2.3/16").err().unwrap_or_default();
        assert!(err.contains("10.1.0.0/16"), "{err}");
    }
}
