# Request hygiene at the edge, as an object decision with reasons: known clients, sane
# content types on writes, no oversized uploads announced, no smuggling-prone headers.
package hygiene.authz

import rego.v1

default decision := {"allowed": true, "headers": {"x-hygiene": "ok"}}

decision := {
	"allowed": false,
	"http_status": 400,
	"headers": {"x-hygiene": "rejected"},
	"body": concat("\n", sort(reasons)),
} if count(reasons) > 0

headers := input.attributes.request.http.headers

reasons contains "unknown client" if {
	not headers["user-agent"]
}

reasons contains sprintf("blocked client %q", [headers["user-agent"]]) if {
	some pattern in data.blocked_agents
	regex.match(pattern, headers["user-agent"])
}

reasons contains "unsupported content type" if {
	input.attributes.request.http.method in {"POST", "PUT", "PATCH"}
	not content_type_ok
}

reasons contains "upload too large" if {
	to_number(headers["content-length"]) > data.max_upload_bytes
}

reasons contains sprintf("header %s not allowed", [name]) if {
	some name, _ in headers
	name in {"transfer-encoding", "x-original-url", "x-rewrite-url"}
}

content_type_ok if {
	media := lower(trim_space(split(headers["content-type"], ";")[0]))
	media in data.content_types
}
