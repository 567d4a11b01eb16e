//! Evaluation with regorus behind one type. A `Policy` is built once per bundle activation
//! (never per request) and evaluates the decision rule for an `input`:
//! - a bundle with a precompiled program for the rule runs it on the RVM, without parsing Rego;
//! - otherwise the Rego is compiled to an RVM program when the bundle is loaded;
//! - Rego the RVM compiler cannot handle yet runs on the regorus interpreter.
//!
//! Builtins regorus lacks (`io.jwt.*`, in `jwt`, `time.now_ns`, and those in `builtins`) are host functions: compiled programs reach
//! them through RVM `HostAwait` (the VM suspends, we answer, it resumes), the interpreter
//! through engine extensions. Programs without such calls run to completion as before.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::{DeserializationResult, Program};
use regorus::rvm::vm::{ExecutionMode, ExecutionState, SuspendReason, VmError};
use regorus::rvm::RegoVM;
use regorus::unstable::FutureKeywordError;
use regorus::{LimitError, Value};

use crate::bundle::{Bundle, Module, ProgramInfo, RegoVersion};
use crate::decision_path::DecisionPath;
use crate::shape::{InputReads, InputShape};
use crate::{COMPILER_REVISION, REGORUS_VERSION};
use cache::DecisionCache;

pub mod budget;
mod builtins;
mod cache;
pub mod compile_checks;
pub mod http_send;
pub mod jwt;
mod opa_quirks;
mod reads;
mod signatures;
mod types;
mod verified;
pub mod walk;

pub use crate::shape::Analysis;
pub use budget::{Budget, Exceeded};

/// How the decision rule is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The bundle's precompiled program.
    Precompiled,
    /// Rego compiled to a program when the bundle was loaded.
    CompiledAtLoad,
    /// The regorus interpreter (the RVM compiler rejected this Rego).
    Interpreted,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Precompiled => "precompiled",
            Mode::CompiledAtLoad => "compiled-at-load",
            Mode::Interpreted => "interpreted",
        }
    }
}

/// Why a bundle could not become an evaluable policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Rego(RegoError),
    /// Rego that OPA's compiler refuses (all of it, sorted by place).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Refused(Vec<compile_checks::CompileError>),
    #[error("{0} (not available in this filter)")]
    Unsupported(RegoError),
    #[error("bundle data: {0}")]
    Data(String),
    #[error("decision rule {rule}: {message}")]
    Compile { rule: String, message: String },
    #[error("precompiled program was built with regorus {found}, this filter runs regorus {expected}: rebuild the bundle with the matching policy-bundler")]
    ProgramVersion {
        found: String,
        expected: &'static str,
    },
    #[error("precompiled program is unusable: {0}")]
    Program(String),
}

impl LoadError {
    /// A stable kebab-case code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::Rego(_) => crate::codes::REGO_ERROR.name,
            LoadError::Refused(errors) => errors
                .first()
                .map_or(crate::codes::REGO_ERROR.name, |e| e.code),
            LoadError::Unsupported(_) => crate::codes::UNSUPPORTED_FUNCTION.name,
            LoadError::Data(_) => crate::codes::DATA_LOAD_ERROR.name,
            LoadError::Compile { .. } => crate::codes::COMPILE_ERROR.name,
            LoadError::ProgramVersion { .. } => crate::codes::PROGRAM_VERSION.name,
            LoadError::Program(_) => crate::codes::BAD_PROGRAM.name,
        }
    }
}

/// A Rego error at a place in a module: `file:line:column: message`, plus the source excerpt
/// regorus shows for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct RegoError {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
    pub snippet: String,
}

impl RegoError {
    /// Reads regorus's multi-line report (`--> file:line:col`, excerpt, `error: message`).
    /// A nested report names the innermost place last; that is the one reported.
    pub fn from_regorus(file: &str, report: &str) -> Self {
        let location = report
            .lines()
            .rev()
            .find_map(|l| l.trim_start().strip_prefix("--> "));
        let (file, line, column) = location
            .and_then(|loc| {
                let mut parts = loc.rsplitn(3, ':');
                let column = parts.next()?.trim().parse().ok()?;
                let line = parts.next()?.trim().parse().ok()?;
                Some((parts.next().unwrap_or(file), line, column))
            })
            .unwrap_or((file, 1, 1));
        let message = report
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(report)
            .trim()
            .to_string();
        let snippet = report
            .lines()
            .filter(|l| {
                !l.starts_with("error: ")
                    && !l.trim_start().starts_with("--> ")
                    && !l.trim().is_empty()
            })
            .collect::<Vec<_>>()
            .join("\n");
        Self {
            file: file.to_string(),
            line,
            column,
            message,
            snippet,
        }
    }
}

/// Why an evaluation produced no decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("undefined decision")]
    Undefined,
    #[error("evaluation failed: {0}")]
    Failed(String),
    /// The evaluation used more memory, work or time than its `Budget`.
    #[error("evaluation stopped [{exceeded}]: {detail}")]
    Budget { exceeded: Exceeded, detail: String },
}

