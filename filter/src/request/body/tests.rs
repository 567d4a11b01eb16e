use super::*;

/// Headers as the input builder has them, the partial-body header being Envoy's.
fn headers(pairs: &[(&'static str, &'static str)]) -> JoinedHeaders<'static> {
    let mut headers = JoinedHeaders::join(pairs.iter().copied());
    for (name, value) in pairs {
        if *name == PARTIAL_BODY_HEADER {
            headers.set(name, value);
        }
    }
    headers
}

fn parsed(content_type: &'static str, body: &str) -> Result<(Value, bool), BodyError> {
    parse(&headers(&[("content-type", content_type)]), body.as_bytes())
}

fn value(json: serde_json::Value) -> Value {
    Value::from(json)
}

const LIMITED: WithRequestBody = WithRequestBody {
    max_request_bytes: 10,
    allow_partial_message: false,
    pack_as_bytes: false,
};
const PARTIAL: WithRequestBody = WithRequestBody {
    allow_partial_message: true,
    ..LIMITED
};

#[test]
fn buffering_stops_where_envoys_ext_authz_stops() {
    assert_eq!(LIMITED.collect(4, false), Collect::Wait);
    assert_eq!(LIMITED.collect(4, true), Collect::Decide { take: 4 });
    assert_eq!(LIMITED.collect(10, true), Collect::Decide { take: 10 });
    // Exactly at the limit with more to come: only the next chunk tells whether it is over.
    assert_eq!(LIMITED.collect(10, false), Collect::Wait);
    assert_eq!(LIMITED.collect(11, false), Collect::TooLarge);
    assert_eq!(LIMITED.collect(11, true), Collect::TooLarge);
    assert_eq!(PARTIAL.collect(9, false), Collect::Wait);
    assert_eq!(PARTIAL.collect(10, false), Collect::Decide { take: 10 });
    assert_eq!(PARTIAL.collect(25, true), Collect::Decide { take: 10 });
    assert!(LIMITED.refuses_length(Some(11)));
    assert!(!LIMITED.refuses_length(Some(10)));
    assert!(!LIMITED.refuses_length(None));
    assert!(!PARTIAL.refuses_length(Some(11)));
}

#[test]
fn no_body_or_unknown_type_is_null() {
    assert_eq!(parse(&headers(&[]), b"{}"), Ok((Value::Null, false)));
    assert_eq!(parsed("text/plain", "{}"), Ok((Value::Null, false)));
    assert_eq!(parsed("application/json", ""), Ok((Value::Null, false)));
    // Substrings, case-sensitive, as OPA-Envoy matches them.
    assert_eq!(parsed("Application/JSON", "{}"), Ok((Value::Null, false)));
    assert_eq!(
        parsed("application/grpc", "\0\0\0\0\0"),
        Ok((Value::Null, false))
    );
}

#[test]
fn partial_body_header_means_truncated() {
    let h = headers(&[
        ("content-type", "application/json"),
        (PARTIAL_BODY_HEADER, "true"),
    ]);
    assert_eq!(parse(&h, b"{\"a\":"), Ok((Value::Null, true)));
    let h = headers(&[
        ("content-type", "application/json"),
        (PARTIAL_BODY_HEADER, "false"),
    ]);
    assert_eq!(
        parse(&h, b"{\"a\":1}"),
        Ok((value(serde_json::json!({"a": 1})), false))
    );
}

