//! `net.cidr_intersects`, `net.cidr_contains_matches` and `net.cidr_merge` (OPA
//! `v1/topdown/cidr.go`, its merge from `internal/cidr/merge`), on addresses held as Go's
//! `net.IP` holds them (4 or 16 bytes, IPv4 in IPv6 as `::ffff:a.b.c.d`), because OPA's
//! answers depend on that form: `net.cidr_merge(["10.1.2.3"])` is `{"10.1.2.3/8"}` (the
//! address with its class's mask, unmasked), and an IPv4 range written in IPv6 notation
//! takes other paths than one written as IPv4. Where Go's code panics on an index (a few
//! IPv6 merges, such as `::1:0/128` with `::1:1/128`), the call is a builtin error.

use std::cmp::Ordering;
use std::net::IpAddr;

use num_bigint::BigUint;
use regorus::Value;

use super::{string_operand, type_name};

pub const FUNCTIONS: &[(&str, usize)] = &[
    ("net.cidr_intersects", 2),
    ("net.cidr_contains_matches", 2),
    ("net.cidr_merge", 1),
];

pub fn call(name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let result = match name {
        "net.cidr_intersects" => intersects(args),
        "net.cidr_contains_matches" => contains_matches(args),
        "net.cidr_merge" => merge(args),
        _ => return None,
    };
    Some(result)
}

/// What Go's code would panic on: the call fails.
const PANIC: &str = "index out of range";

const V4_IN_V6: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/// Go's `net.IPNet`: an address and a mask, each 4 or 16 bytes (or, from the merge's
/// arithmetic, some other length, as in Go).
#[derive(Clone, Debug)]
struct Network {
    ip: Vec<u8>,
    mask: Vec<u8>,
}

/// Go's `net.ParseIP`: the 16-byte form, `None` for what is not an address (or has a zone).
fn parse_ip(text: &str) -> Option<Vec<u8>> {
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some([&V4_IN_V6[..], &v4.octets()].concat()),
        IpAddr::V6(v6) => Some(v6.octets().to_vec()),
    }
}

/// Go's `net.ParseCIDR`: the network, its address masked.
fn parse_cidr(text: &str) -> Result<Network, String> {
    let invalid = || format!("invalid CIDR address: {text}");
    let (address, prefix) = text.split_once('/').ok_or_else(invalid)?;
    let (ip16, bits) = match address.parse::<IpAddr>().map_err(|_| invalid())? {
        IpAddr::V4(v4) => ([&V4_IN_V6[..], &v4.octets()].concat(), 32),
        IpAddr::V6(v6) => (v6.octets().to_vec(), 128),
    };
    // Go's `dtoi`: decimal digits only, leading zeros allowed.
    if prefix.is_empty() || prefix.len() > 7 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let ones: usize = prefix.parse().map_err(|_| invalid())?;
    if ones > bits {
        return Err(invalid());
    }
    let mask = cidr_mask(ones, bits);
    let ip = mask_ip(&ip16, &mask).ok_or_else(invalid)?;
    Ok(Network { ip, mask })
}

/// Go's `net.CIDRMask`.
fn cidr_mask(ones: usize, bits: usize) -> Vec<u8> {
    (0..bits / 8)
        .map(|i| {
            let set = ones.saturating_sub(i * 8).min(8);
            // `set` is 0..=8: the top `set` bits.
            (0xff_u16 << (8 - set)) as u8
        })
        .collect()
}

/// Go's `IP.To4`.
fn to4(ip: &[u8]) -> Option<&[u8]> {
    match ip.len() {
        4 => Some(ip),
        16 if ip.get(..12) == Some(&V4_IN_V6[..]) => ip.get(12..),
        _ => None,
    }
}

/// Go's `IP.To16`.
fn to16(ip: &[u8]) -> Option<Vec<u8>> {
    match ip.len() {
        4 => Some([&V4_IN_V6[..], ip].concat()),
        16 => Some(ip.to_vec()),
        _ => None,
    }
}

/// Go's `IP.Mask`: `None` (Go's nil) when the lengths do not fit.
fn mask_ip(ip: &[u8], mask: &[u8]) -> Option<Vec<u8>> {
    let mut ip = ip;
    let mut mask = mask;
    if mask.len() == 16 && ip.len() == 4 && mask.get(..12).is_some_and(|m| m == [0xff; 12]) {
        mask = mask.get(12..)?;
    }
    if mask.len() == 4 && ip.len() == 16 && ip.get(..12) == Some(&V4_IN_V6[..]) {
        ip = ip.get(12..)?;
    }
    (ip.len() == mask.len()).then(|| ip.iter().zip(mask).map(|(a, m)| a & m).collect())
}

