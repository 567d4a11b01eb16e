from corpus import OPS, SHOP, Case, Request


def tenant(header, method, path, identity=None):
    return Request(method, path, {"x-tenant-id": header} if header is not None else {}, identity=identity)


CASES = [Case("tenant-isolation", "saas/authz/decision", [
    tenant("acme", "GET", "/tenants/acme/invoices"),
    tenant("acme", "POST", "/tenants/acme/invoices"),
    tenant("acme", "GET", "/tenants/globex/invoices"),
    tenant("globex", "DELETE", "/tenants/globex/users/9"),
    tenant("umbrella", "GET", "/tenants/umbrella/invoices"),
    tenant("nobody", "GET", "/tenants/nobody"),
    tenant(None, "GET", "/tenants/acme/invoices"),
    tenant(None, "GET", "/status"),
    tenant("acme", "GET", "/status"),
    tenant("acme", "GET", "/tenants"),
    tenant("acme", "GET", "/tenants/acme"),
    tenant("ACME", "GET", "/tenants/acme/invoices"),
    tenant("acme", "GET", "/tenants/%61cme/invoices"),
    tenant("acme", "GET", "//tenants/acme/invoices"),
    tenant(None, "GET", "/tenants/initech/reports", identity=OPS),
    tenant(None, "POST", "/tenants/initech/reports", identity=OPS),
    tenant(None, "GET", "/tenants/umbrella/reports", identity=OPS),
    tenant(None, "GET", "/tenants/initech/reports", identity=SHOP),
    tenant("initech", "PUT", "/tenants/initech/settings?notify=1"),
    tenant("", "GET", "/tenants/acme/invoices"),
])]
