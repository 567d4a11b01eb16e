# Decision-log masks and drops, as OPA reads them: pointers to erase and upserts, evaluated
# with the whole event as input (the request at input.input).
package system.log

import rego.v1

mask contains "/input/attributes/request/http/headers/x-api-key"

# A token in the query is in the path too.
mask contains "/input/attributes/request/http/path" if input.input.parsed_query.token

mask contains "/input/attributes/request/http/headers/:path" if input.input.parsed_query.token

mask contains {"op": "upsert", "path": "/input/parsed_query/token", "value": ["**REDACTED**"]} if {
	input.input.parsed_query.token
}

drop if input.input.attributes.request.http.path == "/health"