impl EvalError {
    fn from_vm(error: &VmError) -> Self {
        let exceeded = match error {
            VmError::MemoryLimitExceeded { .. } => Exceeded::Memory,
            VmError::InstructionLimitExceeded { .. } => Exceeded::Work,
            VmError::TimeLimitExceeded { .. } => Exceeded::Time,
            other => return EvalError::Failed(other.to_string()),
        };
        EvalError::Budget {
            exceeded,
            detail: error.to_string(),
        }
    }

    /// `error` is the interpreter's (an `anyhow::Error`), and `report` its text.
    fn from_interpreter(error: &(dyn std::error::Error + 'static), report: String) -> Self {
        let limit = std::iter::successors(Some(error), |cause| cause.source())
            .find_map(|cause| cause.downcast_ref::<LimitError>());
        let exceeded = match limit {
            Some(LimitError::MemoryLimitExceeded { .. }) => Exceeded::Memory,
            Some(LimitError::TimeLimitExceeded { .. }) => Exceeded::Time,
            _ => return EvalError::Failed(report),
        };
        EvalError::Budget {
            exceeded,
            detail: report,
        }
    }
}

enum Backend {
    /// The VM, and what makes another for an evaluation that waits on `http.send`.
    Vm {
        vm: Box<RegoVM>,
        program: Arc<Program>,
        data: Value,
    },
    Interpreter(Box<regorus::Engine>),
}

/// What host functions read besides their arguments. The time of the evaluation under way,
/// as OPA gives every builtin of one query the same time: read once, on the first host
/// function call that needs it, from the clock regorus's `time.now_ns` reads (the system
/// clock: WASI's realtime clock inside Envoy), so a policy without such calls never reads
/// it. What `opa.runtime` answers (`Policy::configure`). The `http.send` answers kept for
/// `cache` and `force_cache` requests.
#[derive(Clone)]
pub struct EvalContext {
    now_ns: Arc<AtomicI64>,
    runtime: Arc<std::sync::Mutex<Option<Value>>>,
    http_cache: Arc<std::sync::Mutex<http_send::ResponseCache>>,
}

impl Default for EvalContext {
    fn default() -> Self {
        EvalContext {
            now_ns: Arc::default(),
            runtime: Arc::default(),
            http_cache: Arc::new(std::sync::Mutex::new(http_send::ResponseCache::new(
                crate::defaults::DEFAULT_HTTP_SEND_CACHED_RESPONSES,
            ))),
        }
    }
}

impl EvalContext {
    /// Starts a new evaluation: the next `now_ns` reads the clock again.
    fn reset(&self) {
        self.now_ns.store(0, Ordering::Relaxed);
    }

    fn now_ns(&self) -> i64 {
        let cached = self.now_ns.load(Ordering::Relaxed);
        if cached != 0 {
            return cached;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(1);
        self.now_ns.store(now, Ordering::Relaxed);
        now
    }

    /// `opa.runtime()`: what the host set, else the environment and the version alone.
    fn runtime(&self) -> Value {
        match self.runtime.lock().as_deref() {
            Ok(Some(runtime)) => runtime.clone(),
            _ => runtime_info(None),
        }
    }
}

/// `opa.runtime()`'s answer as OPA shapes it: `config`, when there is one (the plugin
/// configuration, without credentials, keys, headers and inline bundles), `env` (the
/// process's environment: in Envoy, the VM's `environment_variables`) and `version` (this
/// filter's).
pub fn runtime_info(config: Option<&serde_json::Value>) -> Value {
    fn without_secrets(value: &serde_json::Value) -> serde_json::Value {
        const SECRET: [&str; 8] = [
            "credentials",
            "headers",
            "inline",
            "key",
            "private_key",
            "password",
            "secret",
            "token",
        ];
        match value {
            serde_json::Value::Object(fields) => serde_json::Value::Object(
                fields
                    .iter()
                    .filter(|(name, _)| !SECRET.contains(&name.as_str()))
                    .map(|(name, value)| (name.clone(), without_secrets(value)))
                    .collect(),
            ),
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(without_secrets).collect())
            }
            other => other.clone(),
        }
    }
    let mut info = serde_json::Map::new();
    info.insert(
        "env".into(),
        serde_json::json!(std::env::vars().collect::<std::collections::BTreeMap<_, _>>()),
    );
    info.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    if let Some(config) = config {
        info.insert("config".into(), without_secrets(config));
    }
    Value::from_json_str(&serde_json::Value::Object(info).to_string()).unwrap_or(Value::Undefined)
}

/// `time.now_ns`: this build leaves regorus's `time` builtins out (size), and OPA gives every
/// call in one evaluation the same time, which the host function does too.
const TIME_NOW_NS: (&str, usize) = ("time.now_ns", 0);

/// `http.send`: the evaluation suspends at the call, and the host makes the callout.
const HTTP_SEND: (&str, usize) = ("http.send", 1);

/// `opa.runtime`: the plugin's configuration (without secrets), environment and version.
const OPA_RUNTIME: (&str, usize) = ("opa.runtime", 0);

