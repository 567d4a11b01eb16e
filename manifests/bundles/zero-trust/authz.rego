# Zero trust for the shop's east-west traffic: every call is denied unless
# data.zerohop.allowed names the caller's workload identity, the callee's and the method.
# Identities are the SPIFFE ids of the mTLS certificates (Istio:
# spiffe://<trust domain>/ns/<ns>/sa/<sa>), so a call without a verified client certificate
# is never allowed.
package zerohop.authz

import rego.v1

default allow := {
	"allowed": false,
	"http_status": 403,
	"body": "zerohop: denied by the zero-trust policy\n",
	"headers": {"x-zerohop-denied-by": "zerohop.authz"},
}

allow := {
	"allowed": true,
	"headers": {"x-zerohop-caller": caller},
} if permitted

caller := input.attributes.source.principal

callee := input.attributes.destination.principal

permitted if {
	some rule in data.zerohop.allowed
	rule.caller == caller
	rule.callee == callee
	input.attributes.request.http.method in rule.methods
}
