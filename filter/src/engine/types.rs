//! Types of Rego values as OPA's type checker knows them before evaluation, for the compile
//! checks: what OPA refuses as `rego_type_error` is found by the same rules of unification.
//! A type here may be wider than the one OPA infers (never narrower), so that a program OPA
//! accepts is never refused: whatever is not known is `any`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Ty {
    Null,
    Boolean,
    Number,
    String,
    /// Items at known positions, then items of one type (`array<a, b>[c]`).
    Array {
        items: Vec<Ty>,
        rest: Option<Box<Ty>>,
    },
    /// Values at known string keys, then keys and values of one type each.
    Object {
        fields: Vec<(String, Ty)>,
        rest: Option<Box<(Ty, Ty)>>,
    },
    Set(Box<Ty>),
    /// One of these; none: any value.
    Any(Vec<Ty>),
}

// Kinds of value, as bits (as in `signatures`).
pub(super) const NULL: u8 = 1;
pub(super) const BOOLEAN: u8 = 2;
pub(super) const NUMBER: u8 = 4;
pub(super) const STRING: u8 = 8;
pub(super) const ARRAY: u8 = 16;
pub(super) const SET: u8 = 32;
pub(super) const OBJECT: u8 = 64;
pub(super) const ANY: u8 = 127;

impl Ty {
    pub(super) const ANY: Ty = Ty::Any(Vec::new());

    pub(super) fn array_of(item: Ty) -> Ty {
        Ty::Array {
            items: Vec::new(),
            rest: Some(Box::new(item)),
        }
    }

    pub(super) fn object_of(key: Ty, value: Ty) -> Ty {
        Ty::Object {
            fields: Vec::new(),
            rest: Some(Box::new((key, value))),
        }
    }

    pub(super) fn is_any(&self) -> bool {
        matches!(self, Ty::Any(of) if of.is_empty())
    }

    /// The kinds of value the type admits, as bits.
    pub(super) fn kinds(&self) -> u8 {
        match self {
            Ty::Null => NULL,
            Ty::Boolean => BOOLEAN,
            Ty::Number => NUMBER,
            Ty::String => STRING,
            Ty::Array { .. } => ARRAY,
            Ty::Set(_) => SET,
            Ty::Object { .. } => OBJECT,
            Ty::Any(of) if of.is_empty() => ANY,
            Ty::Any(of) => of.iter().fold(0, |k, t| k | t.kinds()),
        }
    }

    /// The type of values either of `a` or of `b`.
    pub(super) fn or(a: Ty, b: Ty) -> Ty {
        if a.is_any() || b.is_any() {
            return Ty::ANY;
        }
        let mut of = Vec::new();
        for t in [a, b] {
            match t {
                Ty::Any(members) => of.extend(members),
                t => of.push(t),
            }
        }
        of.sort();
        of.dedup();
        if of.len() == 1 {
            of.pop().unwrap_or(Ty::ANY)
        } else {
            Ty::Any(of)
        }
    }

    /// The type of the item at `index` of an array, if it may have one.
    fn select_index(&self, index: usize) -> Option<&Ty> {
        match self {
            Ty::Array { items, rest } => items.get(index).or(rest.as_deref()),
            _ => None,
        }
    }

    /// The type of the value at string key `key` of an object, if it may have one.
    pub(super) fn select_key(&self, key: &str) -> Option<&Ty> {
        match self {
            Ty::Object { fields, rest } => fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .or_else(|| {
                    rest.as_deref()
                        .filter(|(k, _)| k.is_any() || k.kinds() & STRING != 0)
                        .map(|(_, v)| v)
                }),
            _ => None,
        }
    }

    /// The type of a reference's next step with constant key `key`, or `any` when unknown.
    pub(super) fn select(&self, key: &Key) -> Ty {
        let found = match (self, key) {
            (Ty::Array { .. }, Key::Index(i)) => self.select_index(*i).cloned(),
            (Ty::Object { .. }, Key::Field(k)) => self.select_key(k).cloned(),
            _ => None,
        };
        found.unwrap_or(Ty::ANY)
    }

    /// The type of the values a collection enumerates (`any` if unknown).
    pub(super) fn values(&self) -> Ty {
        match self {
            Ty::Array { items, rest } => items
                .iter()
                .cloned()
                .chain(rest.as_deref().cloned())
                .reduce(Ty::or)
                .unwrap_or(Ty::ANY),
            Ty::Set(of) => (**of).clone(),
            Ty::Object { fields, rest } => fields
                .iter()
                .map(|(_, v)| v.clone())
                .chain(rest.as_deref().map(|(_, v)| v.clone()))
                .reduce(Ty::or)
                .unwrap_or(Ty::ANY),
            _ => Ty::ANY,
        }
    }

