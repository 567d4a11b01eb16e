//! `regex.globs_match` (OPA `v1/topdown/regex.go`): whether two patterns of a small regular
//! language (characters, `.`, `[…]` sets with ranges, `+` and `*` after a token, `\` escapes)
//! match a common non-empty string, answered as OPA answers it: with the heuristics of
//! `github.com/yashtewari/glob-intersection` v0.2.0 (`NonEmpty`), which are not an exact
//! intersection test, so they are followed step by step.

use std::collections::BTreeSet;

use regorus::Value;

use super::string_operand;

pub const FUNCTIONS: &[(&str, usize)] = &[("regex.globs_match", 2)];

pub fn call(name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    if name != "regex.globs_match" {
        return None;
    }
    let result = (|| {
        let lhs = glob(string_operand(args, 1)?)?;
        let rhs = glob(string_operand(args, 2)?)?;
        Ok(Value::from(non_empty(&lhs, &rhs)))
    })();
    Some(result)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flag {
    None,
    Plus,
    Star,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Character(char),
    Dot,
    Set(BTreeSet<char>),
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    flag: Flag,
}

const INVALID: &str = "the input provided is invalid";

/// The pattern's tokens, as the library's `NewGlob`: tokenized, then runs of the same token
/// with flags joined (`a*a+` is `a+`).
fn glob(text: &str) -> Result<Vec<Token>, String> {
    let input: Vec<char> = text.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    let mut index = 0;
    while index < input.len() {
        let (next, token) = next_token(index, &input)?;
        index = next;
        // Simplify: a flagged token equal to the flagged one before it joins it.
        match tokens.last_mut() {
            Some(last)
                if token.flag != Flag::None
                    && last.flag != Flag::None
                    && last.kind == token.kind =>
            {
                if token.flag == Flag::Plus || last.flag == Flag::Plus {
                    last.flag = Flag::Plus;
                } else {
                    last.flag = Flag::Star;
                }
            }
            _ => tokens.push(token),
        }
    }
    Ok(tokens)
}

/// The character at `index` (after a `\`, escaped), and where the next one starts; `None` at
/// the end.
fn next_char(index: usize, input: &[char]) -> Result<Option<(usize, char, bool)>, String> {
    match input.get(index) {
        None => Ok(None),
        Some('\\') => match input.get(index + 1) {
            Some(&c) => Ok(Some((index + 2, c, true))),
            None => Err(format!(
                "{INVALID}: input ends with a \\ (escape) character"
            )),
        },
        Some(&c) => Ok(Some((index + 1, c, false))),
    }
}

fn next_token(index: usize, input: &[char]) -> Result<(usize, Token), String> {
    let Some((mut next, c, escaped)) = next_char(index, input)? else {
        return Err(INVALID.into());
    };
    let kind = match (c, escaped) {
        ('.', false) => Kind::Dot,
        ('[', false) => {
            let (after, set) = next_set(next, input)?;
            next = after;
            Kind::Set(set)
        }
        (']', false) => return Err(format!("{INVALID}: set-close ']' with no preceding '['")),
        ('+' | '*', false) => {
            return Err(format!(
                "{INVALID}: flag '{c}' must be preceded by a non-flag"
            ))
        }
        _ => Kind::Character(c),
    };
    let flag = match next_char(next, input)? {
        Some((after, '+', false)) => {
            next = after;
            Flag::Plus
        }
        Some((after, '*', false)) => {
            next = after;
            Flag::Star
        }
        _ => Flag::None,
    };
    Ok((next, Token { kind, flag }))
}

/// The characters of a `[…]` set whose `[` ends before `index`, and where the next token
/// starts.
fn next_set(index: usize, input: &[char]) -> Result<(usize, BTreeSet<char>), String> {
    let mut set = BTreeSet::new();
    let mut previous: Option<char> = None;
    let mut index = index;
    while let Some((next, c, escaped)) = next_char(index, input)? {
        index = next;
        match (c, escaped) {
            ('-', false) => {
                let Some(low) = previous else {
                    return Err(format!(
                        "{INVALID}: range character '-' must be preceded by a Unicode character"
                    ));
                };
                // As the library: the range needs a character and one more after it.
                if index + 1 >= input.len() {
                    return Err(format!(
                        "{INVALID}: range character '-' must be followed by a Unicode character"
                    ));
                }
                // The library reads a failed escape as the character 0, out of order.
                let (next, high, escaped) = next_char(index, input)?.ok_or(INVALID)?;
                index = next;
                if !escaped && (high == ']' || high == '-') {
                    return Err(format!(
                        "{INVALID}: range character '-' cannot be followed by a special symbol"
                    ));
                }
                if high < low {
                    return Err(format!("{INVALID}: range is out of order"));
                }
                set.extend(low..=high);
                previous = None;
            }
            (']', false) => return Ok((index, set)),
            _ => {
                set.insert(c);
                previous = Some(c);
            }
        }
    }
    Err(format!("{INVALID}: found [ without matching ]"))
}

/// The library's `Match`: whether two tokens share a character, flags aside.
fn matches(a: &Token, b: &Token) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Character(x), Kind::Character(y)) => x == y,
        (Kind::Character(x), Kind::Set(s)) | (Kind::Set(s), Kind::Character(x)) => s.contains(x),
        (Kind::Set(s), Kind::Set(t)) => s.iter().any(|c| t.contains(c)),
        (Kind::Dot, _) | (_, Kind::Dot) => true,
    }
}

