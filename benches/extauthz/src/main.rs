//! The ext_authz baseline of the benchmarks: an Envoy `Authorization/Check` gRPC server that
//! builds the same OPA-Envoy `input` with zerohop's core and evaluates it with the same
//! `Policy`, so the only difference from the filter is the trip out of Envoy and back (gRPC
//! over loopback, protobuf both ways). The lower bound for any remote authorizer, OPA-Envoy
//! included. Not a product: no TLS, no bundle reloads, one thread.
//!
//!     zerohop-extauthz --listen 127.0.0.1:9191 --bundle policy.tar.gz --decision envoy/authz/allow

use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;

use envoy_types::ext_authz::v3::pb::{
    Address, Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HttpStatus,
};
use envoy_types::ext_authz::v3::{CheckResponseExt, OkHttpResponseBuilder};
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::service::auth::v3::attribute_context;
use zerohop_filter::bundle::{Bundle, Limits};
use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::engine::Policy;
use zerohop_filter::request::body::BodySettings;
use zerohop_filter::request::decision::{Action, Enforcement};
use zerohop_filter::request::input::{Connection, HttpRequest, Peer, SocketAddress};
use zerohop_filter::request::pipeline::decide_request;

thread_local! {
    // The server runs on one thread (current-thread runtime), like one Envoy worker's VM.
    static POLICY: RefCell<Option<Policy>> = const { RefCell::new(None) };
}

const ENFORCEMENT: Enforcement = Enforcement {
    dry_run: false,
    fail_open: false,
    status_on_error: 403,
};

/// The request as the filter would see it, rebuilt from what Envoy sent in the CheckRequest.
fn http_request(check: &CheckRequest) -> HttpRequest {
    let attributes = check.attributes.clone().unwrap_or_default();
    let request = attributes.request.unwrap_or_default();
    let http = request.http.unwrap_or_default();
    let time_ns = request.time.map(|t| {
        t.seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(t.nanos.into())
    });
    HttpRequest {
        headers: http.headers.into_iter().collect(),
        time_ns,
        metadata_context: None,
        connection: Some(Rc::new(Connection::new(
            http.protocol,
            peer(attributes.source),
            peer(attributes.destination),
        ))),
        body: None,
    }
}

fn peer(peer: Option<attribute_context::Peer>) -> Peer {
    let peer = peer.unwrap_or_default();
    let address = peer.address.and_then(|a| a.address).and_then(|a| match a {
        Address::SocketAddress(s) => Some(SocketAddress {
            address: s.address,
            port: match s.port_specifier {
                Some(PortSpecifier::PortValue(port)) => port,
                _ => 0,
            },
        }),
        _ => None,
    });
    Peer {
        address,
        principal: Some(peer.principal).filter(|p| !p.is_empty()),
    }
}

/// Input build, evaluation and decision, exactly as the filter runs them (`request::pipeline`).
fn check(request: &CheckRequest) -> CheckResponse {
    // The filter's request path, so the same input pruning (`shape`) and outcomes.
    let outcome = POLICY.with_borrow_mut(|policy| {
        decide_request(
            policy.as_mut(),
            &http_request(request),
            &BodySettings::default(),
            ENFORCEMENT,
        )
    });
    let mut response = CheckResponse::default();
    match outcome.action {
        Action::Forward(allow) => {
            let mut ok = OkHttpResponseBuilder::new();
            for (name, value) in allow.headers {
                ok.add_header(
                    name,
                    value,
                    Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                    true,
                );
            }
            for name in allow.request_headers_to_remove {
                ok.remove_header(name);
            }
            for (name, value) in allow.response_headers_to_add {
                ok.add_response_header(name, value, None, true);
            }
            for (name, value) in allow.query_parameters_to_set {
                ok.set_query_parameter(name, value);
            }
            for name in allow.query_parameters_to_remove {
                ok.remove_query_parameter(name);
            }
            response.set_status(tonic::Status::ok(""));
            response.set_http_response(ok.build());
        }
        Action::Reply(deny) => {
            let mut headers = Vec::new();
            for (key, value) in deny.headers {
                #[allow(deprecated)] // `append` is deprecated, and a required field of the struct
                headers.push(envoy_types::ext_authz::v3::pb::HeaderValueOption {
                    header: Some(HeaderValue {
                        key,
                        value,
                        raw_value: Vec::new(),
                    }),
                    append: None,
                    append_action: HeaderAppendAction::OverwriteIfExistsOrAdd.into(),
                    keep_empty_value: true,
                });
            }
            response.set_status(tonic::Status::permission_denied(""));
            response.set_http_response(DeniedHttpResponse {
                status: Some(HttpStatus {
                    code: deny.status.into(),
                }),
                headers,
                body: deny.body,
            });
        }
    }
    response
}

struct Authorizer;

#[tonic::async_trait]
impl Authorization for Authorizer {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(check(request.get_ref())))
    }
}

fn load(bundle: &str, decision: &str) -> Result<Policy, String> {
    let bytes = std::fs::read(bundle).map_err(|e| format!("{bundle}: {e}"))?;
    let bundle = Bundle::from_targz(&bytes, &Limits::default()).map_err(|e| e.to_string())?;
    let path = DecisionPath::parse(decision).map_err(|e| e.to_string())?;
    Policy::load(&bundle, &path).map_err(|e| e.to_string())
}

fn arguments() -> Result<(String, String, String), String> {
    let mut listen = None;
    let mut bundle = None;
    let mut decision = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value),
            "--bundle" => bundle = Some(value),
            "--decision" => decision = Some(value),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok((
        listen.ok_or("--listen is required")?,
        bundle.ok_or("--bundle is required")?,
        decision.unwrap_or_else(|| "envoy/authz/allow".into()),
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (listen, bundle, decision) = match arguments() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("zerohop-extauthz: {e}");
            return ExitCode::from(2);
        }
    };
    let policy = match load(&bundle, &decision) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("zerohop-extauthz: cannot load {bundle}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "zerohop-extauthz: {} ({}) on {listen}",
        policy.rule(),
        policy.mode().as_str()
    );
    POLICY.set(Some(policy));
    let Ok(address) = listen.parse() else {
        eprintln!("zerohop-extauthz: --listen {listen}: not an ip:port");
        return ExitCode::from(2);
    };
    let served = tonic::transport::Server::builder()
        .add_service(AuthorizationServer::new(Authorizer))
        .serve(address)
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zerohop-extauthz: {e}");
            ExitCode::FAILURE
        }
    }
}
