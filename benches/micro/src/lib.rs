//! Fixtures shared by the benchmarks: bundles built from `testdata/policies` and requests as
//! Envoy presents them to the filter.

use std::rc::Rc;
use zerohop_filter::bundle::{Bundle, Limits};
use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::engine::Policy;
use zerohop_filter::request::body::BodySettings;
use zerohop_filter::request::decision::{DecisionIds, Enforcement, Outcome};
use zerohop_filter::request::input::{Connection, HttpRequest, Peer, SocketAddress};
use zerohop_filter::request::pipeline::decide_request;
use zerohop_filter::writer::build;

/// A policy, precompiled as `policy-bundler build` makes it, with one request it answers:
/// the filter's per-request work.
pub struct Case {
    pub policy: Policy,
    pub request: HttpRequest,
    pub enforcement: Enforcement,
    pub decision_ids: DecisionIds,
}

impl Case {
    /// `policy` is a directory of `testdata/policies`, `entrypoint` its decision path.
    pub fn new(policy: &str, entrypoint: &str, request: HttpRequest) -> Option<Self> {
        let bundle = precompiled(policy, entrypoint)?;
        Some(Self {
            policy: Policy::load(&bundle, &DecisionPath::parse(entrypoint).ok()?).ok()?,
            request,
            enforcement: Enforcement {
                dry_run: false,
                fail_open: false,
                status_on_error: 403,
            },
            decision_ids: DecisionIds::from_seed(42),
        })
    }

    /// The demo policy with a request it allows.
    pub fn demo() -> Option<Self> {
        Self::new(
            "demo",
            "envoy/authz/allow",
            mesh_request("GET", "/products/42?fields=name", &[]),
        )
    }

    /// Decision id, input build, evaluation and decision, as the filter's `stream` runs them
    /// per request (`request::pipeline`); the id as the text the filter publishes. Never
    /// inlined: callgrind measures a request as the instructions under this symbol.
    #[inline(never)]
    pub fn decide(&mut self) -> (Outcome, String) {
        let id = self.decision_ids.next_id().to_string();
        let outcome = decide_request(
            Some(&mut self.policy),
            &self.request,
            &BodySettings::default(),
            self.enforcement,
        );
        (outcome, id)
    }
}

/// (c) Tokens valid until 2100, made with `tests/e2e/tokens.py` and the keys in `testdata/jwt`.
const HS256_GUEST: &str = "Bearer eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJyb2xlIjogImd1ZXN0IiwgInN1YiI6ICJZV3hwWTJVIiwgIm5iZiI6IDE3MDAwMDAwMDAsICJleHAiOiA0MTAyNDQ0ODAwfQ.pQn872vkgLkttThy1w-UyQk_X-xXImwmTegizEPugzA";
const RS256_READER: &str = "Bearer eyJhbGciOiAiUlMyNTYiLCAidHlwIjogIkpXVCIsICJraWQiOiAicnNhLTEifQ.eyJpc3MiOiAiaHR0cHM6Ly9pc3N1ZXIuZXhhbXBsZSIsICJhdWQiOiAib3JkZXJzIiwgInN1YiI6ICJhbGljZSIsICJzY29wZSI6IFsib3JkZXJzOnJlYWQiXSwgIm5iZiI6IDE3MDAwMDAwMDAsICJleHAiOiA0MTAyNDQ0ODAwfQ.w85AOfgzb2_MxxC4BnjWw5wlHdb4NbK3l7JelyWCdupFiwzBOHtdtuJ3ePfc-La54OlB14xxMW7PSApqacDDai-z7LVwzoHCtjKLa2pWpkWZQBpYg775Bi1khXbLwiNyAq6ygfuVTHaWK3jZN6fTgLNEfo9a6C2gF1rWL85V_VOzYoTj4W1zHeEufLP2Qb-b_xPtOLdRnzylpGTx1iHp_3UzkJw-x_jromQFurqYP3v_ZzZvt1S3BrZQtH31SfX0IpM_1JcAHcWML1oVj694EYaWHpcrRzsm3Mp6jCNLs1Q9UHvsqWw0vTEALJliSuNnsS9Ew5YFdwIQ-Z0G6CCGFQ";

