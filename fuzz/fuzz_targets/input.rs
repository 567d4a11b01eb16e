//! Input building from arbitrary header maps, request targets (paths, queries) and bodies
//! (JSON, form, multipart by `content-type`), with and without `pack_as_bytes`, partial or
//! whole: the `input` document or a request error, never a panic; then the query rewrite
//! an allow can ask for on the same target.
//!
//! Input: a request as text (`zerohop_fuzz::parse_request_text`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerohop_filter::request::body::{Body, BodySettings, WithRequestBody};
use zerohop_filter::request::input;
use zerohop_filter::request::path::{parse_target, rewrite_query};
use zerohop_filter::shape::InputShape;
use zerohop_fuzz::parse_request_text;

#[global_allocator]
static ALLOCATOR: zerohop_filter::engine::budget::CountingAllocator<std::alloc::System> =
    zerohop_filter::engine::budget::CountingAllocator(std::alloc::System);

fuzz_target!(|data: &[u8]| {
    let (mut request, body) = parse_request_text(data);
    let shape = InputShape::everything();
    let _ = input::build(&request, &BodySettings::default(), &shape);
    for (pack_as_bytes, partial) in [(false, false), (true, true)] {
        let settings = BodySettings {
            with_request_body: Some(WithRequestBody {
                max_request_bytes: 1 << 16,
                allow_partial_message: partial,
                pack_as_bytes,
            }),
            skip_request_body_parse: false,
        };
        request.body = Some(Body {
            bytes: body.clone(),
            partial,
            received: body.len() as u64,
        });
        if let Ok(value) = input::build(&request, &settings, &shape) {
            assert!(
                matches!(value, regorus::Value::Object(_)),
                "input is not an object"
            );
        }
    }
    let target = request
        .headers
        .iter()
        .find(|(name, _)| name == ":path")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    if parse_target(target).is_ok() {
        let rewritten = rewrite_query(
            target,
            &[("q".into(), "a b&c=d\r\n".into()), ("".into(), "%".into())],
            &["x".into()],
        );
        assert!(
            !rewritten.contains(['\r', '\n', '\0', ' '])
                || target.contains(['\r', '\n', '\0', ' ']),
            "the rewrite put a raw CR, LF, NUL or space in {rewritten:?}"
        );
    }
});