/// Go's `IP.Equal`.
fn ip_equal(a: &[u8], b: &[u8]) -> bool {
    match (a.len(), b.len()) {
        (x, y) if x == y => a == b,
        (4, 16) => b.get(..12) == Some(&V4_IN_V6[..]) && b.get(12..) == Some(a),
        (16, 4) => a.get(..12) == Some(&V4_IN_V6[..]) && a.get(12..) == Some(b),
        _ => false,
    }
}

/// Go's `networkNumberAndMask`.
fn number_and_mask(network: &Network) -> Option<(Vec<u8>, Vec<u8>)> {
    let ip = match to4(&network.ip) {
        Some(v4) => v4.to_vec(),
        None if network.ip.len() == 16 => network.ip.clone(),
        None => return None,
    };
    let mask = match (network.mask.len(), ip.len()) {
        (4, 4) => network.mask.clone(),
        (4, _) => return None,
        (16, 4) => network.mask.get(12..)?.to_vec(),
        (16, _) => network.mask.clone(),
        _ => return None,
    };
    Some((ip, mask))
}

/// Go's `IPNet.Contains`.
fn contains(network: &Network, ip: &[u8]) -> bool {
    let Some((number, mask)) = number_and_mask(network) else {
        return false;
    };
    let ip = to4(ip).unwrap_or(ip);
    ip.len() == number.len()
        && number
            .iter()
            .zip(&mask)
            .zip(ip)
            .all(|((n, m), x)| n & m == x & m)
}

/// Go's `simpleMaskLength`: the ones of a canonical mask, `None` for any other.
fn mask_ones(mask: &[u8]) -> Option<usize> {
    let mut ones = 0;
    let mut ended = false;
    for &byte in mask {
        if ended {
            if byte != 0 {
                return None;
            }
            continue;
        }
        let leading = byte.leading_ones() as usize;
        if byte != (0xff_u16 << (8 - leading)) as u8 {
            return None;
        }
        ones += leading;
        ended = leading < 8;
    }
    Some(ones)
}

/// Go's `IPMask.Size`: `(0, 0)` for a mask that is not canonical.
fn mask_size(mask: &[u8]) -> (usize, usize) {
    match mask_ones(mask) {
        Some(ones) => (ones, mask.len() * 8),
        None => (0, 0),
    }
}

