// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.

#![allow(
    clippy::arithmetic_side_effects,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::shadow_unrelated,
    clippy::unwrap_used,
    clippy::missing_const_for_fn,
    clippy::option_if_let_else,
    clippy::semicolon_if_nothing_returned,
    clippy::useless_let_if_seq
)] // builtins perform validated indexing and intentional arithmetic/string ops

mod aggregates;
mod arrays;
#[cfg(feature = "azure_policy")]
pub mod azure_policy;
mod bitwise;
pub mod comparison;
mod conversions;
mod deprecated;

mod encoding;
#[cfg(feature = "glob")]
mod glob;
#[cfg(feature = "graph")]
mod graph;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "net")]
mod net;

#[cfg(feature = "jsonpatch")]
mod json_patch;
pub mod numbers;
mod operators;
mod objects;
#[cfg(feature = "opa-runtime")]
mod opa;
#[cfg(feature = "regex")]
mod regex;
#[cfg(feature = "semver")]
mod semver;
pub mod sets;
mod strings;
#[cfg(feature = "time")]
mod time;
mod tracing;
pub mod types;
mod units;
mod utils;
#[cfg(feature = "uuid")]
mod uuid;

#[cfg(feature = "opa-testutil")]
mod test;

use crate::ast::{Expr, Ref};
use crate::lexer::Span;
use crate::value::Value;

use crate::Map as BuiltinsMap;

use anyhow::Result;
use lazy_static::lazy_static;

/// What this build cannot compute as OPA does, where an undefined call could change the
/// decision (a `not`, an `else`, an empty comprehension) and an error cannot: it is not swallowed
/// as undefined when builtin errors are not strict.
/// - Bytes that are not UTF-8 (`base64.decode`, `hex.decode`, …): OPA keeps them in a Go string; a
///   Rust string cannot hold them, and no stand-in answers as OPA does everywhere (U+FFFD makes
///   different byte strings equal and breaks round trips).
/// - Regular expressions with Unicode classes (`\pL`, `\p{Greek}`), whose tables this build
///   leaves out: OPA matches them.
/// - `numbers.range` and `numbers.range_step` with an end beyond 64 bits: OPA enumerates it.
/// - `sprintf` formats Go's fmt writes and this engine does not (flags such as `%-5s`).
/// - Time zones a build leaves out of its time-zone data: OPA loads them.
#[derive(Debug)]
pub struct EngineGapError {
    message: alloc::string::String,
}

impl EngineGapError {
    pub fn not_utf8(builtin: &str) -> Self {
        Self {
            message: alloc::format!(
                "{builtin}: the decoded bytes are not UTF-8, which this engine cannot hold in a string (OPA can)"
            ),
        }
    }

    pub fn splits_characters(builtin: &str) -> Self {
        Self {
            message: alloc::format!(
                "{builtin}: an empty string to replace inserts between the bytes of a character, and the answer is not UTF-8, which this engine cannot hold in a string (OPA can)"
            ),
        }
    }

    pub fn range_beyond_64_bits(builtin: &str) -> Self {
        Self {
            message: alloc::format!(
                "{builtin}: an end beyond 64 bits, which this engine does not enumerate (OPA does)"
            ),
        }
    }

    pub fn sprintf(what: &str) -> Self {
        Self {
            message: alloc::format!(
                "sprintf: {what}, which this engine does not format as Go's fmt (OPA does)"
            ),
        }
    }

    pub fn time_zone(name: &str) -> Self {
        Self {
            message: alloc::format!(
                "time zone {name:?} is not in this build's time-zone data (OPA may know it)"
            ),
        }
    }

    /// An object literal whose computed keys give one key two different values: OPA keeps
    /// one of them by the order of its compiler's generated variable names. (A computed key
    /// equal to a literal key wins, as in OPA, where variables sort after scalars.)
    pub fn object_key_twice(key: &Value) -> Self {
        Self {
            message: alloc::format!(
                "an object literal gives the key {key} two different values; OPA keeps one by \
                 its compiler's variable order, which this engine does not reproduce"
            ),
        }
    }

