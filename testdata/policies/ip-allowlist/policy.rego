# Network allow-lists: internal callers by the client address the edge proxy recorded in
# `x-forwarded-for` (first hop), partners by CIDR per path prefix.
package network.authz

import rego.v1

default allow := false

client_ip := trim_space(split(input.attributes.request.http.headers["x-forwarded-for"], ",")[0])

client_ip := input.attributes.source.address.socketAddress.address if {
	not input.attributes.request.http.headers["x-forwarded-for"]
}

allow if {
	some cidr in data.internal
	net.cidr_contains(cidr, client_ip)
}

allow if {
	some partner in data.partners
	startswith(input.attributes.request.http.path, partner.prefix)
	some cidr in partner.cidrs
	net.cidr_contains(cidr, client_ip)
}
