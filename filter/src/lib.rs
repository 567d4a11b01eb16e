//! zerohop: OPA-Envoy compatible Rego authorization evaluated inside Envoy.
//!
//! The crate is two things: a host-free core that builds and tests natively and that
//! `policy-bundler` links, and `proxy`, the only module that talks to Envoy through
//! `proxy_wasm`; it exists only in the `wasm32` build and decides nothing. The core turns what
//! a host knows about a request into an outcome (`stream`, `request`, `engine`) and what a
//! bundle server sent into an active policy (`root`, `live`, `bundle`), asking the host for
//! everything else through the `host::Host` trait.
//!
//! `unsafe_code` is denied workspace-wide; the exceptions are the raw `proxy_set_property`
//! call in `proxy::host::set_filter_state`, whose SDK wrapper would panic, and the
//! allocator wrapper that counts evaluations' memory (`engine::budget::CountingAllocator`).

pub mod audit;
pub mod bundle;
pub mod codes;
pub mod config;
pub mod decision_path;
pub mod defaults;
pub mod engine;
pub mod host;
pub mod jitter;
pub mod jws;
pub mod live;
pub mod plugin;
pub mod request;
pub mod root;
pub mod shape;
pub mod stream;
pub mod writer;

#[cfg(target_arch = "wasm32")]
mod proxy;

/// Tests measure and limit evaluations' memory like the filter does.
#[cfg(test)]
#[global_allocator]
static TEST_ALLOCATOR: engine::budget::CountingAllocator<std::alloc::System> =
    engine::budget::CountingAllocator(std::alloc::System);

/// The exact regorus version this build evaluates with; precompiled programs must match it.
pub const REGORUS_VERSION: &str = "0.14.1";

/// The revision of what the RVM compiler writes, within one regorus version: raised when a
/// regorus patch changes the programs it compiles (PATCHES.md). A precompiled program of
/// another revision is not run; the bundle's Rego is compiled again at load, so a bundle
/// built before a compiler fix does not keep the old answers. Revision 1: regorus patches
/// 11–47, some of them fail-open fixes; 2: patches 61 (roots read again after a skipped
/// region) and 71 (number keys into data); 3: patches 86 (imported references) and 87
/// (computed keys before more path).
pub const COMPILER_REVISION: u32 = 3;

#[cfg(test)]
mod tests {
    /// Bundles record `REGORUS_VERSION` next to their precompiled program, and the filter
    /// refuses a program of another version: the constant must be what the build links.
    #[test]
    fn regorus_version_is_the_pinned_and_locked_one() {
        let locked = include_str!("../../Cargo.lock")
            .split("[[package]]")
            .find(|package| package.contains("\nname = \"regorus\"\n"))
            .and_then(|package| package.lines().find_map(|l| l.strip_prefix("version = ")));
        assert_eq!(
            locked,
            Some(format!("\"{}\"", super::REGORUS_VERSION).as_str())
        );
        let pin = format!("regorus = {{ version = \"={}\"", super::REGORUS_VERSION);
        assert!(
            include_str!("../../Cargo.toml").contains(&pin),
            "missing {pin}"
        );
    }
}