#[test]
fn json_bodies() {
    let (body, truncated) = parsed(
        "application/json; charset=utf-8",
        r#" {"firstname":"Charlie","n":[1,2.5,null,true],"o":{}} "#,
    )
    .unwrap();
    assert!(!truncated);
    assert_eq!(
        body,
        value(serde_json::json!({"firstname": "Charlie", "n": [1, 2.5, null, true], "o": {}}))
    );
    assert_eq!(
        parsed("application/json", "\"foo\""),
        Ok((Value::from("foo"), false))
    );
    assert_eq!(parsed("application/json", "null"), Ok((Value::Null, false)));
    assert!(matches!(
        parsed("application/json", "{\"a\":"),
        Err(BodyError::Json(_))
    ));
    assert!(matches!(
        parsed("application/json", "{} {}"),
        Err(BodyError::Json(_))
    ));
    assert!(matches!(
        parsed("application/json", "  "),
        Err(BodyError::Json(_))
    ));
    // Invalid UTF-8 inside a string decodes to U+FFFD, as Go's decoder does.
    let h = headers(&[("content-type", "application/json")]);
    assert_eq!(
        parse(&h, b"\"a\xffb\""),
        Ok((Value::from("a\u{fffd}b"), false))
    );
}

#[test]
fn content_length_over_the_body_means_truncated() {
    let h = headers(&[
        ("content-type", "application/json"),
        ("content-length", "100"),
    ]);
    assert_eq!(parse(&h, b"{\"a\":1"), Ok((Value::Null, true)));
    let h = headers(&[
        ("content-type", "application/json"),
        ("content-length", "7"),
    ]);
    assert_eq!(
        parse(&h, b"{\"a\":1}"),
        Ok((value(serde_json::json!({"a": 1})), false))
    );
    let h = headers(&[
        ("content-type", "application/json"),
        ("content-length", "x"),
    ]);
    assert!(matches!(parse(&h, b"{}"), Err(BodyError::ContentLength(_))));
}

#[test]
fn form_bodies_follow_go_parse_query() {
    let (body, _) = parsed(
        "application/x-www-form-urlencoded",
        "user=alice&role=admin&role=dev&&note=a+b%20c&empty=&flag",
    )
    .unwrap();
    assert_eq!(
        body,
        value(serde_json::json!({
            "user": ["alice"], "role": ["admin", "dev"], "note": ["a b c"], "empty": [""], "flag": [""]
        }))
    );
    assert_eq!(
        parsed("application/x-www-form-urlencoded", "a=%zz&b=1"),
        Err(BodyError::Form("invalid URL escape \"%zz\"".into()))
    );
    assert_eq!(
        parsed("application/x-www-form-urlencoded", "a=1;b=2"),
        Err(BodyError::Form(
            "invalid semicolon separator in query".into()
        ))
    );
    let h = headers(&[("content-type", "application/x-www-form-urlencoded")]);
    assert_eq!(
        parse(&h, b"k=%ff%e2%82"),
        Ok((
            value(serde_json::json!({"k": ["\u{fffd}\u{fffd}\u{fffd}"]})),
            false
        ))
    );
}

#[test]
fn go_string_replaces_each_bad_byte() {
    assert_eq!(go_string(b"plain"), "plain");
    assert_eq!(go_string(b"a\xe2\x82b"), "a\u{fffd}\u{fffd}b");
    assert_eq!(go_string(b"\xff"), "\u{fffd}");
    assert_eq!(go_string("é\u{20ac}".as_bytes()), "é€");
}

#[test]
fn media_types_follow_go() {
    let (t, p) = parse_media_type("Multipart/Form-Data; Boundary=\"a b\"; x=1;").unwrap();
    assert_eq!(t, "multipart/form-data");
    assert_eq!(p.get("boundary").map(String::as_str), Some("a b"));
    assert_eq!(p.get("x").map(String::as_str), Some("1"));
    let (_, p) = parse_media_type("form-data; name*=utf-8''%e2%82%ac; a*0=x; a*1=y").unwrap();
    assert_eq!(p.get("name").map(String::as_str), Some("€"));
    assert_eq!(p.get("a").map(String::as_str), Some("xy"));
    assert!(parse_media_type("multipart/form-data; boundary").is_err());
    assert!(parse_media_type("multipart/form-data; a=1; a=2").is_err());
    assert!(parse_media_type("/x").is_err());
    assert!(parse_media_type("a/b/c").is_err());
}

