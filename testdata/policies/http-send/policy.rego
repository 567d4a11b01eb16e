# The user's roles from an attribute service (`http.send`, one callout per request), then
# RBAC on them: the shape of a token-introspection or external-attributes policy.
package attrs.authz

import rego.v1

default allow := false

user := input.attributes.request.http.headers["x-user"]

profile := http.send({
	"method": "GET",
	"url": sprintf("http://attributes.test/users/%s.json", [user]),
	"timeout": "1s",
}).body

allow if {
	input.attributes.request.http.method == "GET"
	"reader" in profile.roles
}
