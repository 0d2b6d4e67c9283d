// The admin routes (see admin.hpp).
#include <quiesce/framework/admin.hpp>

#include <quiesce/framework/stats.hpp>

namespace quiesce {

void add_admin_routes(http::Router& router, Runtime& runtime, bool root) {
    Runtime* rt = &runtime;
    router.get("/stats", [rt](http::Responder r) {
        http::Response response =
            http::Response::text(200, to_json(rt->stats()), "application/json");
        response.headers.emplace_back("Cache-Control", "no-store");
        r.send(std::move(response));
    });
    router.get("/metrics", [rt](http::Responder r) {
        r.send(http::Response::text(200, to_prometheus(rt->stats()),
                                    "text/plain; version=0.0.4; charset=utf-8"));
    });
    router.get("/dump", [rt](http::Responder r) { r.send(http::Response::text(200, rt->dump())); });
    router.get("/dashboard", [](http::Responder r) {
        http::Response response =
            http::Response::text(200, std::string(dashboard_page()), "text/html; charset=utf-8");
        response.headers.emplace_back("Cache-Control", "no-cache");
        r.send(std::move(response));
    });
    if (root) {
        router.get("/", [](http::Responder r) {
            http::Response response = http::Response::text(302, "see /dashboard\n");
            response.headers.emplace_back("Location", "/dashboard");
            r.send(std::move(response));
        });
    }
}

}  // namespace quiesce
