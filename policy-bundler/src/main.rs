//! `policy-bundler`: the CLI policy authors run. It is glue over `zerohop-filter`'s core, so
//! what `eval` answers is what the proxy enforces.
//!
//! Exit codes: 0 success, 1 the policy or bundle failed a check, 2 usage or I/O error.

mod cmd;
mod lint;
mod report;
mod sign;
mod sources;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zerohop_filter::bundle::RegoVersion;
use zerohop_filter::defaults;
use zerohop_filter::engine::budget::{Budget, CountingAllocator};

/// Counts what evaluations allocate, so that `eval` holds them to the filter's memory budget.
#[global_allocator]
static ALLOCATOR: CountingAllocator<std::alloc::System> = CountingAllocator(std::alloc::System);

#[derive(Parser)]
#[command(
    name = "policy-bundler",
    version,
    about = "Check, build, inspect and evaluate zerohop policy bundles (OPA bundle format)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and compile the Rego and data in DIR, refusing what OPA's compiler refuses;
    /// errors as file:line:column.
    Check {
        dir: PathBuf,
        /// Decision rules to compile, e.g. envoy/authz/allow or
        /// data.policy["com.styra.envoy.ingress"].rules.rules (repeatable); without it, the
        /// default decision rule if the bundle defines it.
        #[arg(short, long = "entrypoint")]
        entrypoints: Vec<String>,
        /// Treat findings (`with`, Rego that runs interpreted) as errors.
        #[arg(long)]
        strict: bool,
        /// Parse modules as Rego v0 unless the .manifest gives their version (OPA's flag).
        #[arg(long)]
        v0_compatible: bool,
    },
    /// Build an OPA-compatible bundle with the precompiled program.
    Build {
        dir: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Decision rules to precompile, a path or a reference (repeatable)
        /// [default: envoy/authz/allow].
        #[arg(short, long = "entrypoint")]
        entrypoints: Vec<String>,
        /// The bundle revision written to .manifest.
        #[arg(short, long)]
        revision: Option<String>,
        /// Sign the bundle: the HMAC secret, or the path of a PEM private key (RSA, EC).
        #[arg(long)]
        signing_key: Option<String>,
        /// RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, HS256, HS384, HS512.
        #[arg(long, default_value = "RS256", requires = "signing_key")]
        signing_alg: String,
        /// Parse modules as Rego v0 unless the .manifest gives their version (OPA's flag).
        #[arg(long)]
        v0_compatible: bool,
        /// The key id written to the signature (JWT `kid` and `keyid` claim).
        #[arg(long, default_value = "default")]
        verification_key_id: String,
        /// The `scope` claim written to the signature.
        #[arg(long, requires = "signing_key")]
        scope: Option<String>,
    },
    /// Verify a signed bundle's .signatures.json as the filter (and OPA) does.
    Verify {
        bundle: PathBuf,
        /// The HMAC secret, or the path of a PEM public key (RSA, EC).
        #[arg(long)]
        verification_key: String,
        /// The key id the signature must name (or that verifies it when it names none).
        #[arg(long, default_value = "default")]
        verification_key_id: String,
        #[arg(long, default_value = "RS256")]
        signing_alg: String,
        /// The scope the signature must carry.
        #[arg(long)]
        scope: Option<String>,
        /// Files not checked against the signature (glob, repeatable).
        #[arg(long = "exclude-files-verify")]
        exclude_files: Vec<String>,
        #[arg(long, value_enum, default_value_t = report::Format::Human)]
        format: report::Format,
    },
    /// Parse a plugin configuration (a WasmPlugin/TrafficExtension `pluginConfig`, as JSON)
    /// with the filter's own rules; errors name the key at fault.
    Config { file: PathBuf },
    /// Publish a bundle as an image in an OCI registry (OPA's `type: oci` layout: the bundle
    /// is the one application/vnd.oci.image.layer.v1.tar+gzip layer), through skopeo.
    Push {
        bundle: PathBuf,
        /// oci://HOST[:PORT]/REPOSITORY:TAG
        reference: String,
        /// Keep the OCI image layout written for skopeo in this directory.
        #[arg(long)]
        layout: Option<PathBuf>,
        /// The registry speaks plain HTTP (a registry on loopback for tests).
        #[arg(long)]
        plain_http: bool,
    },
    /// Show a bundle's manifest, files, entrypoints and program.
    Inspect {
        bundle: PathBuf,
        #[arg(long, value_enum, default_value_t = report::Format::Human)]
        format: report::Format,
    },
    /// Evaluate a decision for an input document, or run an HTTP request through the filter's
    /// request path (`--request`), exactly as the filter does.
    Eval {
        #[arg(short, long)]
        bundle: PathBuf,
        /// The OPA-Envoy input document (JSON); prints the decision.
        #[arg(
            short,
            long,
            required_unless_present = "request",
            conflicts_with = "request"
        )]
        input: Option<PathBuf>,
        /// An HTTP request (JSON: `path`, and optionally `method`, `authority`, `scheme`,
        /// `headers`, `body`, `protocol`, `source`, `destination`); prints what the proxy does
        /// with it: forward (with the headers the decision set) or reply.
        #[arg(short, long)]
        request: Option<PathBuf>,
        /// With `--request`: the plugin configuration (JSON) whose settings apply; its bundle
        /// source is replaced by `--bundle`.
        #[arg(short, long, requires = "request")]
        config: Option<PathBuf>,
        /// The decision path, `envoy/authz/allow` or a reference such as
        /// `data.policy["com.styra.envoy.ingress"].rules.rules` [default: envoy/authz/allow, or
        /// the configuration's `path`].
        #[arg(short, long, visible_short_alias = 'e', visible_alias = "entrypoint")]
        path: Option<String>,
        /// Parse modules as Rego v0 unless the .manifest gives their version (OPA's flag). With
        /// `--request`, the filter reads the bundle: build it with this flag instead.
        #[arg(long, conflicts_with = "request")]
        v0_compatible: bool,
        /// The plugin configuration's `max_eval_memory_bytes`.
        #[arg(long, default_value_t = defaults::DEFAULT_MEMORY_BYTES,
              value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "request")]
        max_eval_memory_bytes: u64,
        /// The plugin configuration's `max_eval_instructions`.
        #[arg(long, default_value_t = defaults::DEFAULT_INSTRUCTIONS as u64,
              value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "request")]
        max_eval_instructions: u64,
        /// The plugin configuration's `max_eval_time_ms`.
        #[arg(long, default_value_t = defaults::DEFAULT_TIME_MS,
              value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "request")]
        max_eval_time_ms: u32,
    },
    /// Replay decision logs against a candidate bundle: which decisions would change
    Replay {
        /// The candidate bundle (.tar.gz)
        #[arg(short, long)]
        bundle: PathBuf,
        /// A decision-log file: Envoy's log (`zerohop-decision {...}` lines), uploaded JSON
        /// arrays, or one event per line; gzip or not. Repeat for more files
        #[arg(short, long = "logs", required = true)]
        logs: Vec<PathBuf>,
        /// How many changed decisions to show
        #[arg(long, default_value_t = 10)]
        show: usize,
        /// Exit 1 when any decision would change
        #[arg(long)]
        fail_on_change: bool,
    },
}

