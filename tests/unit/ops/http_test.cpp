#include <catch2/catch.hpp>

#include <string>

#include "ops/http.hpp"

using namespace portcullis::ops;
using State = http::Parse::State;

TEST_CASE("a complete GET is parsed, the query string dropped", "[ops][http]") {
    auto p = http::parse_request("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
    CHECK(p.state == State::complete);
    CHECK(p.path == "/metrics");
    p = http::parse_request("GET /readyz?verbose=1 HTTP/1.0\r\n\r\n");
    CHECK(p.state == State::complete);
    CHECK(p.path == "/readyz");
    CHECK(http::parse_request("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").state ==
          State::complete);
}

TEST_CASE("an unfinished request waits, up to the size limit", "[ops][http]") {
    CHECK(http::parse_request("").state == State::incomplete);
    CHECK(http::parse_request("GET /metrics HTTP/1.1\r\nHost: x\r\n").state == State::incomplete);
    const std::string big = "GET / HTTP/1.1\r\nX: " + std::string(http::kMaxRequest, 'a');
    const auto p = http::parse_request(big);
    CHECK(p.state == State::bad);
    CHECK(p.status == 431);
    // Complete, but larger than the limit.
    const auto q = http::parse_request(big + "\r\n\r\n");
    CHECK(q.state == State::bad);
    CHECK(q.status == 431);
}

TEST_CASE("only GET, only HTTP/1.x, no body, well-formed lines", "[ops][http]") {
    auto status = [](std::string_view request) {
        const auto p = http::parse_request(request);
        return p.state == State::bad ? p.status : 0;
    };
    CHECK(status("POST /metrics HTTP/1.1\r\n\r\n") == 405);
    CHECK(status("HEAD /metrics HTTP/1.1\r\n\r\n") == 405);
    CHECK(status("GET /metrics HTTP/2.0\r\n\r\n") == 505);
    CHECK(status("GET /metrics FTP/1.0\r\n\r\n") == 400);
    CHECK(status("GET /metrics\r\n\r\n") == 400);
    CHECK(status("GET  /metrics HTTP/1.1\r\n\r\n") == 400);
    CHECK(status("GET metrics HTTP/1.1\r\n\r\n") == 400);
    CHECK(status("GET http://x/metrics HTTP/1.1\r\n\r\n") == 400);
    CHECK(status("GET /a\x01 HTTP/1.1\r\n\r\n") == 400);
    CHECK(status("GET / HTTP/1.1\r\nno colon\r\n\r\n") == 400);
    CHECK(status("GET / HTTP/1.1\r\n folded: x\r\n\r\n") == 400);
    CHECK(status("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n") == 400);
    CHECK(status("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello") == 400);
    CHECK(status("GET / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n") == 400);
    // A body-less method check comes after the syntax: a bad POST is 400, not 405.
    CHECK(status("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nx=1") == 400);
}

TEST_CASE("responses close the connection and carry their length", "[ops][http]") {
    CHECK(http::response(200, "text/plain", "ok\n") ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
          "Cache-Control: no-store\r\nConnection: close\r\n\r\nok\n");
    const std::string r = http::response(405, "text/plain", "");
    CHECK(r.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0) == 0);
    CHECK(r.find("\r\nAllow: GET\r\n") != std::string::npos);
    CHECK(http::response(503, "text/plain", "x").rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) ==
          0);
}
