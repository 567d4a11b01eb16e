# The decision of the decision-log tests and of `make demo`'s log line: GET is allowed,
# DELETE denied with 401, anything else undefined.
package audit.authz

import rego.v1

allow if input.attributes.request.http.method == "GET"

allow := {"allowed": false, "http_status": 401} if input.attributes.request.http.method == "DELETE"
