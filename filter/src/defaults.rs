//! Every default of the plugin configuration and of `policy-bundler`'s options, in one place
//! (`config` validates the keys; the modules that use a value take its default from here). A
//! leaf.

/// `path`: OPA-Envoy's default decision path.
pub const DEFAULT_PATH: &str = "envoy/authz/allow";
/// `status_on_error`: Envoy's ext_authz answers 403 when the authorizer fails; so do we.
pub const DEFAULT_STATUS_ON_ERROR: u16 = 403;
/// `decision_cache_bytes`: the budget of a policy's decision cache.
pub const DEFAULT_DECISION_CACHE_BYTES: usize = 1 << 20;
/// `max_eval_memory_bytes`: the reference policies hold at most a few hundred KiB per
/// evaluation (docs/budgets.md); this leaves room for large bodies while far from the VM's 4 GiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
/// `max_eval_instructions`: far above any authorization policy, low enough to stop runaway
/// recursion before it ties up a worker.
pub const DEFAULT_INSTRUCTIONS: usize = 5_000_000;
/// `max_eval_time_ms`: a backstop for work the counts miss (a builtin's inner loop, a slow
/// host); far above the reference policies' microseconds, and above the time the whole
/// instruction budget takes in Envoy, so that the counts decide first.
pub const DEFAULT_TIME_MS: u32 = 1000;
/// `bundle.polling`: OPA's polling defaults (`v1/download/config.go`).
pub const DEFAULT_MIN_DELAY_SECONDS: u64 = 60;
pub const DEFAULT_MAX_DELAY_SECONDS: u64 = 120;
/// `bundle.service.timeout`: OPA's default `response_header_timeout_seconds`.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// `decision_logs.service.path`: OPA's `decision_logs.resource`.
pub const DEFAULT_LOGS_PATH: &str = "/logs";
/// `decision_logs.reporting.{min,max}_delay_seconds`. OPA waits 300 to 600 s; a VM's buffer is
/// lost when Envoy tears the VM down (a new configuration or module), so zerohop uploads sooner.
pub const DEFAULT_LOGS_MIN_DELAY_SECONDS: u64 = 5;
pub const DEFAULT_LOGS_MAX_DELAY_SECONDS: u64 = 10;
/// `decision_logs.reporting.upload_size_limit_bytes`: OPA's, gzip-compressed.
pub const DEFAULT_UPLOAD_SIZE_LIMIT_BYTES: u64 = 32_768;
/// `decision_logs.reporting.buffer_size_limit_bytes`, per VM (OPA's is unlimited).
pub const DEFAULT_BUFFER_SIZE_LIMIT_BYTES: u64 = 4 << 20;
/// `decision_logs.mask_decision` and `drop_decision`: OPA's.
pub const DEFAULT_MASK_DECISION: &str = "system/log/mask";
pub const DEFAULT_DROP_DECISION: &str = "system/log/drop";
/// `http_send.timeout_ms`: OPA's `http.send` waits 5 seconds unless the request says otherwise.
pub const DEFAULT_HTTP_SEND_TIMEOUT_MS: u64 = 5_000;
/// `http_send.max_response_bytes`: the most of a callout's body the policy sees.
pub const DEFAULT_HTTP_SEND_MAX_RESPONSE_BYTES: u32 = 1 << 20;
/// `http_send.cached_responses`: how many `cache`/`force_cache` answers each VM keeps.
pub const DEFAULT_HTTP_SEND_CACHED_RESPONSES: usize = 1000;
