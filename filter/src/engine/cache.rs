//! Per-policy decision cache: the decision for an `input` already evaluated, without evaluating.
//!
//! Sound only because of two facts established when the bundle is analysed (`reads`): the
//! `input` each request builds holds exactly the parts the policy can read, and the policy
//! calls no builtin whose answer depends on anything but its arguments (the clock, randomness,
//! the network). Two requests with equal inputs then get equal decisions from the same bundle
//! data; a new bundle comes with a new `Policy`, so with an empty cache.
//!
//! The cache holds at most `budget` bytes (an estimate of each input's and decision's size)
//! and starts over when full, which keeps a VM's memory bounded under inputs that never repeat
//! (a policy that reads the request id) at the cost of one hash walk per request. The hash is
//! fast and unkeyed, so a client could make inputs collide: a hash keeps at most
//! `MAX_PER_HASH` entries, which bounds a lookup to that many equality checks.

use std::collections::HashMap;
use std::hash::Hasher;

use regorus::Value;

/// What one entry costs besides its values: the map slot, the vector, two `Value`s.
const ENTRY_OVERHEAD: usize = 96;

/// Entries kept under one hash.
const MAX_PER_HASH: usize = 4;

pub struct DecisionCache {
    budget: usize,
    used: usize,
    entries: HashMap<u64, Vec<(Value, Value)>>,
}

/// An input's place in the cache, computed once per request.
pub struct Key {
    hash: u64,
    size: usize,
}

impl DecisionCache {
    /// A cache of at most `budget` bytes; `0` turns it off.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            used: 0,
            entries: HashMap::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    pub fn key(input: &Value) -> Key {
        let mut hasher = FxHasher::default();
        let size = walk(input, &mut hasher);
        Key {
            hash: hasher.finish(),
            size,
        }
    }

    /// The decision (possibly `Undefined`) evaluated for an input equal to `input`.
    pub fn get(&self, key: &Key, input: &Value) -> Option<&Value> {
        self.entries
            .get(&key.hash)?
            .iter()
            .find(|(cached, _)| cached == input)
            .map(|(_, decision)| decision)
    }

    pub fn insert(&mut self, key: Key, input: Value, decision: Value) {
        let size = key.size + approximate_size(&decision) + ENTRY_OVERHEAD;
        // An entry that alone would take a sizeable share of the budget is not worth evicting
        // everything for.
        if size > self.budget / 16 {
            return;
        }
        if self.used + size > self.budget {
            self.entries.clear();
            self.used = 0;
        }
        let bucket = self.entries.entry(key.hash).or_default();
        if bucket.len() < MAX_PER_HASH {
            self.used += size;
            bucket.push((input, decision));
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.values().map(Vec::len).sum()
    }
}

/// rustc's FxHash: one rotate, xor and multiply per word, where SipHash spends dozens of
/// instructions per write on inputs of a few short strings.
#[derive(Default)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            if let Ok(word) = <[u8; 8]>::try_from(word) {
                self.add(u64::from_le_bytes(word));
            }
        }
        let tail = words
            .remainder()
            .iter()
            .rev()
            .fold(0, |tail, byte| (tail << 8) | u64::from(*byte));
        self.add(tail);
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Hashes `value` consistently with its equality and returns an estimate of its size in bytes.
fn walk(value: &Value, hasher: &mut FxHasher) -> usize {
    const NODE: usize = 16;
    match value {
        Value::Null => {
            hasher.write_u8(0);
            NODE
        }
        Value::Bool(b) => {
            hasher.write_u8(1 + u8::from(*b));
            NODE
        }
        // Equal numbers can have different representations: the equality check on a hit
        // tells them apart, the hash does not try to.
        Value::Number(_) => {
            hasher.write_u8(3);
            NODE
        }
        Value::String(s) => {
            hasher.write_u8(4);
            hasher.write(s.as_bytes());
            hasher.write_u8(0xff);
            NODE + s.len()
        }
        Value::Array(items) => {
            hasher.write_u8(5);
            hasher.write_usize(items.len());
            NODE + items.iter().map(|item| walk(item, hasher)).sum::<usize>()
        }
        Value::Set(items) => {
            hasher.write_u8(6);
            hasher.write_usize(items.len());
            NODE + items
                .iter_sorted()
                .map(|item| walk(item, hasher))
                .sum::<usize>()
        }
        Value::Object(fields) => {
            hasher.write_u8(7);
            hasher.write_usize(fields.len());
            NODE + fields
                .iter_sorted()
                .map(|(k, v)| walk(k, hasher) + walk(v, hasher))
                .sum::<usize>()
        }
        Value::Undefined => {
            hasher.write_u8(8);
            NODE
        }
    }
}