/// The functions the filter adds to regorus's builtins, with their argument counts.
fn host_functions() -> Vec<(&'static str, usize)> {
    let mut functions = jwt::FUNCTIONS.to_vec();
    functions.push(TIME_NOW_NS);
    functions.push(HTTP_SEND);
    functions.push(OPA_RUNTIME);
    functions.extend(builtins::functions());
    functions
}

/// Answers a host function call: a builtin error is undefined, as in OPA-Envoy. `Err` is a
/// call OPA answers and this filter cannot (an engine gap): it stops the evaluation, fail
/// closed, instead of answering differently.
fn host_call(name: &str, args: &[Value], context: &EvalContext) -> Result<Value, String> {
    if name == TIME_NOW_NS.0 {
        return Ok(Value::from(context.now_ns()));
    }
    if name == OPA_RUNTIME.0 {
        return Ok(context.runtime());
    }
    if let Some(result) = builtins::call(name, args) {
        return Ok(result.unwrap_or(Value::Undefined));
    }
    if let Some(gap) = jwt::gap(name, args) {
        return Err(gap);
    }
    Ok(jwt::call(name, args, context.now_ns()).unwrap_or(Value::Undefined))
}

/// A bundle ready to evaluate one decision rule.
pub struct Policy {
    backend: Backend,
    context: EvalContext,
    /// The decision rule, as configured (`data.envoy.authz.allow`); shared with each
    /// evaluation's `Segment` without a copy.
    rule: Arc<str>,
    /// What is evaluated: `rule`, or the rule that reads its document (`document_entry`).
    entry: String,
    mode: Mode,
    revision: String,
    analysis: Analysis,
    shape: InputShape,
    cache: DecisionCache,
    cache_counts: CacheCounts,
    budget: Budget,
    peak_bytes: u64,
    /// What `print` wrote during the evaluations since `take_prints`.
    prints: Vec<String>,
    /// The bundle's decision-log mask and drop rules, when decision logs are on.
    log_rules: Option<crate::audit::mask::LogRules>,
}

/// Decisions answered from the cache and evaluated with the cache on, since they were last
/// taken (`Policy::take_cache_counts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
}

impl CacheCounts {
    pub fn add(&mut self, other: CacheCounts) {
        self.hits += other.hits;
        self.misses += other.misses;
    }
}

impl Policy {
    /// Loads `bundle` to evaluate the rule named by `path`.
    pub fn load(bundle: &Bundle, path: &DecisionPath) -> Result<Self, LoadError> {
        let rule = path.rule().to_string();
        let precompiled = match (&bundle.program, bundle.manifest.program()) {
            // A program from another compiler revision may carry answers a later fix
            // corrected: the Rego is compiled again instead.
            (Some(bytes), Some(info))
                if info.entrypoints.contains(&rule) && info.compiler == COMPILER_REVISION =>
            {
                Some((deserialize(bytes, info)?, info.analysis()))
            }
            (Some(_), None) => {
                return Err(LoadError::Program(
                    "the manifest has no metadata.zerohop entry describing it".into(),
                ))
            }
            _ => None,
        };
        let (backend, mode, context, analysis, entry) = match precompiled {
            Some((program, analysis)) => {
                let entry = program_entry(&program, &rule);
                (
                    vm(program, &bundle.data)?,
                    Mode::Precompiled,
                    EvalContext::default(),
                    analysis,
                    entry,
                )
            }
            None => match compile(bundle, &[rule.as_str()])? {
                Compiled::Program { program, analysis } => {
                    let entry = program_entry(&program, &rule);
                    (
                        vm(program, &bundle.data)?,
                        Mode::CompiledAtLoad,
                        EvalContext::default(),
                        analysis,
                        entry,
                    )
                }
                Compiled::Interpreter {
                    engine,
                    context,
                    analysis,
                    mut entries,
                    ..
                } => (
                    Backend::Interpreter(engine),
                    Mode::Interpreted,
                    context,
                    analysis,
                    entries.pop().unwrap_or_else(|| rule.clone()),
                ),
            },
        };
        Ok(Self::assemble(
            bundle, rule, entry, backend, mode, context, analysis,
        ))
    }

    /// Loads `bundle` for the rule named by `path` on the regorus interpreter, whatever the
    /// RVM compiler would make of it: the differential tests (`tests/regodiff`) compare the
    /// interpreter with the compiled paths. It refuses what `load` refuses. The filter itself
    /// never calls this.
    pub fn load_interpreted(bundle: &Bundle, path: &DecisionPath) -> Result<Self, LoadError> {
        let rule = path.rule().to_string();
        compile(bundle, &[rule.as_str()])?;
        let context = EvalContext::default();
        let mut engine = parse_with_context(bundle, &context)?;
        let entry = add_document_entries(&mut engine, &[rule.as_str()])?
            .pop()
            .unwrap_or_else(|| rule.clone());
        let analysis = reads::analyse(engine.get_modules());
        let backend = Backend::Interpreter(Box::new(engine));
        Ok(Self::assemble(
            bundle,
            rule,
            entry,
            backend,
            Mode::Interpreted,
            context,
            analysis,
        ))
    }

