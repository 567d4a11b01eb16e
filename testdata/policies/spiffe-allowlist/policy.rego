# Zero-trust service-to-service access: a workload may call this service only if its SPIFFE id
# (mTLS client certificate) is on the allow-list, with the methods granted to its namespace.
package mesh.authz

import rego.v1

default allow := false

allow if {
	some service in data.allowed_services
	service.principal == input.source_principal
	input.attributes.request.http.method in data.namespace_methods[service.namespace]
}

allow if {
	input.attributes.request.http.method == "GET"
	input.parsed_path == ["healthz"]
}