    pub fn unicode_regex(pattern: &str) -> Self {
        Self {
            message: alloc::format!(
                "regular expression {pattern:?} needs Unicode class tables this build leaves out (OPA matches it)"
            ),
        }
    }
}

impl core::fmt::Display for EngineGapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}

impl core::error::Error for EngineGapError {}

/// Errors that stop the evaluation even when builtin errors are not strict. A number beyond
/// what this engine computes is a gap too: OPA computes it.
pub fn is_hard_builtin_error(error: &anyhow::Error) -> bool {
    error.downcast_ref::<crate::LimitError>().is_some()
        || error.downcast_ref::<EngineGapError>().is_some()
        || error
            .downcast_ref::<crate::number::NumericOverflowError>()
            .is_some()
}

pub type BuiltinFcn = (fn(&Span, &[Ref<Expr>], &[Value], bool) -> Result<Value>, u8);

#[rustfmt::skip]
lazy_static! {
    pub static ref BUILTINS: BuiltinsMap<&'static str, BuiltinFcn> = {
	let mut m : BuiltinsMap<&'static str, BuiltinFcn>  = BuiltinsMap::new();

	// comparison functions are directly called.
	numbers::register(&mut m);
	operators::register(&mut m);
	aggregates::register(&mut m);
	arrays::register(&mut m);
	sets::register(&mut m);
	objects::register(&mut m);
	strings::register(&mut m);

	#[cfg(feature = "regex")]
	regex::register(&mut m);

	#[cfg(feature = "glob")]
	glob::register(&mut m);

	#[cfg(feature = "graph")]
	graph::register(&mut m);

	bitwise::register(&mut m);
	conversions::register(&mut m);
	//units::register(&mut m);
	types::register(&mut m);
	encoding::register(&mut m);
	#[cfg(feature = "time")]
	time::register(&mut m);

	//graphql::register(&mut m);
	#[cfg(feature = "http")]
	http::register(&mut m);
	#[cfg(feature = "net")]
	net::register(&mut m);
	//net::register(&mut m);
	#[cfg(feature = "uuid")]
	uuid::register(&mut m);
	#[cfg(feature = "semver")]
	semver::register(&mut m);
	//rego::register(&mut m);
	#[cfg(feature = "azure_policy")]
	azure_policy::register(&mut m);
	#[cfg(feature = "opa-runtime")]
	opa::register(&mut m);
	tracing::register(&mut m);
	units::register(&mut m);

	#[cfg(feature = "opa-testutil")]
	test::register(&mut m);

	m
    };
}

#[rustfmt::skip]
lazy_static! {
    /// OPA's deprecated builtins, which only Rego v0 modules may call.
    pub static ref DEPRECATED: BuiltinsMap<&'static str, BuiltinFcn> = {
	let mut m : BuiltinsMap<&'static str, BuiltinFcn>  = BuiltinsMap::new();
	deprecated::register(&mut m);
	m
    };
}

/// The builtin `path` names in a module of the given Rego version: OPA offers its deprecated
/// builtins to v0 modules only (a v1 module calling one calls an unknown function).
pub fn lookup(path: &str, rego_v1: bool) -> Option<&'static BuiltinFcn> {
    BUILTINS
        .get(path)
        .or_else(|| if rego_v1 { None } else { DEPRECATED.get(path) })
}

/// The builtin a compiled program names: the calling module's version was checked when the
/// program was compiled.
pub fn lookup_compiled(path: &str) -> Option<&'static BuiltinFcn> {
    BUILTINS.get(path).or_else(|| DEPRECATED.get(path))
}

pub fn must_cache(path: &str) -> Option<&'static str> {
    match path {
        "opa.runtime" => Some("opa.runtime"),
        "rand.intn" => Some("rand.intn"),
        "time.now_ns" => Some("time.now_ns"),
        "uuid.rfc4122" => Some("uuid.rfc4122"),
        _ => None,
    }
}