    /// The type of the keys a collection enumerates (`any` if unknown).
    pub(super) fn keys(&self) -> Ty {
        match self {
            Ty::Array { .. } => Ty::Number,
            Ty::Set(of) => (**of).clone(),
            Ty::Object { fields, rest } => {
                let fixed = (!fields.is_empty()).then_some(Ty::String);
                fixed
                    .into_iter()
                    .chain(rest.as_deref().map(|(k, _)| k.clone()))
                    .reduce(Ty::or)
                    .unwrap_or(Ty::ANY)
            }
            _ => Ty::ANY,
        }
    }
}

/// A constant key in a reference.
pub(super) enum Key {
    Index(usize),
    Field(String),
    Other,
}

/// Whether a value of type `a` may equal one of type `b`, as OPA's type checker decides
/// (`unifies` in its check.go).
pub(super) fn unifies(a: &Ty, b: &Ty) -> bool {
    if let Ty::Any(of) = a {
        if of.is_empty() || of.iter().any(|t| unifies(t, b)) {
            return true;
        }
    }
    if let Ty::Any(of) = b {
        if of.is_empty() || of.iter().any(|t| unifies(a, t)) {
            return true;
        }
    }
    match (a, b) {
        (Ty::Any(_), _) | (_, Ty::Any(_)) => false,
        (Ty::Null, Ty::Null)
        | (Ty::Boolean, Ty::Boolean)
        | (Ty::Number, Ty::Number)
        | (Ty::String, Ty::String) => true,
        (Ty::Array { rest: ra, .. }, Ty::Array { rest: rb, .. }) => {
            arrays_static(a, b)
                && arrays_static(b, a)
                && match (ra, rb) {
                    (Some(x), Some(y)) => unifies(x, y),
                    _ => true,
                }
        }
        (Ty::Object { rest: ra, .. }, Ty::Object { rest: rb, .. }) => {
            objects_static(a, b)
                && objects_static(b, a)
                && match (ra, rb) {
                    (Some(x), Some(y)) => unifies(&x.1, &y.1),
                    _ => true,
                }
        }
        (Ty::Set(x), Ty::Set(y)) => unifies(x, y),
        _ => false,
    }
}

fn arrays_static(a: &Ty, b: &Ty) -> bool {
    let Ty::Array { items, .. } = a else {
        return false;
    };
    (0..items.len()).all(|i| match (a.select_index(i), b.select_index(i)) {
        (Some(x), Some(y)) => unifies(x, y),
        _ => false,
    })
}

fn objects_static(a: &Ty, b: &Ty) -> bool {
    let Ty::Object { fields, .. } = a else {
        return false;
    };
    // A key the other type may lack is let through: OPA accepts an object without the
    // optional keys a builtin names (`json.marshal_with_options(x, {"a": 1})`).
    fields.iter().all(|(key, value)| {
        let other = match b {
            Ty::Object { fields, rest } => fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                // Keys of a type wider than OPA's may hold no strings to OPA.
                .or_else(|| {
                    rest.as_deref()
                        .filter(|(k, _)| *k == Ty::String)
                        .map(|(_, v)| v)
                }),
            _ => None,
        };
        other.is_none_or(|other| unifies(value, other))
    })
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, items: &[Ty]) -> fmt::Result {
            for (i, t) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{t}")?;
            }
            Ok(())
        }
        match self {
            Ty::Null => f.write_str("null"),
            Ty::Boolean => f.write_str("boolean"),
            Ty::Number => f.write_str("number"),
            Ty::String => f.write_str("string"),
            Ty::Array { items, rest } => {
                f.write_str("array")?;
                if !items.is_empty() {
                    f.write_str("<")?;
                    list(f, items)?;
                    f.write_str(">")?;
                }
                if let Some(rest) = rest {
                    write!(f, "[{rest}]")?;
                }
                Ok(())
            }
            Ty::Set(of) => write!(f, "set[{of}]"),
            Ty::Object { fields, rest } => {
                f.write_str("object")?;
                if !fields.is_empty() {
                    f.write_str("<")?;
                    for (i, (k, v)) in fields.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{k}: {v}")?;
                    }
                    f.write_str(">")?;
                }
                if let Some(rest) = rest {
                    write!(f, "[{}: {}]", rest.0, rest.1)?;
                }
                Ok(())
            }
            Ty::Any(of) if of.is_empty() => f.write_str("any"),
            Ty::Any(of) => {
                f.write_str("any<")?;
                list(f, of)?;
                f.write_str(">")
            }
        }
    }
}

