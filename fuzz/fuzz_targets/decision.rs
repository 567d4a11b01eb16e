//! Decision-object interpretation: any JSON value a policy can produce. An allow only from
//! `true` or `{"allowed": true, ...}`; no header the filter would emit with CR/LF/NUL or an
//! invalid name; a reply status Envoy can send.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regorus::Value;
use zerohop_filter::request::decision::{
    decide, is_valid_reply_status, Action, Enforcement, Failure, RESERVED_HEADERS,
};
use zerohop_fuzz::{assert_clean_header, decision_allows};

#[global_allocator]
static ALLOCATOR: zerohop_filter::engine::budget::CountingAllocator<std::alloc::System> =
    zerohop_filter::engine::budget::CountingAllocator(std::alloc::System);

const ENFORCEMENT: Enforcement = Enforcement {
    dry_run: false,
    fail_open: false,
    status_on_error: 403,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let Ok(value) = Value::from_json_str(text) else {
        return;
    };
    let outcome = decide(ENFORCEMENT, Ok::<_, Failure>(value));
    match outcome.action {
        Action::Forward(allow) => {
            assert!(decision_allows(&json), "allowed by {text}");
            for (name, value) in allow.headers.iter().chain(&allow.response_headers_to_add) {
                assert_clean_header("allow", name, value);
                assert!(
                    !name.is_empty() && !name.starts_with(':'),
                    "header {name:?} from {text}"
                );
                assert!(
                    !RESERVED_HEADERS.contains(&name.as_str()),
                    "header {name:?} from {text}"
                );
            }
            for name in &allow.request_headers_to_remove {
                assert_clean_header("remove", name, "");
                assert!(
                    name == "host" || !RESERVED_HEADERS.contains(&name.as_str()),
                    "removes {name:?}: {text}"
                );
            }
        }
        Action::Reply(deny) => {
            assert!(
                is_valid_reply_status(deny.status),
                "status {} from {text}",
                deny.status
            );
            assert!((200..=599).contains(&deny.status));
            for (name, value) in &deny.headers {
                assert_clean_header("deny", name, value);
                assert!(
                    !name.is_empty() && !name.starts_with(':'),
                    "header {name:?} from {text}"
                );
                assert!(
                    !RESERVED_HEADERS.contains(&name.as_str()),
                    "header {name:?} from {text}"
                );
            }
        }
    }
});
