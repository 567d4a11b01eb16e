# Guards a search API against expensive queries: bounded page sizes, known sort keys, no
# wildcard-only searches, and an export that needs an explicit format.
package search.authz

import rego.v1

default allow := false

query := input.parsed_query

allow if {
	input.parsed_path == ["search"]
	input.attributes.request.http.method == "GET"
	count(query.q) == 1
	not regex.match(`^[*?\s]*$`, query.q[0])
	limit_ok
	sort_ok
}

allow if {
	input.parsed_path == ["export"]
	query.format[0] in {"csv", "json"}
	count(object.keys(query)) <= 3
}

limit_ok if not query.limit

limit_ok if {
	regex.match(`^[0-9]{1,3}$`, query.limit[0])
	to_number(query.limit[0]) <= 100
}

sort_ok if not query.sort

sort_ok if every key in query.sort {
	trim_prefix(key, "-") in {"relevance", "date", "price"}
}
