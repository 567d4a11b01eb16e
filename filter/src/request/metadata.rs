//! Envoy's dynamic metadata as OPA-Envoy shows it in `attributes.metadataContext`: Envoy hands
//! a wasm filter the request's whole `envoy.config.core.v3.Metadata` message, serialized, and
//! each namespace OPA-Envoy would see is a `google.protobuf.Struct` rendered as plain JSON (Go's
//! `structpb.Struct.AsMap`).

use std::collections::BTreeMap;

use prost::Message;
use regorus::Value;

/// Where Envoy's `jwt_authn` filter (and so Istio's `RequestAuthentication`) puts the verified
/// token payload, under its `payload_in_metadata` key.
pub const JWT_AUTHN: &str = "envoy.filters.http.jwt_authn";

/// The namespaces passed to the policy, as an ext_authz filter configured with
/// `metadata_context_namespaces: [envoy.filters.http.jwt_authn]` passes them to OPA-Envoy.
pub const NAMESPACES: &[&str] = &[JWT_AUTHN];

/// `envoy.config.core.v3.Metadata`, less `typed_filter_metadata`, which OPA-Envoy policies do
/// not see unless configured.
#[derive(Clone, PartialEq, Message)]
struct Metadata {
    #[prost(btree_map = "string, message", tag = "1")]
    filter_metadata: BTreeMap<String, prost_types::Struct>,
}

/// The bytes were not a serialized `Metadata` message.
#[derive(Debug, thiserror::Error)]
#[error("dynamic metadata is not a serialized envoy.config.core.v3.Metadata: {0}")]
pub struct MetadataError(#[from] prost::DecodeError);

/// `{"filterMetadata": {namespace: {...}}}` for the namespaces in `NAMESPACES` the request
/// has, or `None` when it has none of them (OPA-Envoy then shows `metadataContext: {}`).
pub fn filter_metadata(serialized: &[u8]) -> Result<Option<Value>, MetadataError> {
    if serialized.is_empty() {
        return Ok(None);
    }
    let metadata = Metadata::decode(serialized)?;
    let namespaces: BTreeMap<Value, Value> = metadata
        .filter_metadata
        .into_iter()
        .filter(|(namespace, _)| NAMESPACES.contains(&namespace.as_str()))
        .map(|(namespace, fields)| (Value::from(namespace), structure(fields)))
        .collect();
    if namespaces.is_empty() {
        return Ok(None);
    }
    let mut context = BTreeMap::new();
    context.insert(Value::from("filterMetadata"), Value::from(namespaces));
    Ok(Some(Value::from(context)))
}

fn structure(s: prost_types::Struct) -> Value {
    Value::from(
        s.fields
            .into_iter()
            .map(|(k, v)| (Value::from(k), value(v)))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn value(v: prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::NumberValue(n)) => number(n),
        Some(Kind::StringValue(s)) => Value::from(s),
        Some(Kind::BoolValue(b)) => Value::from(b),
        Some(Kind::StructValue(s)) => structure(s),
        Some(Kind::ListValue(l)) => {
            Value::from(l.values.into_iter().map(value).collect::<Vec<_>>())
        }
    }
}

/// Struct numbers are doubles; whole ones (token timestamps) are kept as integers, which Rego
/// compares equal to the same double.
fn number(n: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() <= EXACT {
        Value::from(n as i64)
    } else {
        Value::from(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::value::Kind;

    fn text(s: &str) -> prost_types::Value {
        prost_types::Value {
            kind: Some(Kind::StringValue(s.into())),
        }
    }

    fn serialized(namespaces: &[(&str, prost_types::Struct)]) -> Vec<u8> {
        Metadata {
            filter_metadata: namespaces
                .iter()
                .map(|(n, s)| (n.to_string(), s.clone()))
                .collect(),
        }
        .encode_to_vec()
    }

    #[test]
    fn jwt_payload_becomes_plain_json() {
        let claims = prost_types::Struct {
            fields: BTreeMap::from([
                ("sub".to_string(), text("alice")),
                (
                    "exp".to_string(),
                    prost_types::Value {
                        kind: Some(Kind::NumberValue(1_700_000_000.0)),
                    },
                ),
                (
                    "ratio".to_string(),
                    prost_types::Value {
                        kind: Some(Kind::NumberValue(0.5)),
                    },
                ),
                (
                    "admin".to_string(),
                    prost_types::Value {
                        kind: Some(Kind::BoolValue(true)),
                    },
                ),
                (
                    "none".to_string(),
                    prost_types::Value {
                        kind: Some(Kind::NullValue(0)),
                    },
                ),
                (
                    "groups".to_string(),
                    prost_types::Value {
                        kind: Some(Kind::ListValue(prost_types::ListValue {
                            values: vec![text("a"), text("b")],
                        })),
                    },
                ),
            ]),
        };
        let payload = prost_types::Struct {
            fields: BTreeMap::from([(
                "my_payload".to_string(),
                prost_types::Value {
                    kind: Some(Kind::StructValue(claims)),
                },
            )]),
        };
        let other = prost_types::Struct {
            fields: BTreeMap::from([("k".to_string(), text("v"))]),
        };
        let bytes = serialized(&[(JWT_AUTHN, payload), ("istio_authn", other)]);
        let expected = serde_json::json!({"filterMetadata": {"envoy.filters.http.jwt_authn": {
            "my_payload": {"sub": "alice", "exp": 1_700_000_000_i64, "ratio": 0.5,
                           "admin": true, "none": null, "groups": ["a", "b"]}
        }}});
        assert_eq!(
            filter_metadata(&bytes).unwrap(),
            Some(Value::from(expected))
        );
    }

    #[test]
    fn no_namespace_we_pass_is_no_context() {
        assert_eq!(filter_metadata(&[]).unwrap(), None);
        let other = prost_types::Struct {
            fields: BTreeMap::from([("k".to_string(), text("v"))]),
        };
        assert_eq!(
            filter_metadata(&serialized(&[("istio_authn", other)])).unwrap(),
            None
        );
    }

    #[test]
    fn garbage_is_an_error() {
        let err = filter_metadata(&[0x0a, 0xff]).unwrap_err();
        assert!(
            err.to_string().starts_with("dynamic metadata is not"),
            "{err}"
        );
    }
}
