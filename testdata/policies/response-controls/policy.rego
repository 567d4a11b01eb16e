# Every key of OPA-Envoy's object decision: a partner API that tags upstream requests, strips
# credentials, adds response headers, rewrites query parameters, exports dynamic metadata and
# answers denials with a status and a body.
package partner.authz

import rego.v1

default allowed := false

allowed if plan in {"gold", "silver"}

plan := data.keys[input.attributes.request.http.headers["x-api-key"]].plan

result["allowed"] := allowed

result["headers"] := {"x-partner-plan": plan, "x-partner-tags": ["edge", plan]} if allowed

result["headers"] := {"www-authenticate": "ApiKey realm=\"partners\""} if not allowed

result["request_headers_to_remove"] := ["x-api-key", "cookie"] if allowed

result["response_headers_to_add"] := {"x-rate-limit": format_int(data.limits[plan], 10)} if allowed

result["query_parameters_to_set"] := {"plan": plan, "fields": ["id", "name"]} if allowed

result["query_parameters_to_remove"] := ["debug", "token"] if allowed

result["http_status"] := 401 if not input.attributes.request.http.headers["x-api-key"]

result["http_status"] := 403 if {
	input.attributes.request.http.headers["x-api-key"]
	not allowed
}

result["body"] := "unknown or disabled api key" if not allowed

result["dynamic_metadata"] := {"plan": object.get(data.keys, [input.attributes.request.http.headers["x-api-key"], "plan"], "none"), "path": input.parsed_path}
