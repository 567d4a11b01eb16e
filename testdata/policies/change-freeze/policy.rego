# Change freeze: writes are refused during announced freeze windows unless the caller sends an
# approved emergency ticket; reads always pass. Windows are RFC 3339 timestamps in data.
package freeze.authz

import rego.v1

default allow := true

writes := {"POST", "PUT", "PATCH", "DELETE"}

allow := false if {
	input.attributes.request.http.method in writes
	in_freeze
	not emergency
}

in_freeze if {
	now := time.now_ns()
	some window in data.freezes
	time.parse_rfc3339_ns(window.start) <= now
	now < time.parse_rfc3339_ns(window.end)
}

emergency if {
	ticket := input.attributes.request.http.headers["x-emergency-ticket"]
	regex.match(`^INC-[0-9]{4,}$`, ticket)
	ticket in data.approved_tickets
}
