# Rules the end-to-end tests point listeners at, one behaviour each; the `x-mode` request
# header picks the branch.
package e2e

import rego.v1

mode := object.get(input.attributes.request.http.headers, "x-mode", "allow")

allow_bool if mode == "allow"

default allow_bool := false

decision := {
	"allowed": true,
	"headers": {"x-added": "yes", "x-replaced": "new", "x-multi": ["one", "two"]},
	"request_headers_to_remove": ["x-remove-me"],
	"response_headers_to_add": {"x-response": "added"},
	"query_parameters_to_set": {"set": "1"},
	"query_parameters_to_remove": ["drop"],
	"dynamic_metadata": {"user": "alice", "decision_id": "replaced by the filter"},
} if mode == "allow"

decision := {
	"allowed": false,
	"http_status": 401,
	"body": "who are you?",
	"headers": {"www-authenticate": "Bearer realm=\"e2e\""},
	"dynamic_metadata": {"reason": "no credentials", "attempts": 1},
} if mode == "deny"

decision := {"allowed": false, "http_status": 418} if mode == "bad-status"

decision := {"allowed": true, "headers": {"x-injected": "a\r\nb"}} if mode == "bad-header"

decision := "yes" if mode == "bad-type"

# Defined only when asked: otherwise undefined.
maybe if mode == "defined"

# A runaway evaluation, stopped by the instruction limit.
expensive := count([1 | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000)]) if mode == "expensive"

expensive := true if mode == "allow"

# Workload identity from the client certificate's SPIFFE id.
default spiffe := false

spiffe if input.source_principal == "spiffe://cluster.local/ns/shop/sa/frontend"

# The whole input, to compare with what OPA-Envoy would build.
echo := {"allowed": false, "http_status": 200, "body": json.marshal(input), "headers": {"content-type": "application/json"}}