/// The reference policies (benches/micro/README.md), each with a request it allows:
/// (bench name, policy directory, decision path, case). Panics if a bundle does not build.
#[allow(clippy::expect_used)] // benchmark fixtures: a reference bundle that does not build is a bug
pub fn reference_cases() -> Vec<(&'static str, &'static str, &'static str, Case)> {
    let case = |policy, entrypoint, request| {
        Case::new(policy, entrypoint, request).expect("reference bundles build")
    };
    vec![
        (
            "demo",
            "demo",
            "envoy/authz/allow",
            Case::demo().expect("the demo bundle builds"),
        ),
        (
            "istio-quickstart",
            "istio-quickstart",
            "istio/authz/allow",
            // alice:password, basic auth, as in OPA's tutorial.
            case(
                "istio-quickstart",
                "istio/authz/allow",
                mesh_request(
                    "GET",
                    "/productpage",
                    &[("authorization", "Basic YWxpY2U6cGFzc3dvcmQ=")],
                ),
            ),
        ),
        (
            "spiffe-allowlist",
            "spiffe-allowlist",
            "mesh/authz/allow",
            // Three quarters down the 200-entry list.
            case(
                "spiffe-allowlist",
                "mesh/authz/allow",
                mesh_request_from(
                    "spiffe://cluster.local/ns/ledger/sa/service-150",
                    "GET",
                    "/ledger/7",
                ),
            ),
        ),
        (
            "jwt-hs256",
            "envoy-tutorial",
            "envoy/authz/allow",
            // OPA's Envoy tutorial: role guest from an HS256 token.
            case(
                "envoy-tutorial",
                "envoy/authz/allow",
                mesh_request("GET", "/people", &[("authorization", HS256_GUEST)]),
            ),
        ),
        (
            "jwt-rs256",
            "jwt-jwks",
            "envoy/authz/allow",
            // Scope orders:read from an RS256 token, key `rsa-1` of the JWKS in data.
            case(
                "jwt-jwks",
                "envoy/authz/allow",
                mesh_request("GET", "/orders/7", &[("authorization", RS256_READER)]),
            ),
        ),
        (
            "path-rules",
            "path-rules",
            "web/authz/allow",
            // Passes both forbidden-file regexes, misses the globs, matches the API regex.
            case(
                "path-rules",
                "web/authz/allow",
                mesh_request("GET", "/api/v2/products/42", &[]),
            ),
        ),
        (
            "api-key-lookup",
            "api-key-lookup",
            "apikeys/authz/decision",
            case(
                "api-key-lookup",
                "apikeys/authz/decision",
                mesh_request("GET", "/v1/search?q=shoes", &[("x-api-key", "key-04242")]),
            ),
        ),
    ]
}

/// Reads a policy directory (flat: `*.rego` and `data.json`) into bundle files.
pub fn policy_files(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/policies")
        .join(name);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name.ends_with(".rego") || name == "data.json")
                .then(|| (name, std::fs::read(e.path()).unwrap_or_default()))
        })
        .collect();
    files.sort();
    files
}

/// A bundle as `policy-bundler build` makes it, read back as the filter reads it.
pub fn precompiled(name: &str, entrypoint: &str) -> Option<Bundle> {
    Bundle::from_targz(&bundle_targz(name, Some(entrypoint))?, &Limits::default()).ok()
}

/// The `.tar.gz` of a policy directory: precompiled for `entrypoint`, or plain Rego and data
/// (as an OPA bundle, compiled when the filter loads it) without one.
pub fn bundle_targz(name: &str, entrypoint: Option<&str>) -> Option<Vec<u8>> {
    let paths = match entrypoint {
        Some(e) => vec![DecisionPath::parse(e).ok()?],
        None => Vec::new(),
    };
    Some(build(policy_files(name), Some("bench"), &paths).ok()?.targz)
}

/// A typical inbound request under Istio mTLS, with `extra` headers.
pub fn mesh_request(method: &str, path: &str, extra: &[(&str, &str)]) -> HttpRequest {
    let mut request = mesh_request_from("spiffe://cluster.local/ns/shop/sa/frontend", method, path);
    request
        .headers
        .extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    request
}

/// A typical inbound request under Istio mTLS from the workload `principal`.
pub fn mesh_request_from(principal: &str, method: &str, path: &str) -> HttpRequest {
    let xfcc = format!("By=spiffe://cluster.local/ns/shop/sa/shop;Hash=0a1b2c;URI={principal}");
    let headers = [
        (":authority", "shop.shop.svc.cluster.local:8080"),
        (":path", path),
        (":method", method),
        (":scheme", "http"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "*/*"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "7bca5c86-bf55-432c-b212-8c0f1dc999ec"),
        ("x-forwarded-client-cert", xfcc.as_str()),
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
    ];
    HttpRequest {
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        time_ns: Some(1_764_000_000_123_456_789),
        metadata_context: None,
        connection: Some(Rc::new(Connection::new(
            "HTTP/1.1".into(),
            Peer {
                address: SocketAddress::parse("10.1.2.3:51234"),
                principal: Some(principal.into()),
            },
            Peer {
                address: SocketAddress::parse("10.1.2.4:8080"),
                principal: Some("spiffe://cluster.local/ns/shop/sa/shop".into()),
            },
        ))),
        body: None,
    }
}
