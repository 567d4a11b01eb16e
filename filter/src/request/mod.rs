//! The request path: from what the host knows about a request to the OPA-Envoy `input`
//! document (`input`, `path`, `body`, `metadata`), and from the policy's value to what happens
//! to the request (`decision`); `pipeline` runs the two around an evaluation. Nothing here
//! talks to a host; `stream` feeds and applies it.

pub mod body;
pub mod decision;
pub mod input;
pub mod metadata;
pub mod path;
pub mod pipeline;
