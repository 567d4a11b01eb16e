//! zerohop: OPA-Envoy compatible Rego authorization evaluated inside Envoy.
//!
//! The crate is two things: a host-free core (configuration, the OPA-Envoy `input` document,
//! decisions, bundles, evaluation) that builds and tests natively and that `policy-bundler`
//! links, and `proxy`, the only module that talks to Envoy through `proxy_wasm`; it exists
//! only in the `wasm32` build.
//!
//! `unsafe_code` is denied workspace-wide; the one exception is the raw `proxy_set_property`
//! call in `proxy::host::set_filter_state`, whose SDK wrapper would panic.

pub mod bundle;
pub mod config;
pub mod engine;
pub mod jws;
pub mod request;

#[cfg(target_arch = "wasm32")]
mod proxy;

/// The exact regorus version this build evaluates with; precompiled programs must match it.
pub const REGORUS_VERSION: &str = "0.14.1";
