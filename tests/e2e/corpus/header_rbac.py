from corpus import Case, Request


def as_user(user, method, path):
    return Request(method, path, {"x-user": user})


CASES = [Case("header-rbac", "gateway/authz/allow", [
    as_user("alice", "GET", "/books"),
    as_user("alice", "GET", "/books/17"),
    as_user("alice", "GET", "/books/17/chapters"),
    as_user("alice", "POST", "/books"),
    as_user("Alice", "GET", "/authors/3"),
    as_user("bob", "POST", "/books"),
    as_user("bob", "PUT", "/books/17"),
    as_user("bob", "DELETE", "/books/17"),
    as_user("bob", "GET", "/books?page=2"),
    as_user("carol", "DELETE", "/books/17"),
    as_user("carol", "PATCH", "/anything/at/all"),
    as_user("carol", "GET", "/"),
    as_user("dave", "GET", "/books"),
    as_user("eve", "GET", "/books"),
    as_user("", "GET", "/books"),
    Request("GET", "/books"),
    Request("GET", "/books", {"x-user": "alice", "X-User": "bob"}),
    as_user("alice", "GET", "/books/"),
    as_user("alice", "GET", "/Books"),
    as_user("bob", "PUT", "/books/1/2"),
    as_user("carol", "OPTIONS", "/books"),
])]