fn approximate_size(value: &Value) -> usize {
    walk(value, &mut FxHasher::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    #[test]
    fn equal_inputs_share_a_key_and_find_their_decision() {
        let mut cache = DecisionCache::new(crate::defaults::DEFAULT_DECISION_CACHE_BYTES);
        let input = value(r#"{"parsed_path":["a"],"m":{"x":1,"y":[true,null]}}"#);
        // Built in another order: the same object.
        let same = value(r#"{"m":{"y":[true,null],"x":1.0},"parsed_path":["a"]}"#);
        let key = DecisionCache::key(&input);
        assert!(cache.get(&key, &input).is_none());
        cache.insert(key, input.clone(), Value::from(true));
        assert_eq!(
            cache.get(&DecisionCache::key(&same), &same),
            Some(&Value::from(true))
        );
        let other = value(r#"{"parsed_path":["b"],"m":{"x":1,"y":[true,null]}}"#);
        assert_eq!(cache.get(&DecisionCache::key(&other), &other), None);
        // Undefined is a decision too.
        cache.insert(DecisionCache::key(&other), other.clone(), Value::Undefined);
        assert_eq!(
            cache.get(&DecisionCache::key(&other), &other),
            Some(&Value::Undefined)
        );
    }

    #[test]
    fn colliding_hashes_are_told_apart_by_equality() {
        let mut cache = DecisionCache::new(crate::defaults::DEFAULT_DECISION_CACHE_BYTES);
        // Numbers all hash alike.
        let (one, two) = (value(r#"{"n":1}"#), value(r#"{"n":2}"#));
        cache.insert(DecisionCache::key(&one), one.clone(), Value::from("one"));
        cache.insert(DecisionCache::key(&two), two.clone(), Value::from("two"));
        assert_eq!(
            cache.get(&DecisionCache::key(&one), &one),
            Some(&Value::from("one"))
        );
        assert_eq!(
            cache.get(&DecisionCache::key(&two), &two),
            Some(&Value::from("two"))
        );
    }

    #[test]
    fn a_hash_keeps_a_few_entries_whatever_collides() {
        let mut cache = DecisionCache::new(crate::defaults::DEFAULT_DECISION_CACHE_BYTES);
        // Numbers all hash alike: 100 inputs under one hash.
        let inputs: Vec<Value> = (0..100)
            .map(|n| value(&format!(r#"{{"n":{n}}}"#)))
            .collect();
        for input in &inputs {
            cache.insert(DecisionCache::key(input), input.clone(), Value::from(true));
        }
        assert_eq!(cache.len(), MAX_PER_HASH);
        let found = inputs
            .iter()
            .filter(|i| cache.get(&DecisionCache::key(i), i).is_some())
            .count();
        assert_eq!(found, MAX_PER_HASH);
    }

    #[test]
    fn the_hash_sees_every_byte() {
        let hash = |s: &str| DecisionCache::key(&Value::from(s)).hash;
        let texts = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abcdefgh",
            "abcdefgi",
            "abcdefghi",
            "bbcdefghi",
        ];
        let hashes: std::collections::BTreeSet<u64> = texts.iter().map(|t| hash(t)).collect();
        assert_eq!(hashes.len(), texts.len());
    }

    #[test]
    fn the_budget_bounds_the_entries() {
        let mut cache = DecisionCache::new(64 * 1024);
        for i in 0..10_000 {
            let input = value(&format!(r#"{{"id":"request-{i}"}}"#));
            cache.insert(DecisionCache::key(&input), input, Value::from(true));
            assert!(cache.used <= 64 * 1024);
        }
        assert!(cache.len() > 100, "{}", cache.len());
        // Too big to be worth it.
        let big = Value::from("x".repeat(8 * 1024));
        cache.insert(DecisionCache::key(&big), big.clone(), Value::from(true));
        assert_eq!(cache.get(&DecisionCache::key(&big), &big), None);
        let mut off = DecisionCache::new(0);
        assert!(!off.enabled());
        let input = value("{}");
        off.insert(DecisionCache::key(&input), input.clone(), Value::from(true));
        assert_eq!(off.get(&DecisionCache::key(&input), &input), None);
    }
}
