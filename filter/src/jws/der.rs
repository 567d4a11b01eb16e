//! The few DER structures public keys come in: SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), the
//! one inside an X.509 certificate, and PKCS#1 `RSAPublicKey` (RFC 8017 appendix A.1.1). Strict
//! DER, as Go's `x509` reads it: definite minimal lengths, nothing left over. Only the
//! structure around the key is read; a certificate's other fields are skipped unchecked.

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OBJECT_IDENTIFIER: u8 = 0x06;
/// `[0] EXPLICIT Version` of a certificate.
const VERSION: u8 = 0xa0;

/// Content bytes of the OBJECT IDENTIFIERs keys name.
pub const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
pub const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
pub const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
pub const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
pub const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];

/// Why DER could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DerError {
    #[error("malformed DER: truncated or bad length")]
    Length,
    #[error("malformed DER: unexpected tag {0:#04x}")]
    Tag(u8),
    #[error("malformed DER: trailing data")]
    Trailing,
    #[error("malformed DER: INTEGER is negative or not minimal")]
    Integer,
    #[error("public key bit string has unused bits")]
    UnusedBits,
}

/// One element: (tag, content, what follows). Low tag numbers only, definite lengths in
/// their shortest form.
fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError::Length)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::Tag(tag));
    }
    let (&first, rest) = rest.split_first().ok_or(DerError::Length)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(DerError::Length);
        }
        let (bytes, rest) = rest.split_at_checked(count).ok_or(DerError::Length)?;
        let len = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        // Minimal: no leading zero byte, and the long form only from 128 on.
        if bytes.first() == Some(&0) || len < 0x80 {
            return Err(DerError::Length);
        }
        (usize::try_from(len).map_err(|_| DerError::Length)?, rest)
    };
    let (content, rest) = rest.split_at_checked(len).ok_or(DerError::Length)?;
    Ok((tag, content, rest))
}

/// The next element, which must have `tag`: (content, what follows).
fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), DerError> {
    match element(input)? {
        (t, content, rest) if t == tag => Ok((content, rest)),
        (t, _, _) => Err(DerError::Tag(t)),
    }
}

/// `input` is exactly one element with `tag`: its content.
fn only(input: &[u8], tag: u8) -> Result<&[u8], DerError> {
    match expect(input, tag)? {
        (content, []) => Ok(content),
        _ => Err(DerError::Trailing),
    }
}

/// A SubjectPublicKeyInfo, borrowed from its DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spki<'a> {
    /// The algorithm's OBJECT IDENTIFIER (content bytes).
    pub algorithm: &'a [u8],
    /// The algorithm parameters when they are an OBJECT IDENTIFIER (an EC named curve).
    pub named_curve: Option<&'a [u8]>,
    /// The subjectPublicKey bits, whole bytes.
    pub key: &'a [u8],
}

/// `SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }`
/// (a `PUBLIC KEY` PEM block).
pub fn spki(der: &[u8]) -> Result<Spki<'_>, DerError> {
    spki_content(only(der, SEQUENCE)?)
}

fn spki_content(content: &[u8]) -> Result<Spki<'_>, DerError> {
    let (algorithm_identifier, rest) = expect(content, SEQUENCE)?;
    let bits = only(rest, BIT_STRING)?;
    // AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }
    let (algorithm, parameters) = expect(algorithm_identifier, OBJECT_IDENTIFIER)?;
    let named_curve = match parameters {
        [] => None,
        _ => match element(parameters)? {
            (OBJECT_IDENTIFIER, curve, []) => Some(curve),
            (_, _, []) => None,
            _ => return Err(DerError::Trailing),
        },
    };
    // The leading byte counts the unused bits of the last byte; keys are whole bytes.
    let key = match bits.split_first() {
        Some((0, key)) => key,
        Some((unused, _)) if *unused < 8 => return Err(DerError::UnusedBits),
        _ => return Err(DerError::Length),
    };
    Ok(Spki {
        algorithm,
        named_curve,
        key,
    })
}