    fn assemble(
        bundle: &Bundle,
        rule: String,
        entry: String,
        backend: Backend,
        mode: Mode,
        context: EvalContext,
        analysis: Analysis,
    ) -> Self {
        let mut backend = backend;
        // `print` is gathered, never written to the process's stderr (`take_prints`).
        if let Backend::Interpreter(engine) = &mut backend {
            engine.set_gather_prints(true);
        }
        let mut policy = Self {
            backend,
            context,
            rule: rule.into(),
            entry,
            mode,
            revision: bundle.manifest.revision.clone(),
            shape: InputShape::from(&analysis.input),
            cache: DecisionCache::new(0),
            cache_counts: CacheCounts::default(),
            analysis,
            budget: Budget::default(),
            peak_bytes: 0,
            prints: Vec::new(),
            log_rules: None,
        };
        policy.set_decision_cache(crate::defaults::DEFAULT_DECISION_CACHE_BYTES);
        policy.set_budget(Budget::default());
        policy
    }

    /// Holds every evaluation to `budget`.
    pub fn set_budget(&mut self, budget: Budget) {
        match &mut self.backend {
            Backend::Vm { vm, .. } => apply_budget(vm, &budget),
            Backend::Interpreter(engine) => engine.set_execution_timer_config(budget.timer()),
        }
        self.budget = budget;
    }

    /// Takes the plugin configuration's settings for evaluations: the decision cache's
    /// budget, the evaluation budget, `opa.runtime()`'s answer.
    pub fn configure(&mut self, config: &crate::config::Config) {
        self.set_decision_cache(config.decision_cache_bytes);
        self.set_budget(config.budget);
        if let Ok(mut runtime) = self.context.runtime.lock() {
            *runtime = Some(config.runtime.clone());
        }
        if let Ok(mut cache) = self.context.http_cache.lock() {
            *cache = http_send::ResponseCache::new(config.http_send.cached_responses);
        }
    }

    /// The paths under `input` the policy can read.
    pub fn input_reads(&self) -> &InputReads {
        &self.analysis.input
    }

    /// The parts of `input` each request builds.
    pub fn input_shape(&self) -> &InputShape {
        &self.shape
    }

    /// Gives the decision cache `budget` bytes (`0`: no cache). A policy whose decisions may
    /// differ for equal inputs (it reads the clock, for one) never caches.
    pub fn set_decision_cache(&mut self, budget: usize) {
        let budget = if self.analysis.nondeterministic.is_some() {
            0
        } else {
            budget
        };
        self.cache = DecisionCache::new(budget);
    }

    /// Whether decisions are cached.
    pub fn caches(&self) -> bool {
        self.cache.enabled()
    }

    /// The cache's hits and misses since the last call.
    pub fn take_cache_counts(&mut self) -> CacheCounts {
        std::mem::take(&mut self.cache_counts)
    }

    /// How many decisions the cache holds.
    #[cfg(test)]
    fn cached_decisions(&self) -> usize {
        self.cache.len()
    }

    /// Whether decisions are cached, or why not: for the activation log.
    pub fn decision_cache(&self) -> String {
        match &self.analysis.nondeterministic {
            Some(builtin) => format!("off (nondeterministic: {builtin})"),
            None if self.cache.enabled() => "on".to_string(),
            None => "off".to_string(),
        }
    }

    /// Evaluates the decision rule for `input`, or answers from the decision cache. A host
    /// that makes `http.send` callouts calls `start` instead: here `http.send` fails the
    /// evaluation.
    pub fn evaluate(&mut self, input: Value) -> Result<Value, EvalError> {
        match self.start(input) {
            Step::Done(result) => result,
            Step::Send(_) => Err(EvalError::Failed(format!(
                "{}: http.send needs a host that makes callouts",
                self.rule
            ))),
        }
    }

    /// Starts evaluating the decision rule for `input` (or answers from the decision cache):
    /// done, or waiting for the answer of an `http.send` (`Pending::resume`).
    pub fn start(&mut self, input: Value) -> Step {
        self.prints.clear();
        let key = self.cache.enabled().then(|| DecisionCache::key(&input));
        if let Some(key) = &key {
            if let Some(decision) = self.cache.get(key, &input) {
                self.cache_counts.hits += 1;
                return Step::Done(match decision {
                    Value::Undefined => Err(EvalError::Undefined),
                    decision => Ok(decision.clone()),
                });
            }
        }
        let cached_input = key.as_ref().map(|_| {
            self.cache_counts.misses += 1;
            input.clone()
        });
        let step = self.start_uncached(input);
        if let (Some(key), Some(input), Step::Done(result)) = (key, cached_input, &step) {
            // Failures (a budget, a host error) are not decisions: not kept. A policy that
            // calls `http.send` never caches (`reads::NONDETERMINISTIC`).
            match result {
                Ok(decision) => self.cache.insert(key, input, decision.clone()),
                Err(EvalError::Undefined) => self.cache.insert(key, input, Value::Undefined),
                Err(EvalError::Failed(_) | EvalError::Budget { .. }) => {}
            }
        }
        step
    }