/// Go's `IP.String`.
fn ip_string(ip: &[u8]) -> String {
    if ip.is_empty() {
        return "<nil>".into();
    }
    if let Some(v4) = to4(ip).and_then(|v4| <[u8; 4]>::try_from(v4).ok()) {
        return std::net::Ipv4Addr::from(v4).to_string();
    }
    match <[u8; 16]>::try_from(ip) {
        Ok(v6) => std::net::Ipv6Addr::from(v6).to_string(),
        Err(_) => format!("?{}", hex(ip)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's `IPNet.String`.
fn network_string(network: &Network) -> String {
    let Some((number, mask)) = number_and_mask(network) else {
        return "<nil>".into();
    };
    match mask_ones(&mask) {
        Some(ones) => format!("{}/{ones}", ip_string(&number)),
        None => format!("{}/{}", ip_string(&number), hex(&mask)),
    }
}

fn intersects(args: &[Value]) -> Result<Value, String> {
    let a = parse_cidr(string_operand(args, 1)?)?;
    let b = parse_cidr(string_operand(args, 2)?)?;
    Ok(Value::from(contains(&a, &b.ip) || contains(&b, &a.ip)))
}

/// OPA's `net.cidr_contains`, which `net.cidr_contains_matches` applies to each pair.
/// Operand errors name position 1, as OPA's do here.
fn cidr_contains(cidr: &Value, cidr_or_ip: &Value) -> Result<bool, String> {
    let a = parse_cidr(string_operand(std::slice::from_ref(cidr), 1)?)?;
    let text = string_operand(std::slice::from_ref(cidr_or_ip), 1)?;
    if let Some(ip) = parse_ip(text) {
        return Ok(contains(&a, &ip));
    }
    let b = parse_cidr(text).map_err(|_| {
        format!("not a valid textual representation of an IP address or CIDR: {text}")
    })?;
    if !contains(&a, &b.ip) {
        return Ok(false);
    }
    Ok(contains(&a, &last_ip(&b)?))
}

/// OPA's `getLastIP`: the network's address with every host bit set.
fn last_ip(network: &Network) -> Result<Vec<u8>, String> {
    let (ones, bits) = mask_size(&network.mask);
    if ones == 0 && bits == 0 {
        return Err("CIDR mask is in non-standard format".into());
    }
    if ones == bits {
        return Ok(network.ip.clone());
    }
    let host = (BigUint::from(1u8) << (bits - ones)) - 1u8;
    let last = BigUint::from_bytes_be(&network.ip) | host;
    let bytes = go_bytes(&last);
    let mut out = vec![0u8; bits / 8];
    // Go packs the number's bytes at the end, and indexes out of range if they do not fit.
    if bytes.len() > out.len() {
        return Err(PANIC.into());
    }
    let start = out.len() - bytes.len();
    out.get_mut(start..).ok_or(PANIC)?.copy_from_slice(&bytes);
    Ok(out)
}

/// Go's `big.Int.Bytes`: no leading zeros, empty for zero.
fn go_bytes(n: &BigUint) -> Vec<u8> {
    if n.bits() == 0 {
        Vec::new()
    } else {
        n.to_bytes_be()
    }
}

/// The CIDRs (or addresses) of an operand of `net.cidr_contains_matches` with the key that
/// names each: a string names itself, an array element its index, a set element itself, an
/// object value its key. An element that is an array stands for its first element.
fn match_operand(operand: &Value, position: usize) -> Result<Vec<(Value, Value)>, String> {
    let element = |value: &Value| -> Result<Value, String> {
        match value {
            Value::String(_) => Ok(value.clone()),
            Value::Array(items) => items.first().cloned().ok_or_else(|| {
                format!("operand {position}: element must be string or non-empty array")
            }),
            _ => Err(format!(
                "operand {position}: element must be string or non-empty array"
            )),
        }
    };
    match operand {
        Value::String(_) => Ok(vec![(operand.clone(), operand.clone())]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| Ok((element(item)?, Value::from(i))))
            .collect(),
        Value::Set(items) => items
            .iter()
            .map(|item| Ok((element(item)?, item.clone())))
            .collect(),
        Value::Object(fields) => fields
            .iter()
            .map(|(key, value)| Ok((element(value)?, key.clone())))
            .collect(),
        // OPA iterates nothing for any other type.
        _ => Ok(Vec::new()),
    }
}

fn contains_matches(args: &[Value]) -> Result<Value, String> {
    let (Some(first), Some(second)) = (args.first(), args.get(1)) else {
        return Err("missing operand".into());
    };
    let mut found = std::collections::BTreeSet::new();
    for (cidr, key1) in match_operand(first, 1)? {
        // OPA reads the second operand once per element of the first, so with an empty
        // first operand an invalid second one is no error.
        for (candidate, key2) in match_operand(second, 2)? {
            if cidr_contains(&cidr, &candidate)? {
                found.insert(Value::from(vec![key1.clone(), key2]));
            }
        }
    }
    Ok(Value::from(found))
}

/// A network for `net.cidr_merge`: a CIDR, or an IPv4 address with its class's mask.
fn merge_network(value: &Value) -> Result<Network, String> {
    let Value::String(text) = value else {
        return Err("element must be string".into());
    };
    let Some(ip) = parse_ip(text) else {
        return parse_cidr(text);
    };
    let Some(v4) = to4(&ip) else {
        return Err("IPv6 invalid: needs prefix length".into());
    };
    let mask = match v4.first().copied().unwrap_or(0) {
        0..0x80 => vec![0xff, 0, 0, 0],
        0x80..0xc0 => vec![0xff, 0xff, 0, 0],
        _ => vec![0xff, 0xff, 0xff, 0],
    };
    Ok(Network { ip, mask })
}

struct Range {
    first: Vec<u8>,
    last: Vec<u8>,
    /// The network the range came from, until it is merged with another.
    network: Option<Network>,
}

fn merge(args: &[Value]) -> Result<Value, String> {
    let networks: Vec<Network> = match args.first() {
        Some(Value::Array(items)) => items.iter().map(merge_network).collect::<Result<_, _>>()?,
        Some(Value::Set(items)) => items.iter().map(merge_network).collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "operand must be an array, got {}",
                type_name(other)
            ))
        }
        None => return Err("missing operand".into()),
    };
    let mut ranges = Vec::with_capacity(networks.len());
    for network in networks {
        let (first, last) = address_range(&network)?;
        ranges.push(Range {
            first,
            last,
            network: Some(network),
        });
    }
    ranges.sort_by(|a, b| a.last.cmp(&b.last).then_with(|| a.first.cmp(&b.first)));
    // From the end: a range that starts at most one address after the end of the one
    // before it joins that one.
    let mut merged_ranges: Vec<Range> = Vec::with_capacity(ranges.len());
    while let Some(range) = ranges.pop() {
        let joins = ranges.last().is_some_and(|before| {
            previous_ip(&range.first).as_slice().cmp(&before.last) != Ordering::Greater
        });
        match (joins, ranges.pop()) {
            (true, Some(before)) => ranges.push(Range {
                first: before.first.min(range.first),
                last: range.last,
                network: None,
            }),
            (_, before) => {
                ranges.extend(before);
                merged_ranges.push(range);
            }
        }
    }
    let ranges = merged_ranges;
    let mut merged = std::collections::BTreeSet::new();
    for range in ranges {
        match range.network {
            Some(network) => {
                merged.insert(Value::from(network_string(&network)));
            }
            None => {
                for network in range_to_cidrs(&range.first, &range.last)? {
                    merged.insert(Value::from(network_string(&network)));
                }
            }
        }
    }
    Ok(Value::from(merged))
}

