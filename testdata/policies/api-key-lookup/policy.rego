# API keys looked up in a 10,000-entry data document: the key must exist and not be revoked,
# and its plan must include the path prefix. The tenant is passed upstream.
package apikeys.authz

import rego.v1

default decision := {"allowed": false, "http_status": 401}

decision := {"allowed": true, "headers": {"x-tenant": key.tenant}} if {
	not key.revoked
	some prefix in data.plan_paths[key.plan]
	startswith(input.attributes.request.http.path, prefix)
}

decision := {"allowed": false, "http_status": 403, "body": "plan does not include this API"} if {
	not key.revoked
	every prefix in data.plan_paths[key.plan] {
		not startswith(input.attributes.request.http.path, prefix)
	}
}

key := data.api_keys[input.attributes.request.http.headers["x-api-key"]]
