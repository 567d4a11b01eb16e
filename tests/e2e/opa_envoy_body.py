"""The body fields of OPA-Envoy's input for a request, worked out independently of zerohop:
what Envoy's ext_authz puts in the check (`with_request_body`: `body` or `rawBody`, `size`, the
`x-envoy-auth-partial-body` header) and what OPA-Envoy's `getParsedBody` makes of it, with
Python's parsers standing in for Go's on the well-formed bodies of the differential corpus."""

import base64
import email.parser
import email.policy
import json
import urllib.parse


def opa_envoy_body(body: bytes | None, headers: dict[str, str], settings: dict) -> dict | None:
    """`{"http": {...}, "partial": "true"|"false", "parsed_body": ..., "truncated_body": ...}`,
    or None when Envoy sends no body (bodies off, or none in the request)."""
    config = settings.get("with_request_body")
    if not config or not body:
        return None
    limit = config["max_request_bytes"]
    sent = body[:limit]
    http = {"size": len(body)}
    if config.get("pack_as_bytes"):
        http["rawBody"] = base64.b64encode(sent).decode()
    else:
        http["body"] = sent.decode()
    partial = len(sent) < len(body)
    content_type = headers.get("content-type", "")
    parsed = None
    if partial:
        pass
    elif "application/json" in content_type:
        parsed = json.loads(sent)
    elif "application/x-www-form-urlencoded" in content_type:
        parsed = {}
        for key, value in urllib.parse.parse_qsl(sent.decode(), keep_blank_values=True):
            parsed.setdefault(key, []).append(value)
    elif "multipart/form-data" in content_type:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"content-type: " + content_type.encode() + b"\r\n\r\n" + sent)
        parsed = {}
        for part in message.iter_parts():
            value = part.get_payload(decode=True).decode()
            if "application/json" in part.get("content-type", ""):
                value = json.loads(value)
            parsed.setdefault(part.get_param("name", header="content-disposition"), []).append(value)
    return {"http": http, "partial": "true" if partial else "false", "parsed_body": parsed, "truncated_body": partial}