/// The merge's `GetAddressRange`: the first and last addresses, IPv4 ones behind the
/// `::ffff:` prefix (also when already 16 bytes long, as in Go).
fn address_range(network: &Network) -> Result<(Vec<u8>, Vec<u8>), String> {
    let masked = mask_ip(&network.ip, &network.mask).unwrap_or_default();
    let (first, mut last) = if to4(&masked).is_some() {
        let prefixed = [&V4_IN_V6[..], &masked].concat();
        (prefixed.clone(), prefixed)
    } else {
        (masked.clone(), masked)
    };
    // Go sets the host bits counting from byte 15, whatever the address's length.
    for (i, byte) in network.mask.iter().rev().enumerate() {
        let at = 15usize.checked_sub(i).ok_or(PANIC)?;
        *last.get_mut(at).ok_or(PANIC)? |= !byte;
    }
    Ok((first, last))
}

/// The merge's `GetPreviousIP`.
fn previous_ip(ip: &[u8]) -> Vec<u8> {
    let zero_v4 = [&V4_IN_V6[..], &[0, 0, 0, 0]].concat();
    if ip_equal(ip, &zero_v4) || ip_equal(ip, &[0; 16]) {
        return ip.to_vec();
    }
    let mut previous = ip.to_vec();
    let lower = if to4(ip).is_some() { 12 } else { 0 };
    let mut overflow = false;
    let len = ip.len();
    for (i, (byte, original)) in previous.iter_mut().zip(ip).enumerate().skip(lower).rev() {
        if overflow || i == len - 1 {
            *byte = byte.wrapping_sub(1);
        }
        overflow = *original == 0 && *byte == 255;
    }
    previous
}

/// The merge's `getNextIP`.
fn next_ip(ip: &[u8]) -> Vec<u8> {
    let top_v4 = [&V4_IN_V6[..], &[255, 255, 255, 255]].concat();
    if ip_equal(ip, &top_v4) || ip_equal(ip, &[0xff; 16]) {
        return ip.to_vec();
    }
    match ip.len() {
        4 => {
            let n = u32::from_be_bytes(ip.try_into().unwrap_or([0; 4])).wrapping_add(1);
            n.to_be_bytes().to_vec()
        }
        16 => {
            let n = u128::from_be_bytes(ip.try_into().unwrap_or([0; 16]));
            // Go carries from the low 64 bits into the high ones, wrapping each.
            let low = (n as u64).wrapping_add(1);
            let high = if low == 0 {
                ((n >> 64) as u64).wrapping_add(1)
            } else {
                (n >> 64) as u64
            };
            ((u128::from(high) << 64) | u128::from(low))
                .to_be_bytes()
                .to_vec()
        }
        _ => ip.to_vec(),
    }
}