#[test]
fn multipart_as_opa_envoys_own_tests() {
    let lf = "--foo\nContent-Disposition: form-data; name=\"foo\"\nContent-Type: text/plain\n\nbar\n--foo\nContent-Disposition: form-data; name=\"bar\"\nContent-Type: application/json;\n\n{\"name\": \"bar\"}\n--foo--\n";
    assert_eq!(
        parsed("multipart/form-data; boundary=foo", lf),
        Ok((
            value(serde_json::json!({"foo": ["bar"], "bar": [{"name": "bar"}]})),
            false
        ))
    );
}

#[test]
fn multipart_crlf_repeated_names_files_and_skipped_parts() {
    let body = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\na\r\n--XyZ \r\ncontent-disposition: form-data; name=tag\r\n\r\nb\r\n--XyZ\r\nContent-Disposition: attachment; name=\"skipped\"\r\n\r\nx\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: application/octet-stream\r\n\r\nline1\r\n--XyZnot-a-boundary\r\n\r\n--XyZ--\r\nepilogue";
    assert_eq!(
        parsed("multipart/form-data; boundary=XyZ", body),
        Ok((
            value(
                serde_json::json!({"tag": ["a", "b"], "file": ["line1\r\n--XyZnot-a-boundary\r\n"]})
            ),
            false
        ))
    );
    assert_eq!(
        parsed("multipart/form-data; boundary=foo", "--foo--"),
        Ok((value(serde_json::json!({})), false))
    );
    // An empty part written without the newline before the next boundary.
    assert_eq!(
        parsed(
            "multipart/form-data; boundary=foo",
            "--foo\r\nContent-Disposition: form-data; name=e\r\n\r\n--foo--\r\n"
        ),
        Ok((value(serde_json::json!({"e": [""]})), false))
    );
    assert_eq!(
        parsed("multipart/form-data", "--foo--"),
        Ok((Value::Null, false))
    );
}

#[test]
fn quoted_printable_parts_are_decoded() {
    let body = "--b\r\nContent-Disposition: form-data; name=q\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\ncaf=C3=A9 =\r\nau lait  \r\nx=3d=zz\r\n--b--";
    assert_eq!(
        parsed("multipart/form-data; boundary=b", body),
        Ok((
            value(serde_json::json!({"q": ["café au lait\r\nx==zz"]})),
            false
        ))
    );
}

#[test]
fn malformed_multipart_is_an_error() {
    let cases = [
        // No closing boundary.
        "--foo\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue",
        // No boundary at all.
        "just text",
        // A header line without a colon.
        "--foo\r\nnot a header\r\n\r\nx\r\n--foo--",
        // Something other than a boundary after a part.
        "--foo\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--foo\r\n",
        // A malformed JSON part.
        "--foo\r\nContent-Disposition: form-data; name=a\r\nContent-Type: application/json\r\n\r\n{\r\n--foo--",
    ];
    for body in cases {
        assert!(
            parsed("multipart/form-data; boundary=foo", body).is_err(),
            "{body:?}"
        );
    }
    assert!(matches!(
        parsed("multipart/form-data; boundary=\"\"", "--\r\n"),
        Err(BodyError::Multipart(_))
    ));
    assert!(matches!(
        parsed("multipart/form-data; boundary", "--foo--"),
        Err(BodyError::MediaType(_))
    ));
}

#[test]
fn stalls_are_reported_until_a_body_is_delivered() {
    let mut watch = StallWatch::default();
    watch.hold(1, 1_000);
    watch.hold(2, 4_000);
    watch.hold(3, 4_500);
    watch.release(3);
    assert_eq!(watch.stalled(5_999), Vec::<u32>::new());
    assert_eq!(watch.stalled(6_000), vec![1]);
    assert_eq!(watch.stalled(6_000), Vec::<u32>::new());
    assert!(watch.watching());
    watch.body_delivered();
    assert!(!watch.watching());
    assert_eq!(watch.stalled(60_000), Vec::<u32>::new());
    watch.hold(4, 0);
    assert_eq!(watch.stalled(60_000), Vec::<u32>::new());
}
