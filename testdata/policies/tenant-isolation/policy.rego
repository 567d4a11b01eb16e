# A multi-tenant SaaS API: `/tenants/<id>/...` is reachable only with the matching `x-tenant-id`
# (set by the authenticating gateway), except for support staff on read-only calls.
package saas.authz

import rego.v1

default decision := {"allowed": false, "http_status": 404, "body": "no such tenant"}

decision := {"allowed": true, "headers": {"x-tenant": tenant}} if allowed

decision := {"allowed": false, "http_status": 400, "body": "missing x-tenant-id"} if {
	not allowed
	not input.attributes.request.http.headers["x-tenant-id"]
	input.parsed_path[0] == "tenants"
}

tenant := input.parsed_path[1] if input.parsed_path[0] == "tenants"

allowed if {
	tenant == input.attributes.request.http.headers["x-tenant-id"]
	tenant in data.tenants.active
}

allowed if {
	tenant in data.tenants.active
	input.attributes.request.http.method == "GET"
	startswith(input.source_principal, "spiffe://cluster.local/ns/ops/")
}
