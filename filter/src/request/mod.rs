//! The request path: from what Envoy knows about a request to the OPA-Envoy `input`
//! document (`input`, `path`, `body`, `metadata`), and from the policy's value to what happens to the request
//! (`decision`). Nothing here talks to Envoy; `proxy::http` feeds and applies it.

pub mod body;
pub mod decision;
pub mod input;
pub mod metadata;
pub mod path;
pub mod shape;