    fn start_uncached(&mut self, input: Value) -> Step {
        self.context.reset();
        let segment = Segment {
            rule: self.rule.clone(),
            context: self.context.clone(),
            budget: self.budget,
        };
        budget::begin(&self.budget);
        let result = match &mut self.backend {
            Backend::Vm { vm, program, data } => {
                vm.set_input(input);
                let ran = match vm.execute_entry_point_by_name(&self.entry) {
                    Ok(result) => drive(vm, result, &self.context),
                    Err(e) => Ran::Done(Err(EvalError::from_vm(&e))),
                };
                self.prints.extend(vm.take_prints());
                match ran {
                    Ran::Done(result) => result,
                    Ran::Send(argument) => {
                        // The suspended VM goes with the request; the policy takes a new one.
                        match new_vm(program.clone(), data) {
                            Ok(mut fresh) => {
                                apply_budget(&mut fresh, &self.budget);
                                let vm = std::mem::replace(vm, Box::new(fresh));
                                return segment.suspend(vm, &argument, &mut self.prints);
                            }
                            Err(e) => Err(EvalError::Failed(e.to_string())),
                        }
                    }
                }
            }
            Backend::Interpreter(engine) => {
                engine.set_input(input);
                let result = engine
                    .eval_rule(self.entry.clone())
                    .map_err(|e| EvalError::from_interpreter(&*e, format!("{e:#}")));
                self.prints.extend(engine.take_prints().unwrap_or_default());
                result
            }
        };
        let (step, peak_bytes) = segment.finish(result);
        self.peak_bytes = peak_bytes;
        step
    }

    /// What `print` wrote during the last evaluation (`file:line: message`), in order: the
    /// filter logs it at debug level, as OPA-Envoy logs prints. A decision answered from the
    /// cache prints nothing.
    pub fn take_prints(&mut self) -> Vec<String> {
        std::mem::take(&mut self.prints)
    }

    /// The most memory the last evaluation held at once, in bytes (as the global allocator
    /// counts it: `budget::CountingAllocator`).
    pub fn last_peak_bytes(&self) -> u64 {
        self.peak_bytes
    }

    /// Keeps the bundle's decision-log mask and drop rules with the policy.
    pub fn set_log_rules(&mut self, rules: Option<crate::audit::mask::LogRules>) {
        self.log_rules = rules;
    }

    pub fn log_rules(&mut self) -> Option<&mut crate::audit::mask::LogRules> {
        self.log_rules.as_mut()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn revision(&self) -> &str {
        &self.revision
    }

    pub fn rule(&self) -> &str {
        &self.rule
    }
}

/// Where a VM's run stopped: done, or suspended at `http.send` with its argument.
enum Ran {
    Done(Result<Value, EvalError>),
    Send(Value),
}

/// Drives a VM from `result` of its last execute or resume: answers the host functions it
/// suspends at, until it is done or waits on `http.send`.
fn drive(vm: &mut RegoVM, mut result: Value, context: &EvalContext) -> Ran {
    loop {
        let answer = match vm.execution_state() {
            ExecutionState::Suspended {
                reason:
                    SuspendReason::HostAwait {
                        identifier,
                        argument,
                        ..
                    },
                ..
            } => {
                let name = match identifier {
                    Value::String(name) => name.as_ref(),
                    _ => "",
                };
                let args = match argument {
                    Value::Array(args) => args.as_slice(),
                    _ => &[],
                };
                if name == HTTP_SEND.0 {
                    return Ran::Send(args.first().cloned().unwrap_or(Value::Undefined));
                }
                match host_call(name, args, context) {
                    Ok(answer) => answer,
                    Err(gap) => return Ran::Done(Err(EvalError::Failed(gap))),
                }
            }
            ExecutionState::Suspended { .. } => Value::Undefined,
            _ => return Ran::Done(Ok(result)),
        };
        result = match vm.resume(Some(answer)) {
            Ok(result) => result,
            Err(e) => return Ran::Done(Err(EvalError::from_vm(&e))),
        };
    }
}

/// What an evaluation gives: its end, or an `http.send` callout to make first.
pub enum Step {
    Done(Result<Value, EvalError>),
    Send(Box<Pending>),
}

/// An evaluation waiting for the answer of an `http.send` callout.
pub struct Pending {
    vm: Box<RegoVM>,
    /// What to send.
    pub request: http_send::SendRequest,
    segment: Segment,
}

impl Pending {
    /// Goes on with the callout's answer: the response's headers (`:status` among them) and
    /// body, or the error that stopped it (`Err`: reset, timeout, no such cluster). What the
    /// policy `print`s meanwhile is added to `prints`.
    pub fn resume(
        self,
        answer: Result<&crate::host::CallResponse, &str>,
        prints: &mut Vec<String>,
    ) -> Step {
        let value = match answer {
            Ok((headers, body)) => {
                let response = http_send::response(&self.request, headers, body);
                if let (Ok(response), Ok(mut cache)) =
                    (&response, self.segment.context.http_cache.lock())
                {
                    let now = self.segment.context.now_ns().unsigned_abs();
                    cache.put(&self.request, headers, response, now);
                }
                response
            }
            Err(message) => http_send::network_error(&self.request, message)
                .ok_or_else(|| format!("http.send: {message}")),
        };
        // An error of the call is undefined, as OPA-Envoy's non-strict builtin errors are.
        self.segment
            .resume(self.vm, value.unwrap_or(Value::Undefined), prints)
    }
}

/// One stretch of an evaluation between suspensions, held to the policy's budget.
struct Segment {
    rule: Arc<str>,
    context: EvalContext,
    budget: Budget,
}

impl Segment {
    /// Starts the next stretch: `vm` goes on with `value` as the answer of its call.
    fn resume(self, mut vm: Box<RegoVM>, value: Value, prints: &mut Vec<String>) -> Step {
        budget::begin(&self.budget);
        let ran = match vm.resume(Some(value)) {
            Ok(result) => drive(&mut vm, result, &self.context),
            Err(e) => Ran::Done(Err(EvalError::from_vm(&e))),
        };
        prints.extend(vm.take_prints());
        match ran {
            Ran::Done(result) => self.finish(result).0,
            Ran::Send(argument) => self.suspend(vm, &argument, prints),
        }
    }