/// The version of modules the manifest gives none: OPA 1.x's v1, or v0 with
/// `--v0-compatible`.
fn default_version(v0_compatible: bool) -> RegoVersion {
    if v0_compatible {
        RegoVersion::V0
    } else {
        RegoVersion::V1
    }
}

/// A failure of the artifact under test (exit 1), as opposed to any other error (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check {
            dir,
            entrypoints,
            strict,
            v0_compatible,
        } => cmd::check::run(&dir, &entrypoints, strict, default_version(v0_compatible)),
        Command::Build {
            dir,
            output,
            entrypoints,
            revision,
            signing_key,
            signing_alg,
            v0_compatible,
            verification_key_id,
            scope,
        } => {
            let signing = signing_key.as_deref().map(|key| cmd::build::Signing {
                key,
                algorithm: &signing_alg,
                key_id: &verification_key_id,
                scope: scope.as_deref(),
            });
            cmd::build::run(
                &dir,
                &output,
                &entrypoints,
                revision.as_deref(),
                signing.as_ref(),
                default_version(v0_compatible),
            )
        }
        Command::Verify {
            bundle,
            verification_key,
            verification_key_id,
            signing_alg,
            scope,
            exclude_files,
            format,
        } => cmd::verify::run(
            &bundle,
            &cmd::verify::Options {
                key: &verification_key,
                key_id: &verification_key_id,
                algorithm: &signing_alg,
                scope: scope.as_deref(),
                exclude_files: &exclude_files,
            },
            format,
        ),
        Command::Config { file } => cmd::config::run(&file),
        Command::Push {
            bundle,
            reference,
            layout,
            plain_http,
        } => cmd::push::run(&bundle, &reference, layout.as_deref(), plain_http),
        Command::Inspect { bundle, format } => cmd::inspect::run(&bundle, format),
        Command::Eval {
            bundle,
            input,
            request,
            config,
            path,
            v0_compatible,
            max_eval_memory_bytes,
            max_eval_instructions,
            max_eval_time_ms,
        } => match (input, request) {
            (_, Some(request)) => {
                cmd::request::run(&bundle, &request, config.as_deref(), path.as_deref())
            }
            (Some(input), None) => {
                let budget = Budget {
                    memory_bytes: max_eval_memory_bytes,
                    instructions: usize::try_from(max_eval_instructions).unwrap_or(usize::MAX),
                    time: std::time::Duration::from_millis(u64::from(max_eval_time_ms)),
                };
                cmd::eval::run(
                    &bundle,
                    &input,
                    path.as_deref(),
                    budget,
                    default_version(v0_compatible),
                )
            }
            (None, None) => unreachable!("clap requires --input or --request"),
        },
        Command::Replay {
            bundle,
            logs,
            show,
            fail_on_change,
        } => cmd::replay::run(&bundle, &logs, show, fail_on_change),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report::error(&format!("{e:#}"));
            if e.downcast_ref::<Failed>().is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}
