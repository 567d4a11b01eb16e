# Path rules of a public web front: static assets and versioned API reads are open, dotfiles
# and backup files never are, admin pages only from the ops namespace.
package web.authz

import rego.v1

default allow := false

path := input.attributes.request.http.path

method := input.attributes.request.http.method

allow if {
	not forbidden
	method in {"GET", "HEAD"}
	some pattern in ["/static/**", "/assets/*.{css,js,png,svg}", "/favicon.ico"]
	glob.match(pattern, ["/"], path)
}

allow if {
	not forbidden
	method == "GET"
	regex.match(`^/api/v[1-3]/(products|categories)(/[0-9]+)?(\?.*)?$`, path)
}

allow if {
	not forbidden
	glob.match("/admin/**", ["/"], path)
	regex.match(`^spiffe://cluster\.local/ns/ops/sa/[a-z-]+$`, input.source_principal)
}

forbidden if regex.match(`(^|/)\.[^/]+`, path)

forbidden if regex.match(`(?i)\.(bak|old|swp)(\?|$)`, path)
