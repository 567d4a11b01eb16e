# An order API that authorizes on the request body, as OPA-Envoy users write it with
# `with_request_body`: JSON orders, form logins, multipart uploads and raw text notes.
package bodyapi.authz

import rego.v1

default allow := false

method := input.attributes.request.http.method

role := object.get(input.attributes.request.http.headers, "x-role", "customer")

max_quantity := 100 if role == "admin"

else := 10

# Browsing needs no body.
allow if method == "GET"

# POST /api/orders {"item": ..., "quantity": ..., "options": {...}}
allow if {
	method == "POST"
	input.parsed_path == ["api", "orders"]
	order := input.parsed_body
	is_object(order)
	order.item in data.catalog.items
	is_number(order.quantity)
	order.quantity > 0
	order.quantity <= max_quantity
	not forbidden_option(order)
}

# Guests cannot ask for gift wrapping.
forbidden_option(order) if {
	order.options.gift_wrap == true
	role == "guest"
}

# PATCH /api/orders/<id>: only the status field, only to a known status.
allow if {
	method == "PATCH"
	[_, "orders", _] = array.slice(input.parsed_path, 0, 3)
	object.keys(input.parsed_body) == {"status"}
	input.parsed_body.status in {"cancelled", "confirmed"}
}

# POST /login (form): a username and a password of at least 8 characters.
allow if {
	method == "POST"
	input.parsed_path == ["login"]
	[user] := input.parsed_body.username
	user != ""
	[password] := input.parsed_body.password
	count(password) >= 8
}

# POST /upload (multipart): a title, and a JSON `meta` part that is not public.
allow if {
	method == "POST"
	input.parsed_path == ["upload"]
	count(input.parsed_body.title) == 1
	meta := input.parsed_body.meta[0]
	meta.visibility in {"private", "team"}
}

# PUT /api/notes (text/plain): no SQL in notes, and not too long.
allow if {
	method == "PUT"
	input.parsed_path == ["api", "notes"]
	note := input.attributes.request.http.body
	# `is_string` also keeps the RVM from letting an absent body through under `not`
	# (known_difference_not_over_a_variable_bound_to_undefined).
	is_string(note)
	not contains(lower(note), "drop table")
	input.attributes.request.http.size <= 200
}
