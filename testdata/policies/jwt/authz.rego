# End-user authorization from a token Envoy's jwt_authn (Istio's RequestAuthentication) has
# already verified: the claims come from `metadataContext`, as in OPA's Envoy JWT examples, so
# the policy needs no key and no io.jwt builtin. gRPC methods are matched on `parsed_path`.
package envoy.authz

import rego.v1

default allow := {"allowed": false, "http_status": 401, "body": "token required\n"}

claims := input.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"].verified_payload

allow := {"allowed": false, "http_status": 403, "dynamic_metadata": {"subject": claims.sub}} if {
	claims
	not permitted
}

allow := {
	"allowed": true,
	"headers": {"x-user": claims.sub, "x-roles": concat(",", claims.roles)},
	"dynamic_metadata": {"subject": claims.sub, "expires": claims.exp},
} if permitted

permitted if {
	input.attributes.request.http.method == "GET"
	"reader" in claims.roles
}

permitted if "admin" in claims.roles

# gRPC: `/shop.Catalog/<Method>` as ["shop.Catalog", "<Method>"].
permitted if {
	["shop.Catalog", method] = input.parsed_path
	method in {"GetProduct", "ListProducts"}
	claims.tenant == "shop"
}
