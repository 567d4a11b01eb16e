# Bearer tokens signed with RS256 or ES256 by keys published in a JWKS held in data; the key
# is chosen by the token's kid. Decision path: envoy/authz/allow.
package envoy.authz

import rego.v1

default allow := false

bearer := t if {
	[scheme, t] := split(input.attributes.request.http.headers.authorization, " ")
	scheme == "Bearer"
}

verified := [valid, header, claims] if {
	[valid, header, claims] := io.jwt.decode_verify(bearer, {
		"cert": json.marshal(data.jwks),
		"iss": "https://issuer.example",
		"aud": "orders",
	})
}

claims := verified[2] if verified[0]

allow if {
	input.attributes.request.http.method == "GET"
	startswith(input.attributes.request.http.path, "/orders")
	"orders:read" in claims.scope
}

allow if {
	input.attributes.request.http.method == "POST"
	input.attributes.request.http.path == "/orders"
	"orders:write" in claims.scope
}

# Also reachable without decode_verify: the RS256 key alone, by verify_rs256.
allow if {
	input.attributes.request.http.path == "/legacy"
	io.jwt.verify_rs256(bearer, json.marshal({"keys": [k | some k in data.jwks.keys; k.kty == "RSA"]}))
}