    /// Ends the stretch at an `http.send`: the request to make, or the evaluation's end when
    /// the request cannot be made here.
    fn suspend(self, vm: Box<RegoVM>, argument: &Value, prints: &mut Vec<String>) -> Step {
        let (_, exceeded) = budget::end(&self.budget);
        if let Some(exceeded) = exceeded {
            return self.finish_exceeded(exceeded);
        }
        match http_send::request(argument) {
            Ok(request) => {
                let now = self.context.now_ns().unsigned_abs();
                let kept = self
                    .context
                    .http_cache
                    .lock()
                    .ok()
                    .and_then(|mut cache| cache.get(&request, now));
                match kept {
                    Some(response) => self.resume(vm, response, prints),
                    None => Step::Send(Box::new(Pending {
                        vm,
                        request,
                        segment: self,
                    })),
                }
            }
            // OPA's own error of the call: undefined (non-strict), and the evaluation goes on.
            Err(http_send::RequestError::Opa(_)) => self.resume(vm, Value::Undefined, prints),
            Err(http_send::RequestError::Proxy(message)) => {
                Step::Done(Err(EvalError::Failed(format!("{}: {message}", self.rule))))
            }
        }
    }

    fn finish_exceeded(self, exceeded: Exceeded) -> Step {
        Step::Done(Err(EvalError::Budget {
            exceeded,
            detail: format!(
                "{}: held more than {} bytes",
                self.rule, self.budget.memory_bytes
            ),
        }))
    }