/// The SubjectPublicKeyInfo of an X.509 certificate (RFC 5280 §4.1):
/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }` with
/// `TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
/// validity, subject, subjectPublicKeyInfo, ... }`.
pub fn certificate_spki(der: &[u8]) -> Result<Spki<'_>, DerError> {
    let certificate = only(der, SEQUENCE)?;
    let (tbs, rest) = expect(certificate, SEQUENCE)?;
    let (_, _signature_algorithm, rest) = element(rest)?;
    let (_, _signature_value, rest) = element(rest)?;
    if !rest.is_empty() {
        return Err(DerError::Trailing);
    }
    let mut fields = tbs;
    if let (VERSION, _, rest) = element(fields)? {
        fields = rest;
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        fields = element(fields)?.2;
    }
    let (spki, mut extra) = expect(fields, SEQUENCE)?;
    // issuerUniqueID, subjectUniqueID, extensions: skipped, but well formed.
    while !extra.is_empty() {
        extra = element(extra)?.2;
    }
    spki_content(spki)
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (an `RSA PUBLIC
/// KEY` PEM block, or the key bits of an RSA SubjectPublicKeyInfo): big-endian (n, e).
pub fn rsa_public_key(der: &[u8]) -> Result<(&[u8], &[u8]), DerError> {
    let content = only(der, SEQUENCE)?;
    let (n, rest) = expect(content, INTEGER)?;
    let e = only(rest, INTEGER)?;
    Ok((unsigned(n)?, unsigned(e)?))
}

/// A non-negative INTEGER's magnitude, in minimal encoding.
fn unsigned(content: &[u8]) -> Result<&[u8], DerError> {
    match content {
        [] => Err(DerError::Integer),
        [first, ..] if first & 0x80 != 0 => Err(DerError::Integer),
        [0, second, ..] if second & 0x80 == 0 => Err(DerError::Integer),
        [0, magnitude @ ..] if !magnitude.is_empty() => Ok(magnitude),
        _ => Ok(content),
    }
}

/// An OBJECT IDENTIFIER's dotted text, for messages.
pub fn oid_text(content: &[u8]) -> String {
    let Some((first, rest)) = content.split_first() else {
        return String::new();
    };
    let mut arcs = vec![u64::from(first / 40), u64::from(first % 40)];
    let mut value: u64 = 0;
    for byte in rest {
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_must_be_definite_minimal_and_present() {
        assert_eq!(
            element(&[0x04, 0x01, 0xaa]),
            Ok((0x04, &[0xaa][..], &[][..]))
        );
        // Indefinite, long form for a short length, leading zero length byte, truncated.
        for bad in [
            &[0x30, 0x80, 0x00, 0x00][..],
            &[0x04, 0x81, 0x01, 0xaa],
            &[0x04, 0x82, 0x00, 0x81],
            &[0x04, 0x02, 0xaa],
            &[0x1f, 0x01, 0x00],
            &[],
        ] {
            assert!(element(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn integers_are_non_negative_and_minimal() {
        assert_eq!(unsigned(&[0x00, 0x80]), Ok(&[0x80][..]));
        assert_eq!(unsigned(&[0x00]), Ok(&[0x00][..]));
        assert_eq!(unsigned(&[0x01, 0x00]), Ok(&[0x01, 0x00][..]));
        assert_eq!(unsigned(&[0x80]), Err(DerError::Integer));
        assert_eq!(unsigned(&[0x00, 0x01]), Err(DerError::Integer));
        assert_eq!(unsigned(&[]), Err(DerError::Integer));
    }

    #[test]
    fn oids_read_as_dotted_text() {
        assert_eq!(oid_text(OID_RSA), "1.2.840.113549.1.1.1");
        assert_eq!(oid_text(OID_P521), "1.3.132.0.35");
    }
}
