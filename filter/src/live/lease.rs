//! One fetch per proxy: the workers of a proxy share a key-value store (Envoy's shared data,
//! compare-and-swap on every write). One worker holds a lease and fetches; it publishes each
//! good bundle (bytes, then a small revision record); every worker reads only the small record
//! on its tick and loads the bytes when the generation changes. A lease not renewed within its
//! time to live (its holder's VM is gone) is taken over by another worker.

use crate::host::Shared;

/// The shared-data keys of one plugin (`<plugin name>/bundle/...`).
#[derive(Debug, Clone)]
pub struct Keys {
    pub lease: String,
    pub revision: String,
    pub bytes: String,
}

impl Keys {
    pub fn new(plugin: &str) -> Self {
        Self {
            lease: format!("{plugin}/bundle/lease"),
            revision: format!("{plugin}/bundle/revision"),
            bytes: format!("{plugin}/bundle/bytes"),
        }
    }
}

/// Takes the lease when it is free or expired, renews it when `owner` holds it. Returns
/// whether `owner` holds it until `now_ms + ttl_ms`.
pub fn hold(
    shared: &dyn Shared,
    keys: &Keys,
    owner: u64,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<bool, String> {
    let (value, cas) = get_seeded(shared, &keys.lease, b"0 0")?;
    if let Some((holder, expiry)) = value.as_deref().and_then(parse_lease) {
        if holder != owner && now_ms < expiry {
            return Ok(false);
        }
    }
    let lease = format!("{owner} {}", now_ms + ttl_ms);
    shared.set(&keys.lease, lease.as_bytes(), cas)
}

/// Reads a key, first creating it with `initial` if absent: the host writes a missing key
/// whatever CAS token it is given, so only an existing key lets exactly one writer win.
fn get_seeded(
    shared: &dyn Shared,
    key: &str,
    initial: &[u8],
) -> Result<(Option<Vec<u8>>, Option<u32>), String> {
    let (value, cas) = shared.get(key)?;
    if value.is_some() && cas.is_some() {
        return Ok((value, cas));
    }
    shared.set(key, initial, None)?;
    shared.get(key)
}

/// Gives the lease up (reconfiguration), so another worker does not wait for it to expire.
pub fn release(shared: &dyn Shared, keys: &Keys, owner: u64) -> Result<(), String> {
    let (value, cas) = shared.get(&keys.lease)?;
    if value.as_deref().and_then(parse_lease).map(|(h, _)| h) == Some(owner) {
        shared.set(&keys.lease, b"0 0", cas)?;
    }
    Ok(())
}

fn parse_lease(value: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let (owner, expiry) = text.split_once(' ')?;
    Some((owner.parse().ok()?, expiry.parse().ok()?))
}

/// The small record every worker reads on its tick.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Published {
    /// Counts publications in this proxy; a worker loads the bytes when it changes.
    pub generation: u64,
    pub etag: String,
    pub revision: String,
}

impl Published {
    fn encode(&self) -> Vec<u8> {
        format!("{}\n{}\n{}", self.generation, self.etag, self.revision).into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, '\n');
        Some(Self {
            generation: parts.next()?.parse().ok()?,
            etag: parts.next()?.to_string(),
            revision: parts.next()?.to_string(),
        })
    }
}

/// The current publication, if any.
pub fn published(shared: &dyn Shared, keys: &Keys) -> Result<Option<Published>, String> {
    Ok(shared
        .get(&keys.revision)?
        .0
        .as_deref()
        .and_then(Published::decode)
        .filter(|p| p.generation > 0))
}

/// Publishes a verified bundle: the bytes (tagged with their generation) first, then the
/// record, so a worker that sees the record finds its bytes. Returns the new record.
pub fn publish(
    shared: &dyn Shared,
    keys: &Keys,
    targz: &[u8],
    etag: &str,
    revision: &str,
) -> Result<Published, String> {
    let (current, cas) = get_seeded(shared, &keys.revision, b"0\n\n")?;
    let generation = current
        .as_deref()
        .and_then(Published::decode)
        .map_or(1, |p| p.generation + 1);
    let mut tagged = Vec::with_capacity(targz.len() + 21);
    tagged.extend_from_slice(format!("{generation}\n").as_bytes());
    tagged.extend_from_slice(targz);
    shared.set(&keys.bytes, &tagged, None)?;
    let record = Published {
        generation,
        etag: etag.to_string(),
        revision: revision.to_string(),
    };
    if !shared.set(&keys.revision, &record.encode(), cas)? {
        return Err("another worker published at the same time".to_string());
    }
    Ok(record)
}

