//! The client's address behind trusted reverse proxies (`X-Forwarded-For`).
//!
//! Sign-in throttling and the per-address hashing limit count by client
//! address. Behind a load balancer the TCP peer is the balancer, so every
//! client would share its address. When the peer is a trusted proxy, the
//! client is the right-most address in `X-Forwarded-For` that is not itself
//! a trusted proxy (each proxy appends the address it received the request
//! from; entries to the left of the first untrusted one are whatever the
//! client chose to send, and are ignored). A peer that is not trusted is
//! the client, whatever it says in the header.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// An address block: an address and a prefix length (`10.0.0.0/8`,
/// `fd00::/8`, or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    addr: IpAddr,
    prefix: u8,
}

impl IpBlock {
    /// Whether `ip` is in the block. An IPv4-mapped IPv6 address counts as
    /// its IPv4 address.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(block), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(block) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(block), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(block) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpBlock {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

/// The client's address for a request from `peer` with `headers`.
#[must_use]
pub fn client_address(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpBlock]) -> SocketAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|b| b.contains(ip));
    if trusted.is_empty() || !is_trusted(peer.ip()) {
        return peer;
    }
    let mut client = peer.ip();
    // Right to left over every `X-Forwarded-For` value, in order.
    // Split as bytes: junk a client put in the header (not even ASCII)
    // must not hide the entries the proxies appended after it.
    let hops: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .collect();
    for hop in hops.iter().rev() {
        let parsed = std::str::from_utf8(hop)
            .ok()
            .and_then(|h| h.trim().parse::<IpAddr>().ok());
        let Some(ip) = parsed else {
            // Garbage: the client is the last address a trusted proxy vouched for.
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    SocketAddr::new(client, peer.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(s: &[&str]) -> Vec<IpBlock> {
        s.iter().map(|b| b.parse().expect("block")).collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("value"));
        }
        h
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 4000)
    }

    #[test]
    fn blocks_parse_and_match() {
        let b: IpBlock = "10.0.0.0/8".parse().expect("v4");
        assert!(b.contains("10.1.2.3".parse().expect("ip")));
        assert!(!b.contains("11.0.0.1".parse().expect("ip")));
        assert!(b.contains("::ffff:10.0.0.1".parse().expect("mapped")));
        let one: IpBlock = "192.0.2.1".parse().expect("single");
        assert!(one.contains("192.0.2.1".parse().expect("ip")) && !one.contains("192.0.2.2".parse().expect("ip")));
        let v6: IpBlock = "fd00::/8".parse().expect("v6");
        assert!(v6.contains("fd12::1".parse().expect("ip")) && !v6.contains("fe80::1".parse().expect("ip")));
        let all: IpBlock = "0.0.0.0/0".parse().expect("all");
        assert!(all.contains("203.0.113.9".parse().expect("ip")));
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(bad.parse::<IpBlock>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = blocks(&["10.0.0.0/8"]);
        // Through one proxy.
        let got = client_address(peer("10.0.0.5"), &xff(&["203.0.113.7"]), &trusted);
        assert_eq!(got.ip().to_string(), "203.0.113.7");
        // Through two, with a forged entry on the left.
        let got = client_address(peer("10.0.0.5"), &xff(&["1.2.3.4, 203.0.113.7", "10.0.0.9"]), &trusted);
        assert_eq!(got.ip().to_string(), "203.0.113.7");
        // Garbage stops the walk at the last trusted hop.
        let got = client_address(peer("10.0.0.5"), &xff(&["203.0.113.7, junk"]), &trusted);
        assert_eq!(got.ip().to_string(), "10.0.0.5");
        // Junk bytes on the left do not hide the appended entry.
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\x80junk, 203.0.113.7").expect("value"),
        );
        assert_eq!(
            client_address(peer("10.0.0.5"), &h, &trusted).ip().to_string(),
            "203.0.113.7"
        );
        // No header: the proxy itself.
        let got = client_address(peer("10.0.0.5"), &HeaderMap::new(), &trusted);
        assert_eq!(got.ip().to_string(), "10.0.0.5");
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let trusted = blocks(&["10.0.0.0/8"]);
        let got = client_address(peer("198.51.100.1"), &xff(&["203.0.113.7"]), &trusted);
        assert_eq!(got.ip().to_string(), "198.51.100.1");
        let got = client_address(peer("10.0.0.5"), &xff(&["203.0.113.7"]), &[]);
        assert_eq!(
            got.ip().to_string(),
            "10.0.0.5",
            "no trusted proxies: the header is ignored"
        );
    }
}
