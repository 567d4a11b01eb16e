from corpus import OPS, SHOP, WEB, Case, Request

# Content type `application/grpc` would turn the filter's local reply (the differential
# wrapper's answer) into a gRPC status, hiding the body: the paths are what this policy reads.
GRPC = {"content-type": "application/grpc-web+proto", "te": "trailers"}


def call(path, identity=None):
    return Request("POST", path, GRPC, identity=identity)


CASES = [Case("grpc-methods", "grpc/authz/allow", [
    call("/grpc.health.v1.Health/Check"),
    call("/grpc.health.v1.Health/Watch", identity=WEB),
    call("/grpc.health.v1.Health/List"),
    call("/shop.v1.Catalog/GetProduct", identity=SHOP),
    call("/shop.v1.Catalog/ListProducts", identity=SHOP),
    call("/shop.v1.Catalog/DeleteProduct", identity=SHOP),
    call("/shop.v1.Cart/AddItem", identity=SHOP),
    call("/shop.v1.Cart/Checkout", identity=SHOP),
    call("/shop.v1.Catalog/DeleteProduct", identity=OPS),
    call("/shop.v1.Cart/AddItem", identity=OPS),
    call("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", identity=OPS),
    call("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", identity=SHOP),
    call("/shop.v1.Catalog/GetProduct"),
    call("/shop.v1.Catalog/GetProduct", identity=WEB),
    call("/shop.v1.Catalog", identity=SHOP),
    call("/shop.v1.Catalog/GetProduct/extra", identity=SHOP),
    call("/shop.v1.Cart/", identity=SHOP),
    call("/shop.v1.Catalog/GetProduct?x=1", identity=SHOP),
    Request("GET", "/shop.v1.Catalog/GetProduct", identity=SHOP),
    call("/%73hop.v1.Catalog/GetProduct", identity=SHOP),
])]
