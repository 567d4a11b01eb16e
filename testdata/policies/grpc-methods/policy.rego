# gRPC method allow-list per calling workload, read from `parsed_path` (`/pkg.Service/Method`
# becomes ["pkg.Service", "Method"]); health checks are open to everyone.
package grpc.authz

import rego.v1

default allow := false

service := input.parsed_path[0]

method := input.parsed_path[1]

allow if {
	service == "grpc.health.v1.Health"
	method in {"Check", "Watch"}
}

allow if {
	count(input.parsed_path) == 2
	some rule in data.grants[input.source_principal]
	rule.service == service
	method in rule.methods
}

allow if {
	count(input.parsed_path) == 2
	some rule in data.grants[input.source_principal]
	rule.service == service
	rule.methods == ["*"]
}