    /// Ends the evaluation: its result against the budget, and the most memory it held.
    fn finish(self, result: Result<Value, EvalError>) -> (Step, u64) {
        let (peak_bytes, exceeded) = budget::end(&self.budget);
        let result = match (exceeded, result) {
            (_, Err(EvalError::Budget { exceeded, detail })) => Err(EvalError::Budget {
                exceeded,
                detail: format!("{}: {detail}", self.rule),
            }),
            // Also when no check saw it (an error turned into undefined on the way, say):
            // an answer computed past the budget is not trusted.
            (Some(exceeded), _) => return (self.finish_exceeded(exceeded), peak_bytes),
            (None, result) => result,
        };
        let result = match result {
            Ok(Value::Undefined) => Err(EvalError::Undefined),
            other => other,
        };
        (Step::Done(result), peak_bytes)
    }
}

/// The outcome of compiling a bundle's Rego for some rules.
/// Both carry what analysing the Rego found (`reads`).
pub enum Compiled {
    Program {
        program: Arc<Program>,
        analysis: Analysis,
    },
    /// The RVM compiler refused; the reason says why and the interpreter takes over.
    Interpreter {
        engine: Box<regorus::Engine>,
        context: EvalContext,
        reason: String,
        analysis: Analysis,
        /// What to evaluate for each rule (`add_document_entries`).
        entries: Vec<String>,
    },
}

/// Parses the bundle's modules with its data and compiles `rules` into one RVM program.
/// `policy-bundler build` and bundle activation both come here.
pub fn compile(bundle: &Bundle, rules: &[&str]) -> Result<Compiled, LoadError> {
    let context = EvalContext::default();
    let mut engine = parse_with_context(bundle, &context)?;
    let entries = add_document_entries(&mut engine, rules)?;
    let mut compiled = None;
    for (rule, entry) in rules.iter().zip(&entries) {
        let policy = engine
            .compile_with_entrypoint(&entry.as_str().into())
            .map_err(|e| LoadError::Compile {
                rule: (*rule).to_string(),
                message: format!("{e:#}"),
            })?;
        compiled = Some(policy);
    }
    let rules: Vec<&str> = entries.iter().map(String::as_str).collect();
    let rules = rules.as_slice();
    let Some(policy) = compiled else {
        return Err(LoadError::Compile {
            rule: String::new(),
            message: "no decision rule to compile".into(),
        });
    };
    let analysis = reads::analyse(engine.get_modules());
    match Compiler::compile_from_policy_with_host_await(&policy, rules, &host_functions()) {
        Ok(program) => Ok(Compiled::Program { program, analysis }),
        // A function nobody implements fails in the interpreter too, on every request that
        // reaches it: refuse the bundle now, at the call site.
        Err(e) if is_missing_function(&e.to_string()) => Err(LoadError::Unsupported(
            RegoError::from_regorus("", &e.to_string()),
        )),
        Err(e) => {
            // The RVM compiler stopped before it met every call; the interpreter would fail on
            // each request that reaches one of this build's missing builtins, or `http.send`,
            // which only a compiled program can wait on.
            let mut interpreted = host_functions();
            interpreted.retain(|function| *function != HTTP_SEND);
            let unsupported =
                compile_checks::unsupported_calls(engine.get_modules(), &interpreted, rules);
            if let Some(call) = unsupported.into_iter().next() {
                let message = if call.message.contains(HTTP_SEND.0) {
                    format!(
                        "{}: http.send needs the compiled program, and the RVM compiler \
                         refuses this policy: {e}",
                        call.message
                    )
                } else {
                    call.message
                };
                return Err(LoadError::Unsupported(RegoError {
                    file: call.file,
                    line: call.line,
                    column: call.column,
                    message,
                    snippet: String::new(),
                }));
            }
            Ok(Compiled::Interpreter {
                engine: Box::new(engine),
                context,
                reason: e.to_string(),
                analysis,
                entries,
            })
        }
    }
}

/// The package of the rules the filter adds (`add_document_entries`).
const DOCUMENT_ENTRIES: &str = "zerohop__decision";

/// What to evaluate for each of `rules`: the rule itself, or, for a path that names a
/// document of rules rather than a rule (OPA-Envoy's primer builds the decision key by key:
/// `result.allowed := allow`, `result.headers := {…}` with the path `envoy/authz/result`),
/// a rule added to `engine` whose value is that document, as OPA reads it (a key two rules
/// give different values is a conflict, an evaluation error).
fn add_document_entries(
    engine: &mut regorus::Engine,
    rules: &[&str],
) -> Result<Vec<String>, LoadError> {
    let paths = compile_checks::rule_paths(engine.get_modules());
    let mut entries = Vec::with_capacity(rules.len());
    let mut added = String::new();
    for rule in rules {
        let segments = DecisionPath::parse(rule)
            .map(|p| p.segments().to_vec())
            .unwrap_or_default();
        let is_rule = paths.contains(&segments);
        let has_rules_under = paths
            .iter()
            .any(|p| p.len() > segments.len() && p.starts_with(&segments));
        if segments.is_empty() || is_rule || !has_rules_under {
            entries.push((*rule).to_string());
            continue;
        }
        let name = document_entry_name(rule);
        added.push_str(&format!("{name} := {rule}\n"));
        entries.push(format!("data.{DOCUMENT_ENTRIES}.{name}"));
    }
    if !added.is_empty() {
        engine
            .add_policy(
                format!("{DOCUMENT_ENTRIES}.rego"),
                format!("package {DOCUMENT_ENTRIES}\n\n{added}"),
            )
            .map_err(|e| LoadError::Compile {
                rule: rules.join(", "),
                message: format!("{e:#}"),
            })?;
    }
    Ok(entries)
}

/// The name of the rule `add_document_entries` adds for `rule`: the same at build and at load.
fn document_entry_name(rule: &str) -> String {
    let hex: String = rule.bytes().map(|b| format!("{b:02x}")).collect();
    format!("d{hex}")
}

/// The entry point of `program` for `rule`: the rule, or the rule that reads its document.
fn program_entry(program: &Program, rule: &str) -> String {
    if program.get_entry_point(rule).is_some() {
        rule.to_string()
    } else {
        format!("data.{DOCUMENT_ENTRIES}.{}", document_entry_name(rule))
    }
}

/// Parses the bundle's modules and loads its data into an interpreter.
pub fn parse(bundle: &Bundle) -> Result<regorus::Engine, LoadError> {
    parse_with_context(bundle, &EvalContext::default())
}

/// `parse`, with host functions that read the evaluation time and `opa.runtime` from `context`.
fn parse_with_context(
    bundle: &Bundle,
    context: &EvalContext,
) -> Result<regorus::Engine, LoadError> {
    let mut engine = regorus::Engine::new();
    // OPA-Envoy does not evaluate with strict builtin errors: a failing builtin is undefined.
    engine.set_strict_builtin_errors(false);
    for (name, arg_count) in host_functions() {
        let context = context.clone();
        let extension =
            move |args: Vec<Value>| host_call(name, &args, &context).map_err(anyhow::Error::msg);
        engine
            .add_extension(
                name.to_string(),
                u8::try_from(arg_count).unwrap_or(u8::MAX),
                Box::new(extension),
            )
            .map_err(|e| LoadError::Data(format!("{e:#}")))?;
    }
    for module in &bundle.modules {
        // regorus captures the version per module when it parses it.
        engine.set_rego_v0(module.rego_version == RegoVersion::V0);
        let package = engine
            .add_policy(module.path.clone(), module.source.clone())
            .map_err(|e| parse_error(module, e.as_ref(), &format!("{e:#}")))?;
        let data_path = package
            .trim_start_matches("data")
            .trim_start_matches('.')
            .replace('.', "/");
        bundle
            .manifest
            .check_in_roots(&data_path, &module.path)
            .map_err(|e| {
                LoadError::Rego(RegoError {
                    file: module.path.clone(),
                    line: 1,
                    column: 1,
                    message: e.to_string(),
                    snippet: String::new(),
                })
            })?;
    }
    let mut refused = compile_checks::check(engine.get_modules(), &host_functions());
    if refused.is_empty() {
        refused = opa_quirks::check(engine.get_modules(), &host_functions());
    }
    if refused.is_empty() {
        refused = http_send::refusals(engine.get_modules());
    }
    if !refused.is_empty() {
        return Err(LoadError::Refused(refused));
    }
    engine
        .add_data(bundle.data.clone())
        .map_err(|e| LoadError::Data(format!("{e:#}")))?;
    Ok(engine)
}

/// Converts a regorus column (a tab counts four) on `line` of `source` to characters.
pub fn editor_column(source: &str, line: u32, regorus_column: u32) -> u32 {
    let Some(text) = source.lines().nth(line.saturating_sub(1) as usize) else {
        return regorus_column;
    };
    let mut width = 1;
    for (index, c) in text.chars().enumerate() {
        if width >= regorus_column {
            return u32::try_from(index + 1).unwrap_or(regorus_column);
        }
        width += if c == '\t' { 4 } else { 1 };
    }
    regorus_column
}

/// A parse error of a module, as `policy-bundler check` and the filter's logs show it: a Rego
/// v0 module using a future keyword it does not import (`FutureKeywordError`) gets its own
/// code, as a refusal; any other parse error is a `rego-error`.
/// `error` is regorus's (an `anyhow::Error`), and `report` its text.
fn parse_error(
    module: &Module,
    error: &(dyn std::error::Error + 'static),
    report: &str,
) -> LoadError {
    let at = RegoError::from_regorus(&module.path, report);
    let future_keyword = std::iter::successors(Some(error), |cause| cause.source())
        .any(|cause| cause.is::<FutureKeywordError>());
    if !future_keyword {
        return LoadError::Rego(at);
    }
    LoadError::Refused(vec![compile_checks::CompileError {
        column: editor_column(&module.source, at.line, at.column),
        file: at.file,
        line: at.line,
        code: crate::codes::V0_FUTURE_KEYWORD.name,
        message: at.message,
    }])
}

/// Whether a compiler report is about a function that neither the policy nor this build's
/// builtins define (e.g. `io.jwt.decode`). The report nests the compiler's errors as text.
fn is_missing_function(report: &str) -> bool {
    [
        "Unknown function: '",
        "Unknown builtin function: ",
        "Not a builtin function: ",
    ]
    .iter()
    .any(|needle| report.contains(needle))
}

fn deserialize(bytes: &[u8], info: &ProgramInfo) -> Result<Arc<Program>, LoadError> {
    if info.regorus != REGORUS_VERSION {
        return Err(LoadError::ProgramVersion {
            found: info.regorus.clone(),
            expected: REGORUS_VERSION,
        });
    }
    match Program::deserialize_binary(bytes).map_err(LoadError::Program)? {
        DeserializationResult::Complete(program) => Ok(Arc::new(program)),
        DeserializationResult::Partial(_) => Err(LoadError::Program(
            "it needs builtins this filter does not have, or another format version".into(),
        )),
    }
}

fn vm(program: Arc<Program>, data: &Value) -> Result<Backend, LoadError> {
    Ok(Backend::Vm {
        vm: Box::new(new_vm(program.clone(), data)?),
        program,
        data: data.clone(),
    })
}

fn new_vm(program: Arc<Program>, data: &Value) -> Result<RegoVM, LoadError> {
    let mut vm = RegoVM::new();
    // Suspending costs on every instruction; only programs that call host functions need it.
    if program.has_host_await() {
        vm.set_execution_mode(ExecutionMode::Suspendable);
    }
    vm.load_program(program);
    vm.set_data(data.clone())
        .map_err(|e| LoadError::Data(e.to_string()))?;
    Ok(vm)
}

fn apply_budget(vm: &mut RegoVM, budget: &Budget) {
    vm.set_max_instructions(budget.instructions);
    vm.set_execution_timer_config(Some(budget.timer()));
}

#[cfg(test)]
mod interpreter_tests;
#[cfg(test)]
mod tests;
