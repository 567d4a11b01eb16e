// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.
#![allow(clippy::as_conversions)]

use crate::ast::{Expr, Ref};
use crate::builtins;
use crate::builtins::utils::{enforce_limit, ensure_args_count, ensure_int_operand, ensure_string};
use crate::lexer::Span;
use crate::value::Value;
use crate::*;

use alloc::borrow::Cow;
use alloc::sync::Arc;
use anyhow::{bail, Result};
use regex::{Regex, RegexBuilder};

// ---------------------------------------------------------------------------
// Compiled-regex cache (feature = "cache")
//
// When enabled, compiled Regex objects are stored in a bounded LRU cache
// protected by a Mutex (parking_lot when std, spin when no_std).
// The capacity is configurable at runtime
// via regorus::cache::configure().
// ---------------------------------------------------------------------------

/// Maximum compiled NFA size (in bytes) for a regex pattern.
/// This bounds both compilation time and match-time cost by limiting the
/// automaton's structural complexity. At 100 KiB, every real-world policy
/// pattern (IPv4, hostname, semver, UUID, image-digest, CIDR, etc.) compiles
/// comfortably, while adversarial patterns that would otherwise cause
/// expensive DFA construction are rejected at compile time.
const REGEX_SIZE_LIMIT: usize = 100 * 1024;

/// Whether the text after a `{` completes a repetition as Go's parser reads one: digits,
/// optionally a comma and more digits, then `}`.
fn starts_go_repeat(mut rest: impl Iterator<Item = char>) -> bool {
    let mut digits = 0;
    let mut comma = false;
    for c in rest.by_ref() {
        match c {
            '0'..='9' => digits += 1,
            ',' if !comma && digits > 0 => comma = true,
            '}' => return digits > 0,
            _ => return false,
        }
    }
    false
}

