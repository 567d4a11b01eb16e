//! OPA builtins regorus 0.14.1 lacks, as host functions (`crypto.*` digests and HMACs,
//! `net.cidr_intersects`, `net.cidr_contains_matches`, `net.cidr_merge`, `regex.globs_match`), with OPA v1.20's results. `Err` is OPA's builtin error, which the engine
//! turns into undefined, as OPA-Envoy (non-strict builtin errors) does.

use regorus::Value;

mod crypto;
mod glob;
mod net;

#[cfg(test)]
mod tests;

/// The functions this module provides, with their argument counts.
pub fn functions() -> impl Iterator<Item = (&'static str, usize)> {
    crypto::FUNCTIONS
        .iter()
        .chain(net::FUNCTIONS)
        .chain(glob::FUNCTIONS)
        .copied()
}

/// Calls the builtin `name` with `args`; `None` when `name` is not one of `functions()`.
pub fn call(name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let result = if name.starts_with("crypto.") {
        crypto::call(name, args)?
    } else if name.starts_with("net.") {
        net::call(name, args)?
    } else if name.starts_with("regex.") {
        glob::call(name, args)?
    } else {
        return None;
    };
    Some(result.map_err(|e| format!("{name}: {e}")))
}

/// Operand `position` (1-based, as OPA numbers them) as a string.
fn string_operand(args: &[Value], position: usize) -> Result<&str, String> {
    match args.get(position - 1) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "operand {position} must be string but got {}",
            type_name(other)
        )),
        None => Err(format!("missing operand {position}")),
    }
}

/// OPA's name of a value's type, for error messages.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    }
}
