# An API gateway's role-based access: the gateway in front authenticates the user and passes
# `x-user`; role bindings and permissions are data, so operators change them without code.
package gateway.authz

import rego.v1

default allow := false

allow if {
	some role in data.bindings[user]
	some permission in data.roles[role]
	permission.method in {http.method, "*"}
	glob.match(permission.path, ["/"], http.path)
}

http := input.attributes.request.http

user := lower(http.headers["x-user"])