/// Compile a regex pattern with a size limit to bound resource consumption.
fn compile_regex(pattern: &str) -> core::result::Result<Regex, regex::Error> {
    RegexBuilder::new(&go_perl_classes(pattern))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// Rewrites the Perl classes of a Go (RE2) pattern to what they mean in Go: ASCII only.
/// Rust's `regex` makes `\d`, `\s`, `\w` and `\b` Unicode-aware, so `^\d+$` matched "٣" and
/// `^\w+$` matched "é" where OPA's `regex.match` answers false: a policy validating an
/// identifier with them let through values OPA refuses. Outside a bracket class `\d` becomes
/// `[0-9]`; inside one, `0-9` (negations as nested classes, which Rust accepts); `\b` and
/// `\B` become ASCII word boundaries. `\Q…\E` (quoted text) becomes escaped literals.
/// Inside a class, Go reads `[` (unless it starts `[:alpha:]`), `&&`, `~~` and `--` as
/// literal characters where Rust opens a nested class or a set operation: they are escaped.
fn go_perl_classes(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains(['\\', '{', '[']) {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let at_class_start = core::mem::take(&mut class_start);
        match c {
            '\\' => {
                let Some(escaped) = chars.next() else {
                    out.push(c);
                    break;
                };
                let ascii = match (escaped, in_class) {
                    ('d', false) => Some("[0-9]"),
                    ('d', true) => Some("0-9"),
                    ('D', _) => Some("[^0-9]"),
                    ('s', false) => Some("[\\t\\n\\x0C\\r ]"),
                    ('s', true) => Some("\\t\\n\\x0C\\r "),
                    ('S', _) => Some("[^\\t\\n\\x0C\\r ]"),
                    ('w', false) => Some("[0-9A-Za-z_]"),
                    ('w', true) => Some("0-9A-Za-z_"),
                    ('W', _) => Some("[^0-9A-Za-z_]"),
                    ('b', false) => Some("(?-u:\\b)"),
                    ('B', false) => Some("(?-u:\\B)"),
                    _ => None,
                };
                match ascii {
                    Some(ascii) => out.push_str(ascii),
                    None if escaped == 'Q' => {
                        // Literal text up to `\E` (or the end), which Rust's syntax lacks.
                        let mut quoted = String::new();
                        while let Some(q) = chars.next() {
                            if q == '\\' && chars.peek() == Some(&'E') {
                                chars.next();
                                break;
                            }
                            quoted.push(q);
                        }
                        out.push_str(&regex::escape(&quoted));
                    }
                    None => {
                        out.push(c);
                        out.push(escaped);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push(c);
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
            }
            // `[:alpha:]` inside a class.
            '[' if chars.peek() == Some(&':') => {
                out.push(c);
                while let Some(p) = chars.next() {
                    out.push(p);
                    if p == ']' {
                        break;
                    }
                }
            }
            // Go reads a `{` that does not start `{n}`, `{n,}` or `{n,m}` as a literal; Rust
            // refuses the pattern.
            '{' if !in_class && !starts_go_repeat(chars.clone()) => out.push_str("\\{"),
            // A `]` first in a class is a literal.
            ']' if in_class && !at_class_start => {
                in_class = false;
                out.push(c);
            }
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            // Never Rust's set difference: `[--a]` in Go is the range from `-` to `a`, `[+--]`
            // the range from `+` to `-`.
            '-' if in_class && chars.peek() == Some(&'-') => {
                chars.next();
                out.push_str(if at_class_start { "\\--" } else { "-\\-" });
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Compile a regex pattern, using the cache when the `cache` feature
/// is enabled and falling back to direct compilation otherwise.
fn get_or_compile_regex(pattern: &str) -> core::result::Result<Arc<Regex>, regex::Error> {
    #[cfg(feature = "cache")]
    {
        {
            let mut cache = crate::cache::REGEX_CACHE.lock();
            if let Some(re) = cache.get(pattern) {
                return Ok(Arc::clone(re));
            }
        }
        let re = Arc::new(compile_regex(pattern)?);
        {
            let mut cache = crate::cache::REGEX_CACHE.lock();
            cache.put(alloc::string::String::from(pattern), Arc::clone(&re));
            Ok(re)
        }
    }
    #[cfg(not(feature = "cache"))]
    {
        compile_regex(pattern).map(Arc::new)
    }
}

/// Compile a regex for use in a builtin function.
///
/// - `CompiledTooBig` is raised as [`LimitError::RegexSizeLimitExceeded`] so
///   that it propagates as a hard error even in non-strict mode.
/// - A pattern needing the Unicode tables this build leaves out stops the evaluation
///   ([`builtins::EngineGapError`]): OPA matches it.
/// - Other syntax errors produce a span-attached "invalid regex" error that the
///   evaluator may swallow to `Undefined` in non-strict mode (OPA-compatible).
fn compile_regex_for_builtin(span: &Span, pattern: &str) -> Result<Arc<Regex>> {
    get_or_compile_regex(pattern).map_err(|e| match e {
        regex::Error::CompiledTooBig(_) => {
            anyhow::Error::new(crate::utils::limits::LimitError::RegexSizeLimitExceeded {
                limit: REGEX_SIZE_LIMIT,
            })
        }
        // Rust's parser names the Unicode tables this build leaves out; OPA has them.
        e if e.to_string().contains("Unicode") => {
            anyhow::Error::new(builtins::EngineGapError::unicode_regex(pattern))
        }
        _ => anyhow::anyhow!(span.error("invalid regex")),
    })
}

pub fn register(m: &mut builtins::BuiltinsMap<&'static str, builtins::BuiltinFcn>) {
    m.insert(
        "regex.find_all_string_submatch_n",
        (find_all_string_submatch_n, 3),
    );
    m.insert("regex.find_n", (find_n, 3));
    // TODO: m.insert("regex.globs_match", (globs_match, 2));
    m.insert("regex.is_valid", (is_valid, 1));
    m.insert("regex.match", (regex_match, 2));
    m.insert("regex.replace", (regex_replace, 3));
    m.insert("regex.split", (regex_split, 2));
    m.insert("regex.template_match", (regex_template_match, 4));
}

fn find_all_string_submatch_n(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "regex.find_all_string_submatch_n";
    ensure_args_count(span, name, params, args, 3)?;

    let pattern = ensure_string(name, &params[0], &args[0])?;
    let value = ensure_string(name, &params[1], &args[1])?;
    let n = ensure_int_operand(name, &params[2], &args[2])?;

    let re = compile_regex_for_builtin(params[0].span(), &pattern)?;

    // A negative count means every match.
    let n = usize::try_from(n).unwrap_or(usize::MAX);

    Ok(Value::from_array(
        re.captures_iter(&value)
            .map(|capture| {
                let groups = capture
                    .iter()
                    .map(|group| {
                        let value = Value::String(match group {
                            Some(s) => s.as_str().into(),
                            _ => "".into(),
                        });
                        // Guard match accumulation while adding each capture group.
                        enforce_limit()?;
                        Ok(value)
                    })
                    .collect::<Result<Vec<Value>>>()?;
                let array = Value::from_array(groups);
                // Guard outer match accumulation as nested arrays grow.
                enforce_limit()?;
                Ok(array)
            })
            .take(n)
            .collect::<Result<Vec<Value>>>()?,
    ))
}

fn find_n(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "regex.find_n";
    ensure_args_count(span, name, params, args, 3)?;

    let pattern = ensure_string(name, &params[0], &args[0])?;
    let value = ensure_string(name, &params[1], &args[1])?;
    let n = ensure_int_operand(name, &params[2], &args[2])?;

    let re = compile_regex_for_builtin(params[0].span(), &pattern)?;

    // A negative count means every match.
    let n = usize::try_from(n).unwrap_or(usize::MAX);

    Ok(Value::from_array(
        re.find_iter(&value)
            .map(|m| {
                let value = Value::String(m.as_str().into());
                // Guard match accumulation while pushing each substring.
                enforce_limit()?;
                Ok(value)
            })
            .take(n)
            .collect::<Result<Vec<Value>>>()?,
    ))
}

fn is_valid(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "regex.is_valid";
    ensure_args_count(span, name, params, args, 1)?;
    let pattern = match ensure_string(name, &params[0], &args[0]) {
        Ok(p) => p,
        Err(_) => return Ok(Value::Bool(false)),
    };
    match get_or_compile_regex(&pattern) {
        Ok(_) => Ok(Value::Bool(true)),
        // Size-limit exceeded is a resource-limit violation; propagate as hard error.
        Err(regex::Error::CompiledTooBig(_)) => Err(anyhow::Error::new(
            crate::utils::limits::LimitError::RegexSizeLimitExceeded {
                limit: REGEX_SIZE_LIMIT,
            },
        )),
        // Syntax errors mean the pattern is genuinely invalid.
        Err(_) => Ok(Value::Bool(false)),
    }
}

pub fn regex_match(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "regex.match";
    ensure_args_count(span, name, params, args, 2)?;
    let pattern = ensure_string(name, &params[0], &args[0])?;
    let value = ensure_string(name, &params[1], &args[1])?;

    let re = compile_regex_for_builtin(params[0].span(), &pattern)?;
    Ok(Value::Bool(re.is_match(&value)))
}

fn regex_replace(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "regex.replace";
    ensure_args_count(span, name, params, args, 3)?;

    let s = ensure_string(name, &params[0], &args[0])?;
    let pattern = ensure_string(name, &params[1], &args[1])?;
    let value = ensure_string(name, &params[2], &args[2])?;

    let re = match get_or_compile_regex(&pattern) {
        Ok(p) => p,
        Err(regex::Error::CompiledTooBig(_)) => {
            return Err(anyhow::Error::new(
                crate::utils::limits::LimitError::RegexSizeLimitExceeded {
                    limit: REGEX_SIZE_LIMIT,
                },
            ));
        }
        // TODO: This behavior is due to OPA test not raising error. Should we raise error?
        _ => return Ok(Value::Undefined),
    };

    Ok(Value::String(re.replace_all(&s, value.as_ref()).into()))
}

fn regex_split(span: &Span, params: &[Ref<Expr>], args: &[Value], _strict: bool) -> Result<Value> {
    let name = "regex.split";
    ensure_args_count(span, name, params, args, 2)?;
    let pattern = ensure_string(name, &params[0], &args[0])?;
    let value = ensure_string(name, &params[1], &args[1])?;

    let re = compile_regex_for_builtin(params[0].span(), &pattern)?;
    // Go's `regexp.Split(s, -1)` (OPA's): an empty match at the start gives no empty first
    // piece, the end gives no empty last piece (`regex.split("", "bob")` is `["b", "o", "b"]`),
    // and an empty value is `[""]` unless the pattern is empty too.
    if !pattern.is_empty() && value.is_empty() {
        return Ok(Value::from_array(vec![Value::String("".into())]));
    }
    let value: &str = value.as_ref();
    let mut pieces = Vec::new();
    let (mut begin, mut end) = (0, 0);
    for found in re.find_iter(value) {
        end = found.start();
        if found.end() != 0 {
            pieces.push(Value::String(value[begin..end].into()));
            // Guard output accumulation as each split segment is emitted.
            enforce_limit()?;
        }
        begin = found.end();
    }
    if end != value.len() {
        pieces.push(Value::String(value[begin..].into()));
    }
    Ok(Value::from_array(pieces))
}

// As OPA (a template compiler forked from gorilla/mux): each top-level `start…end` span of the
// template is a regular expression, the text between spans is literal, and the whole value must
// match `^literal(pattern)literal…$`. Delimiters are one byte each; nested delimiters inside a
// pattern are counted, unbalanced ones are an error.
fn regex_template_match(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    _strict: bool,
) -> Result<Value> {
    let name = "regex.template_match";
    ensure_args_count(span, name, params, args, 4)?;
    let template = ensure_string(name, &params[0], &args[0])?;
    let value = ensure_string(name, &params[1], &args[1])?;
    let delimiter_start = ensure_string(name, &params[2], &args[2])?;
    let delimiter_end = ensure_string(name, &params[3], &args[3])?;

    let (&[start], &[end]) = (delimiter_start.as_bytes(), delimiter_end.as_bytes()) else {
        bail!(params[2].span().error("delimiters have to be exactly one byte long"));
    };
    let template = template.as_ref();
    let mut pattern = String::from("^");
    let mut literal_from = 0;
    let mut level = 0usize;
    let mut span_from = 0;
    for (i, byte) in template.bytes().enumerate() {
        if byte == start {
            level += 1;
            if level == 1 {
                span_from = i;
            }
        } else if byte == end {
            let Some(down) = level.checked_sub(1) else {
                bail!(params[0].span().error("unbalanced delimiters in template"));
            };
            level = down;
            if level == 0 {
                // Both ends are ASCII bytes, so these are character boundaries.
                let (Some(literal), Some(inner)) = (
                    template.get(literal_from..span_from),
                    template.get(span_from + 1..i),
                ) else {
                    bail!(params[0].span().error("invalid template"));
                };
                // Each pattern must be a valid expression on its own, as in OPA.
                compile_regex_for_builtin(params[0].span(), &format!("^{inner}$"))?;
                pattern.push_str(&go_quote_meta(literal));
                pattern.push('(');
                pattern.push_str(inner);
                pattern.push(')');
                literal_from = i + 1;
            }
        }
    }
    if level != 0 {
        bail!(params[0].span().error("unbalanced delimiters in template"));
    }
    pattern.push_str(&go_quote_meta(template.get(literal_from..).unwrap_or_default()));
    pattern.push('$');
    let re = compile_regex_for_builtin(params[0].span(), &pattern)?;
    Ok(Value::Bool(re.is_match(value.as_ref())))
}

/// Go's `regexp.QuoteMeta`: escapes exactly `\.+*?()|[]{}^$`.
fn go_quote_meta(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted
}
