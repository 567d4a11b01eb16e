//! Every stable code the filter and `policy-bundler` report, in one place: the outcome of a
//! request (logs), why a bundle or a fetch was rejected (logs, `zerohop.bundle.failures.<code>`
//! stats, the CLI's JSON output), why an evaluation was stopped, and what OPA's compiler
//! refuses. Users match on these: a code is never reused for another cause, and once released
//! it keeps its name. A leaf: the modules that report codes take them from here.

/// One code and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// Kebab-case, unique across the whole table.
    pub name: &'static str,
    pub description: &'static str,
}

macro_rules! codes {
    ($($(#[$doc:meta])* $id:ident = $name:literal: $description:literal;)*) => {
        $($(#[$doc])* pub const $id: Code = Code { name: $name, description: $description };)*
        /// All codes, for documentation and the uniqueness test.
        pub const ALL: &[Code] = &[$($id),*];
    };
}

codes! {
    // What a request got (`request::decision::Reason`).
    ALLOWED = "allowed": "the policy allowed the request";
    DENIED = "denied": "the policy denied the request";
    REQUEST_PARSE_ERROR = "request-parse-error": "the path, query or body cannot be parsed as OPA-Envoy parses it: 400";
    NO_BUNDLE = "no-bundle": "no policy is active: 503, or let through with fail_open";
    UNDEFINED_DECISION = "undefined-decision": "the decision rule is undefined for the input: status_on_error";
    EVALUATION_ERROR = "evaluation-error": "the evaluation failed (a conflict, a budget, the host): status_on_error";
    INVALID_DECISION = "invalid-decision": "the decision is not in OPA-Envoy's format: status_on_error";

    // Why an evaluation was stopped (`engine::budget::Exceeded`).
    MEMORY_BUDGET_EXCEEDED = "memory-budget-exceeded": "the evaluation held more memory than max_eval_memory_bytes";
    WORK_BUDGET_EXCEEDED = "work-budget-exceeded": "the evaluation did more work than max_eval_instructions";
    TIME_BUDGET_EXCEEDED = "time-budget-exceeded": "the evaluation ran longer than max_eval_time_ms";

    // Why a bundle could not be read (`bundle::BundleError`).
    NOT_GZIP = "not-gzip": "the bundle is not a gzip stream";
    NOT_TAR = "not-tar": "the bundle is not a tar archive";
    BAD_ENTRY = "bad-entry": "a tar entry that is not a regular file or has an unsafe path";
    DUPLICATE_ENTRY = "duplicate-entry": "the bundle holds a path twice";
    TOO_LARGE = "too-large": "the bundle is larger uncompressed than bundle.size_limit_bytes";
    TOO_MANY_FILES = "too-many-files": "the bundle holds more files than allowed";
    BAD_MANIFEST = "bad-manifest": "the .manifest is not valid";
    BAD_DATA = "bad-data": "a data.json or data.yaml file does not parse";
    OUTSIDE_ROOTS = "outside-roots": "a file lies outside the manifest's roots";
    NOT_UTF8 = "not-utf8": "a Rego or data file is not UTF-8";

    // Why a bundle's signature was refused (`bundle::signature::SignatureError`).
    MISSING_SIGNATURE = "missing-signature": "signing is configured and the bundle has no .signatures.json";
    NO_VERIFICATION_KEY = "no-verification-key": "the bundle is signed and no signing keys are configured";
    BAD_SIGNATURES_FILE = "bad-signatures-file": ".signatures.json is not what OPA writes";
    UNKNOWN_KEY = "unknown-key": "the signature names no key id, or one that is not configured";
    BAD_SIGNATURE = "bad-signature": "the signature does not verify with the key";
    SCOPE_MISMATCH = "scope-mismatch": "the signature's scope is not the configured one";
    UNSIGNED_FILE = "unsigned-file": "a file of the bundle is not listed in the signature";
    BAD_FILE_HASH = "bad-file-hash": "a signed file's hash entry is malformed or uses an unknown algorithm";
    HASH_MISMATCH = "hash-mismatch": "a file's content does not match its signed hash";
    MISSING_FILE = "missing-file": "the signature lists a file the bundle does not hold";

    // Why a bundle could not become a policy (`engine::LoadError`).
    REGO_ERROR = "rego-error": "a module does not parse or compile";
    UNSUPPORTED_FUNCTION = "unsupported-function": "a module calls a builtin this filter does not have";
    DATA_LOAD_ERROR = "data-load-error": "the engine refuses the bundle's data (e.g. it conflicts with rules)";
    COMPILE_ERROR = "compile-error": "the decision rule cannot be compiled";
    PROGRAM_VERSION = "program-version": "the precompiled program was built for another regorus version";
    BAD_PROGRAM = "bad-program": "the precompiled program cannot be read";

    // What OPA's compiler refuses (`engine::compile_checks`).
    UNSAFE_VAR = "unsafe-var": "a variable no positive expression binds (rego_unsafe_var_error)";
    UNUSED_DECLARED_VAR = "unused-declared-var": "a some/every variable that is never used";
    VAR_ASSIGNED_ABOVE = "var-assigned-above": ":= to a variable assigned before";
    VAR_DECLARED_ABOVE = "var-declared-above": ":= to a variable declared before";
    VAR_REFERENCED_ABOVE = "var-referenced-above": ":= to a variable used before";
    ARG_REDECLARED = "arg-redeclared": ":= to a function argument";
    CANNOT_ASSIGN = "cannot-assign": ":= to something that is not a variable";
    ILLEGAL_DEFAULT = "illegal-default": "a default value that is not a constant (rego_parse_error)";
    ILLEGAL_ELSE = "illegal-else": "else on a rule with variables in its head (rego_parse_error)";
    RECURSION = "recursion": "a rule that depends on itself (rego_recursion_error)";
    BUILTIN_ARITY = "builtin-arity": "a builtin called with the wrong number of arguments";
    BUILTIN_TYPE = "builtin-type": "a builtin or operator given an operand of the wrong type";
    UNDEFINED_FUNCTION = "undefined-function": "a call to a function nobody defines";
    DEPRECATED_BUILTIN = "deprecated-builtin": "a builtin Rego v1 dropped";
    V0_FUTURE_KEYWORD = "v0-future-keyword": "`if`, `contains`, `in` or `every` in a Rego v0 module that does not import it";
    MULTIPLE_DEFAULTS = "multiple-defaults": "two default rules for one name";
    CONFLICTING_RULES = "conflicting-rules": "rules of one name with different kinds or arities";
    FUNCTION_NOT_CALLED = "function-not-called": "a function referred to without a call";
    FUNCTION_NAMED_EQUAL = "function-named-equal": "a function of the policy named `equal`, OPA's name of `==`, which the engine reads as the builtin (`engine::opa_quirks`)";
    NEGATED_TRUE = "negated-true": "a rule or function whose only condition is `not true`, which OPA evaluates against its own rules (`engine::opa_quirks`)";
    HTTP_SEND_OPTION = "http-send-option": "an `http.send` request with an option a proxy cannot carry out (certificates and keys from files; `engine::http_send`)";
    OPA_COMPREHENSION_INDEX = "opa-comprehension-index": "a comprehension whose body reads a variable of the enclosing body in a call or comparison before binding it, which OPA v1.20 indexes and then fails with an internal error (`engine::opa_quirks`)";
    FUNCTION_ARITY = "function-arity": "a function of the policy called with the wrong number of arguments";
    FUNCTION_TYPE = "function-type": "a function of the policy given an argument of the wrong type";
    MATCH_ERROR = "match-error": "`=` or `==` between values whose types cannot be equal";
    UNDEFINED_REF = "undefined-ref": "a reference into a value that has no such key or no keys";

    // Why a fetch from the bundle service failed (`live::poll::FetchError`).
    FETCH_FAILED = "fetch-failed": "the bundle server could not be reached or never answered";
    HTTP_STATUS = "http-status": "the bundle server answered a status other than 200 and 304";
    REGISTRY_AUTH = "registry-auth": "the OCI registry refused access: a 401 without a usable bearer challenge, a token service that failed, or a token refused";
    REGISTRY_MANIFEST = "registry-manifest": "the OCI registry's manifest is not an image with exactly one bundle layer (application/vnd.oci.image.layer.v1.tar+gzip)";
    LAYER_DIGEST_MISMATCH = "layer-digest-mismatch": "the bundle layer the OCI registry sent does not match the digest in the manifest";
    EMPTY_BODY = "empty-body": "the bundle server answered 200 with no body";
    DOWNLOAD_TOO_LARGE = "download-too-large": "the download is larger than bundle.size_limit_bytes";
    UNEXPECTED_NOT_MODIFIED = "unexpected-not-modified": "the bundle server answered 304 to a request that named no ETag";

    // policy-bundler's lints.
    WITH_KEYWORD = "with-keyword": "a with modifier: the RVM compiler lacks it, so decisions that reach it run on the interpreter";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_and_described() {
        let mut names: Vec<&str> = ALL.iter().map(|c| c.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a code names two causes");
        for code in ALL {
            assert!(
                code.name.split('-').all(|w| !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())),
                "{code:?}"
            );
            assert!(!code.description.is_empty(), "{code:?}");
        }
    }

    /// Each names one cause (each was the code of two before).
    #[test]
    fn size_limits_and_data_failures_have_a_code_each() {
        use crate::bundle::BundleError;
        use crate::engine::LoadError;
        use crate::live::poll::FetchError;
        assert_eq!(BundleError::TooLarge { limit: 1 }.code(), "too-large");
        assert_eq!(
            FetchError::TooLarge { limit: 1 }.code(),
            "download-too-large"
        );
        let data = BundleError::Data {
            path: "data.json".into(),
            message: "not JSON".into(),
        };
        assert_eq!(data.code(), "bad-data");
        assert_eq!(LoadError::Data("conflict".into()).code(), "data-load-error");
    }
}