/// Parses OPA's text of a type (`any<array[number], set[number]>`), as its error messages
/// and `signatures` write it; `None` for text it does not know.
pub(super) fn parse(text: &str) -> Option<Ty> {
    let mut parser = TypeText { text, at: 0 };
    let ty = parser.ty()?;
    parser.space();
    (parser.at == text.len()).then_some(ty)
}

/// The parameter types of a signature's `want` text (`x: string, y: any<…>`), names dropped.
pub(super) fn parse_params(text: &str) -> Option<Vec<Ty>> {
    split_top(text)
        .into_iter()
        .map(|param| {
            let ty = top_colon(param).map_or(param, |at| &param[at + 1..]);
            parse(ty.trim())
        })
        .collect()
}

/// Splits at the commas outside brackets.
fn split_top(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '<' | '[' | '(' => depth += 1,
            '>' | ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !text[start..].trim().is_empty() {
        parts.push(text[start..].trim());
    }
    parts
}

/// The position of the first `:` outside brackets (a parameter's name ends there).
fn top_colon(text: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in text.char_indices() {
        match c {
            '<' | '[' | '(' => depth += 1,
            '>' | ']' | ')' => depth -= 1,
            ':' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

struct TypeText<'t> {
    text: &'t str,
    at: usize,
}

impl TypeText<'_> {
    fn space(&mut self) {
        while self.text[self.at..].starts_with(' ') {
            self.at += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.space();
        if self.text[self.at..].starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> &str {
        self.space();
        let rest = &self.text[self.at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.at += len;
        &rest[..len]
    }

    fn list(&mut self, close: &str) -> Option<Vec<Ty>> {
        let mut items = vec![self.ty()?];
        while self.eat(",") {
            items.push(self.ty()?);
        }
        self.eat(close).then_some(items)
    }

    fn ty(&mut self) -> Option<Ty> {
        match self.word() {
            "null" => Some(Ty::Null),
            "boolean" => Some(Ty::Boolean),
            "number" => Some(Ty::Number),
            "string" => Some(Ty::String),
            "any" => {
                if !self.eat("<") {
                    return Some(Ty::ANY);
                }
                let of = self.list(">")?;
                Some(of.into_iter().reduce(Ty::or).unwrap_or(Ty::ANY))
            }
            "array" => {
                let items = if self.eat("<") {
                    self.list(">")?
                } else {
                    Vec::new()
                };
                let rest = if self.eat("[") {
                    let t = self.ty()?;
                    self.eat("]").then_some(())?;
                    Some(Box::new(t))
                } else {
                    None
                };
                Some(Ty::Array { items, rest })
            }
            "set" => {
                self.eat("[").then_some(())?;
                let of = self.ty()?;
                self.eat("]").then_some(Ty::Set(Box::new(of)))
            }
            "object" => {
                let mut fields = Vec::new();
                if self.eat("<") {
                    loop {
                        let key = self.word().to_string();
                        self.eat(":").then_some(())?;
                        fields.push((key, self.ty()?));
                        if !self.eat(",") {
                            break;
                        }
                    }
                    self.eat(">").then_some(())?;
                }
                let rest = if self.eat("[") {
                    let key = self.ty()?;
                    self.eat(":").then_some(())?;
                    let value = self.ty()?;
                    self.eat("]").then_some(())?;
                    Some(Box::new((key, value)))
                } else {
                    None
                };
                Some(Ty::Object { fields, rest })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_texts_parse() {
        for (name, _, _, want, result) in super::super::signatures::SIGNATURES {
            assert!(parse_params(want).is_some(), "{name}: {want}");
            assert!(parse(result).is_some(), "{name}: {result}");
        }
    }

    #[test]
    fn unification_follows_opa() {
        let t = |s: &str| parse(s).unwrap();
        let numbers = t("any<array[number], set[number]>");
        assert!(!unifies(&t("array<string, string>"), &numbers));
        assert!(unifies(&t("array<number, number>"), &numbers));
        assert!(unifies(&t("array[any]"), &numbers));
        assert!(unifies(&t("any"), &t("string")));
        assert!(!unifies(&t("set[string]"), &numbers));
        assert!(!unifies(&t("array<number>"), &t("array<number, number>")));
        assert!(unifies(&t("object<a: number>"), &t("object[string: any]")));
        assert!(!unifies(&t("object<a: number>"), &t("object<a: string>")));
        assert_eq!(
            t("any<number, array<number, string>>").to_string(),
            "any<number, array<number, string>>"
        );
    }
}
