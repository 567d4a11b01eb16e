//! The audit trail: every decision counted by outcome (`counters`), and decision logs in
//! OPA's format: the `decision_logs` configuration (`config`), the event (`event`), masks and
//! drops (`mask`), the sinks (`log`).

pub mod config;
pub mod counters;
pub mod event;
pub mod log;
pub mod mask;
pub mod upload;
