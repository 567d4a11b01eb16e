# The demo policy: who may call the shop's API, decided by workload identity (the SPIFFE id
# of the client certificate under mTLS) and method. Answers in OPA-Envoy's object form.
package envoy.authz

import rego.v1

default allow := {
	"allowed": false,
	"http_status": 403,
	"body": "zerohop: access denied\n",
	"headers": {"x-zerohop-denied-by": "envoy.authz"},
}

allow := {
	"allowed": true,
	"headers": {"x-zerohop-identity": identity},
} if permitted

identity := object.get(input, "source_principal", "anonymous")

# Anyone may read the health endpoint.
permitted if input.parsed_path == ["health"]

# Workloads of the shop namespace may read products.
permitted if {
	input.attributes.request.http.method == "GET"
	input.parsed_path[0] == "products"
	startswith(identity, "spiffe://cluster.local/ns/shop/")
}

# Operators listed in data may do anything.
permitted if identity in data.operators