/// The published bytes of `generation`; `None` if a newer publication replaced them (the
/// worker then picks that one up on its next tick).
pub fn bundle_bytes(
    shared: &dyn Shared,
    keys: &Keys,
    generation: u64,
) -> Result<Option<Vec<u8>>, String> {
    let Some(mut tagged) = shared.get(&keys.bytes)?.0 else {
        return Ok(None);
    };
    let Some(newline) = tagged.iter().position(|b| *b == b'\n') else {
        return Ok(None);
    };
    let tag = std::str::from_utf8(tagged.get(..newline).unwrap_or_default())
        .ok()
        .and_then(|t| t.parse::<u64>().ok());
    if tag != Some(generation) {
        return Ok(None);
    }
    Ok(Some(tagged.split_off(newline + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::memory::MemShared;

    #[test]
    fn one_holder_until_it_stops_renewing() {
        let shared = MemShared::default();
        let keys = Keys::new("p");
        assert!(hold(&shared, &keys, 1, 0, 5_000).unwrap());
        assert!(!hold(&shared, &keys, 2, 100, 5_000).unwrap());
        assert!(hold(&shared, &keys, 1, 4_000, 5_000).unwrap(), "renewed");
        assert!(!hold(&shared, &keys, 2, 8_999, 5_000).unwrap());
        // Worker 1's VM is gone: no renewal; worker 2 takes over once the lease expires.
        assert!(hold(&shared, &keys, 2, 9_000, 5_000).unwrap());
        assert!(!hold(&shared, &keys, 1, 9_001, 5_000).unwrap());
        release(&shared, &keys, 2).unwrap();
        assert!(hold(&shared, &keys, 3, 9_002, 5_000).unwrap());
    }

    /// A store where another worker writes between our read and our write.
    struct Racing {
        inner: MemShared,
        rival: u64,
    }

    impl Shared for Racing {
        fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), String> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, String> {
            let keys = Keys::new("p");
            hold(&self.inner, &keys, self.rival, 0, 5_000)?;
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn compare_and_swap_settles_races() {
        let racing = Racing {
            inner: MemShared::default(),
            rival: 9,
        };
        let keys = Keys::new("p");
        // The rival wrote the lease between our read and write: our write must lose.
        racing.inner.set(&keys.lease, b"0 0", None).unwrap();
        assert!(!hold(&racing, &keys, 1, 10, 5_000).unwrap());
        assert!(!hold(&racing.inner, &keys, 1, 10, 5_000).unwrap());
    }

    #[test]
    fn publications_carry_their_generation() {
        let shared = MemShared::default();
        let keys = Keys::new("p");
        assert_eq!(published(&shared, &keys).unwrap(), None);
        let first = publish(&shared, &keys, b"v1-bytes", "\"e1\"", "v1").unwrap();
        assert_eq!(first.generation, 1);
        assert_eq!(published(&shared, &keys).unwrap(), Some(first));
        assert_eq!(
            bundle_bytes(&shared, &keys, 1).unwrap().as_deref(),
            Some(&b"v1-bytes"[..])
        );
        let second = publish(&shared, &keys, b"v2\nbytes", "", "v 2\nx").unwrap();
        assert_eq!(second.generation, 2);
        assert_eq!(published(&shared, &keys).unwrap(), Some(second));
        assert_eq!(bundle_bytes(&shared, &keys, 1).unwrap(), None, "replaced");
        assert_eq!(
            bundle_bytes(&shared, &keys, 2).unwrap().as_deref(),
            Some(&b"v2\nbytes"[..])
        );
    }
}