/// The merge's `RangeToCIDRs`: the networks that cover `first..=last` exactly.
fn range_to_cidrs(first: &[u8], last: &[u8]) -> Result<Vec<Network>, String> {
    let mut spanning = spanning_network(first, last);
    let (span_first, span_last) = address_range(&spanning)?;
    let mut networks = Vec::new();
    if span_first.as_slice() < first {
        let previous = previous_ip(first);
        let bits = if to4(&previous).is_some() { 32 } else { 128 };
        let exclude = Network {
            ip: previous,
            mask: cidr_mask(bits, bits),
        };
        let (_, right) = partition(&spanning, &exclude)?;
        spanning = right.first().cloned().ok_or(PANIC)?;
        networks.extend(right.into_iter().skip(1));
    }
    if span_last.as_slice() > last {
        let next = next_ip(last);
        let bits = if to4(&next).is_some() { 32 } else { 128 };
        let exclude = Network {
            ip: next,
            mask: cidr_mask(bits, bits),
        };
        let (left, _) = partition(&spanning, &exclude)?;
        networks.extend(left);
    } else {
        networks.push(spanning);
    }
    Ok(networks)
}

/// The merge's `createSpanningCIDR`: the smallest network holding both addresses.
fn spanning_network(lowest: &[u8], highest: &[u8]) -> Network {
    let v4 = to4(lowest).is_some();
    let (bits, byte_len) = if v4 { (32, 4) } else { (128, 16) };
    let low = BigUint::from_bytes_be(lowest);
    let mut high = BigUint::from_bytes_be(highest);
    let mut size = bits;
    while size > 0 && low < high {
        size -= 1;
        let cleared = bits - size;
        high = (high >> cleared) << cleared;
    }
    let mut ip = go_bytes(&high);
    if v4 {
        ip = [&[0u8; 10][..], &ip].concat();
    }
    if ip.is_empty() {
        ip = vec![0; byte_len];
    }
    Network {
        ip,
        mask: cidr_mask(size, bits),
    }
}

/// `n`'s bytes as the merge pads them: behind ten zero bytes for IPv4, to 16 bytes for IPv6.
fn padded(n: &BigUint, v4: bool) -> Result<Vec<u8>, String> {
    let bytes = go_bytes(n);
    if v4 {
        return Ok([&[0u8; 10][..], &bytes].concat());
    }
    // Go makes a slice of negative length here: a panic.
    let zeros = 16usize.checked_sub(bytes.len()).ok_or(PANIC)?;
    Ok([vec![0u8; zeros], bytes].concat())
}

/// The merge's `partitionCIDR`: the networks of `target` left and right of `exclude`.
fn partition(target: &Network, exclude: &Network) -> Result<(Vec<Network>, Vec<Network>), String> {
    let v4 = to4(&target.ip).is_some();
    let (target_first, target_last) = address_range(target)?;
    let (exclude_first, exclude_last) = address_range(exclude)?;
    let target_size = mask_size(&target.mask).0;
    let exclude_size = mask_size(&exclude.mask).0;
    if exclude_last < target_first {
        return Ok((Vec::new(), vec![target.clone()]));
    }
    if target_last < exclude_first {
        return Ok((vec![target.clone()], Vec::new()));
    }
    if target_size >= exclude_size {
        return Ok((Vec::new(), Vec::new()));
    }
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let bits = if v4 { 32 } else { 128 };
    let mut prefix = target_size + 1;
    let mut lower = BigUint::from_bytes_be(&target_first);
    let base = BigUint::from_bytes_be(&to16(&target_first).unwrap_or_default());
    let mut upper = base + (BigUint::from(1u8) << (bits - prefix));
    while exclude_size >= prefix {
        let upper_bytes = padded(&upper, v4)?;
        let lower_bytes = padded(&lower, v4)?;
        let matched = if exclude_first >= upper_bytes {
            left.push(Network {
                ip: lower_bytes,
                mask: cidr_mask(prefix, bits),
            });
            upper.clone()
        } else {
            right.push(Network {
                ip: upper_bytes,
                mask: cidr_mask(prefix, bits),
            });
            lower.clone()
        };
        prefix += 1;
        if prefix > bits {
            break;
        }
        upper = matched.clone() + (BigUint::from(1u8) << (bits - prefix));
        lower = matched;
    }
    Ok((left, right))
}