fn non_empty(g1: &[Token], g2: &[Token]) -> bool {
    match trim(g1, g2) {
        Some((g1, g2)) => intersect_normal(g1, g2),
        None => false,
    }
}

/// The library's `trimGlobs`: equal unflagged prefixes and suffixes removed but one token
/// each; `None` when they do not match.
fn trim<'a>(g1: &'a [Token], g2: &'a [Token]) -> Option<(&'a [Token], &'a [Token])> {
    let unflagged = |t: &Token| t.flag == Flag::None;
    let mut l = 0;
    while let (Some(a), Some(b)) = (g1.get(l), g2.get(l)) {
        if !unflagged(a) || !unflagged(b) {
            break;
        }
        if !matches(a, b) {
            return None;
        }
        l += 1;
    }
    l = l.saturating_sub(1);
    // Indices from the end as signed numbers, as in Go (they may reach -1).
    let (mut r1, mut r2) = (g1.len() as isize - 1, g2.len() as isize - 1);
    let l_signed = l as isize;
    while r1 >= l_signed && r2 >= l_signed {
        let (Some(a), Some(b)) = (g1.get(r1 as usize), g2.get(r2 as usize)) else {
            break;
        };
        if !unflagged(a) || !unflagged(b) {
            break;
        }
        if !matches(a, b) {
            return None;
        }
        r1 -= 1;
        r2 -= 1;
    }
    if r1 < g1.len() as isize - 1 {
        r1 += 1;
        r2 += 1;
    }
    let end1 = usize::try_from(r1 + 1).ok()?;
    let end2 = usize::try_from(r2 + 1).ok()?;
    Some((g1.get(l..end1)?, g2.get(l..end2)?))
}

/// `tokens[from..]`, empty past the end.
fn rest(tokens: &[Token], from: usize) -> &[Token] {
    tokens.get(from..).unwrap_or_default()
}

fn intersect_normal(g1: &[Token], g2: &[Token]) -> bool {
    let mut i = 0;
    while let (Some(a), Some(b)) = (g1.get(i), g2.get(i)) {
        if a.flag == Flag::None && b.flag == Flag::None {
            if !matches(a, b) {
                return false;
            }
        } else {
            return intersect_special(rest(g1, i), rest(g2, i));
        }
        i += 1;
    }
    i == g1.len() && i == g2.len()
}

fn intersect_special(g1: &[Token], g2: &[Token]) -> bool {
    let (Some(first1), Some(first2)) = (g1.first(), g2.first()) else {
        return false;
    };
    match (first1.flag, first2.flag) {
        (Flag::Plus, _) => intersect_plus(g1, g2),
        (Flag::Star, _) => intersect_star(g1, g2),
        (Flag::None, Flag::Plus) => intersect_plus(g2, g1),
        (Flag::None, Flag::Star) => intersect_star(g2, g1),
        (Flag::None, Flag::None) => false,
    }
}

fn intersect_plus(plussed: &[Token], other: &[Token]) -> bool {
    let (Some(first), Some(other_first)) = (plussed.first(), other.first()) else {
        return false;
    };
    if !matches(first, other_first) {
        return false;
    }
    // Either the plussed token takes `other[0]`, or a flagged `other[0]` takes it.
    intersect_star(plussed, rest(other, 1))
        || (other_first.flag != Flag::None && intersect_normal(rest(plussed, 1), other))
}

fn intersect_star(starred: &[Token], other: &[Token]) -> bool {
    let Some(star) = starred.first() else {
        return false;
    };
    let next = starred.get(1);
    for (i, token) in other.iter().enumerate() {
        match next {
            Some(next) if matches(token, next) => {
                if intersect_normal(rest(starred, 1), rest(other, i)) {
                    return true;
                }
                if !matches(token, star) {
                    return false;
                }
            }
            _ => {
                if !matches(token, star) {
                    return false;
                }
            }
        }
    }
    next.is_none()
}
