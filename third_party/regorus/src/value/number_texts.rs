// Copyright (c) Microsoft Corporation.
// Licensed under the MIT License.

//! The texts of a JSON document's numbers, as written.
//!
//! serde_json hands a number over as text (`arbitrary_precision`) but writes its exponent its
//! own way: `1E2` and `1e2` arrive as `1e+2`. OPA keeps a number's text and `json.marshal`
//! writes it, so [`Value::from_json_str`](crate::Value::from_json_str) installs the document's
//! number texts, in document order, for the parse when some exponent would be rewritten
//! ([`NumberTextsGuard`]); the deserializer takes them in the same order. std-only: it relies
//! on `thread_local!`.

use alloc::collections::VecDeque;
use alloc::string::String;
use core::cell::RefCell;

std::thread_local! {
    static TEXTS: RefCell<Option<VecDeque<String>>> = const { RefCell::new(None) };
}

/// Keeps `json`'s number texts installed until dropped; installs nothing when serde_json
/// writes every number as it is written.
pub struct NumberTextsGuard {
    installed: bool,
}

impl NumberTextsGuard {
    pub fn install(json: &str) -> Self {
        let Some(texts) = rewritten_number_texts(json) else {
            return Self { installed: false };
        };
        TEXTS.with(|cell| *cell.borrow_mut() = Some(texts));
        Self { installed: true }
    }
}

impl Drop for NumberTextsGuard {
    fn drop(&mut self) {
        if self.installed {
            TEXTS.with(|cell| *cell.borrow_mut() = None);
        }
    }
}

/// The text of the next number of the document being parsed, when texts are installed.
pub fn next_number_text() -> Option<String> {
    TEXTS.with(|cell| cell.borrow_mut().as_mut().and_then(VecDeque::pop_front))
}

/// The texts of the numbers serde_json hands over as text (all but the integers of 64 bits)
/// and of `-0`, in document order, when serde_json rewrites one of them: an exponent with an
/// `E` or without a sign, `-0` (read as the integer 0); `None` otherwise.
fn rewritten_number_texts(json: &str) -> Option<VecDeque<String>> {
    let bytes = json.as_bytes();
    let mut texts = VecDeque::new();
    let mut rewritten = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let text = &json[start..i];
                let integer = if text.starts_with('-') {
                    text.parse::<i64>().is_ok() && text != "-0"
                } else {
                    text.parse::<u64>().is_ok()
                };
                if integer {
                    continue;
                }
                if let Some(at) = text.find(['e', 'E']) {
                    rewritten |= text.as_bytes()[at] == b'E'
                        || !matches!(text.as_bytes().get(at + 1), Some(b'+' | b'-'));
                }
                rewritten |= text == "-0";
                texts.push_back(String::from(text));
            }
            _ => i += 1,
        }
    }
    rewritten.then_some(texts)
}
