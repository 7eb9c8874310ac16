#include <catch2/catch.hpp>

#include <string>

#include "smtp/proxy_header.hpp"

using namespace portcullis::smtp;
using Status = ProxyParseResult::Status;

namespace {

std::string bytes(std::initializer_list<int> list) {
    std::string out;
    for (const int b : list) {
        out.push_back(static_cast<char>(b));
    }
    return out;
}

const std::string v2_signature =
    bytes({0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A});

// Every proper prefix of an accepted header must ask for more.
void check_prefixes_need_more(const std::string& header) {
    for (std::size_t n = 0; n < header.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        CHECK(parse_proxy_header(header.substr(0, n)).status == Status::need_more);
    }
}

}  // namespace

TEST_CASE("PROXY v1 TCP4 and TCP6 headers", "[smtp][proxy]") {
    const std::string h4 = "PROXY TCP4 203.0.113.9 192.0.2.1 56324 587\r\n";
    auto r = parse_proxy_header(h4 + "EHLO x\r\n");
    REQUIRE(r.status == Status::header);
    CHECK(r.consumed == h4.size());
    CHECK(r.header.version == 1);
    CHECK_FALSE(r.header.local);
    CHECK(r.header.source == ProxyEndpoint{"203.0.113.9", 56324});
    CHECK(r.header.destination == ProxyEndpoint{"192.0.2.1", 587});
    check_prefixes_need_more(h4);

    r = parse_proxy_header("PROXY TCP6 2001:DB8::0:1 ::1 0 65535\r\n");
    REQUIRE(r.status == Status::header);
    CHECK(r.header.source == ProxyEndpoint{"2001:db8::1", 0});
    CHECK(r.header.destination == ProxyEndpoint{"::1", 65535});

    r = parse_proxy_header("PROXY UNKNOWN\r\n");
    REQUIRE(r.status == Status::header);
    CHECK(r.header.local);
    r = parse_proxy_header("PROXY UNKNOWN ffff::1 whatever is ignored\r\n");
    REQUIRE(r.status == Status::header);
    CHECK(r.header.local);
}

TEST_CASE("PROXY v1 is strict", "[smtp][proxy]") {
    for (const std::string bad : {
             "PROXY TCP4 203.0.113.9 192.0.2.1 56324 587\n",      // LF without CR
             "PROXY TCP4 203.0.113.9 192.0.2.1 56324 587\rX",     // CR without LF
             "PROXY TCP4  203.0.113.9 192.0.2.1 56324 587\r\n",   // double space
             "PROXY TCP4 203.0.113.9 192.0.2.1 56324\r\n",        // missing port
             "PROXY TCP4 203.0.113.9 192.0.2.1 56324 587 1\r\n",  // extra field
             "PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n",          // v6 address in TCP4
             "PROXY TCP6 203.0.113.9 ::1 1 2\r\n",                // v4 address in TCP6
             "PROXY TCP4 203.0.113.09 192.0.2.1 1 2\r\n",         // leading zero in address
             "PROXY TCP4 203.0.113.9 192.0.2.1 01 2\r\n",         // leading zero in port
             "PROXY TCP4 203.0.113.9 192.0.2.1 65536 2\r\n",      // port out of range
             "PROXY TCP4 203.0.113.9 192.0.2.1 -1 2\r\n",
             "PROXY UDP4 203.0.113.9 192.0.2.1 1 2\r\n",
             "PROXY tcp4 203.0.113.9 192.0.2.1 1 2\r\n",
             "PROXY\r\n",
             "PROXY TCP4 203.0.113.9\t192.0.2.1 1 2\r\n",
             "proxy TCP4 203.0.113.9 192.0.2.1 1 2\r\n",
             "EHLO client.example\r\n",
             "GET / HTTP/1.1\r\n",
         }) {
        INFO(bad);
        const auto r = parse_proxy_header(bad);
        CHECK(r.status == Status::error);
        CHECK_FALSE(r.error.empty());
    }
    // Bounded: no CRLF within 107 bytes is an error, not a wait.
    const std::string long_line = "PROXY UNKNOWN " + std::string(93, 'x');
    CHECK(long_line.size() == 107);
    CHECK(parse_proxy_header(long_line).status == Status::error);
    CHECK(parse_proxy_header(long_line.substr(0, 106)).status == Status::need_more);
    CHECK(parse_proxy_header(long_line.substr(0, 105) + "\r\n").status == Status::header);
    CHECK(parse_proxy_header(long_line.substr(0, 106) + "\r\n").status == Status::error);
    // A CR in the last allowed position can never be followed by a LF in time.
    CHECK(parse_proxy_header(long_line.substr(0, 106) + "\r").status == Status::error);
    CHECK(parse_proxy_header(long_line.substr(0, 105) + "\r").status == Status::need_more);
    // An early wrong byte fails at once.
    CHECK(parse_proxy_header("PX").status == Status::error);
    CHECK(parse_proxy_header("H").status == Status::error);
    CHECK(parse_proxy_header("\r\n\r\n\x01").status == Status::error);
}

TEST_CASE("PROXY v2 headers", "[smtp][proxy]") {
    const std::string v4 = v2_signature + bytes({0x21, 0x11, 0x00, 0x0C, 203, 0, 113, 9, 192, 0, 2,
                                                 1, 0xDC, 0x04, 0x02, 0x4B});
    auto r = parse_proxy_header(v4 + "EHLO");
    REQUIRE(r.status == Status::header);
    CHECK(r.consumed == v4.size());
    CHECK(r.header.version == 2);
    CHECK_FALSE(r.header.local);
    CHECK(r.header.source == ProxyEndpoint{"203.0.113.9", 56324});
    CHECK(r.header.destination == ProxyEndpoint{"192.0.2.1", 587});
    check_prefixes_need_more(v4);

    std::string v6 = v2_signature + bytes({0x21, 0x21, 0x00, 0x24 + 7});
    v6 += bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
    v6 += bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
    v6 += bytes({0x01, 0xBB, 0x00, 0x19});
    v6 += bytes({0x04, 0x00, 0x04, 'a', 'b', 'c', 'd'});  // one TLV (NOOP)
    r = parse_proxy_header(v6);
    REQUIRE(r.status == Status::header);
    CHECK(r.consumed == v6.size());
    CHECK(r.header.source == ProxyEndpoint{"2001:db8::1", 443});
    CHECK(r.header.destination == ProxyEndpoint{"::1", 25});

    // LOCAL (health checks from the load balancer) carries no address.
    r = parse_proxy_header(v2_signature + bytes({0x20, 0x00, 0x00, 0x00}));
    REQUIRE(r.status == Status::header);
    CHECK(r.header.local);
    // PROXY over AF_UNSPEC, and over a UNIX socket: no IP address either.
    r = parse_proxy_header(v2_signature + bytes({0x21, 0x00, 0x00, 0x00}));
    REQUIRE(r.status == Status::header);
    CHECK(r.header.local);
    r = parse_proxy_header(v2_signature + bytes({0x21, 0x31, 0x00, 0xD8}) + std::string(216, 'u'));
    REQUIRE(r.status == Status::header);
    CHECK(r.header.local);
}

TEST_CASE("PROXY v2 is strict and bounded", "[smtp][proxy]") {
    const auto header = [](int ver_cmd, int family, std::string body) {
        const auto n = body.size();
        return v2_signature +
               bytes({ver_cmd, family, static_cast<int>(n >> 8), static_cast<int>(n & 0xFF)}) +
               body;
    };
    const std::string v4_addresses(12, '\x01');
    CHECK(parse_proxy_header(header(0x11, 0x11, v4_addresses)).status == Status::error);  // v1
    CHECK(parse_proxy_header(header(0x22, 0x11, v4_addresses)).status == Status::error);  // cmd
    CHECK(parse_proxy_header(header(0x21, 0x12, v4_addresses)).status == Status::error);  // UDP
    CHECK(parse_proxy_header(header(0x21, 0x41, v4_addresses)).status == Status::error);  // family
    CHECK(parse_proxy_header(header(0x21, 0x11, std::string(11, '\x01'))).status ==
          Status::error);  // too short for IPv4
    CHECK(parse_proxy_header(header(0x21, 0x21, v4_addresses)).status == Status::error);
    CHECK(parse_proxy_header(header(0x21, 0x11, v4_addresses + "\x04\x00")).status ==
          Status::error);  // truncated TLV
    CHECK(parse_proxy_header(header(0x21, 0x11, v4_addresses + bytes({0x04, 0x00, 0x02, 'x'})))
              .status == Status::error);  // TLV longer than the header
    CHECK(parse_proxy_header(header(0x21, 0x11, v4_addresses + bytes({0x04, 0x00, 0x00}))).status ==
          Status::header);
    // Over the payload bound: refused from the fixed part alone, without waiting.
    const std::string big = v2_signature + bytes({0x21, 0x11, 0x08, 0x01});
    CHECK(parse_proxy_header(big).status == Status::error);
    CHECK(parse_proxy_header(
              header(0x21, 0x11, v4_addresses + bytes({0x04, 0x07, 0xF1}) + std::string(2033, 'x')))
              .status == Status::header);
}

TEST_CASE("PROXY header builders round-trip through the parser", "[smtp][proxy]") {
    const ProxyEndpoint client{"203.0.113.9", 40000};
    const ProxyEndpoint local{"192.0.2.1", 587};
    CHECK(build_proxy_v1(client, local) == "PROXY TCP4 203.0.113.9 192.0.2.1 40000 587\r\n");
    for (const auto& [src, dst] :
         {std::pair{client, local}, std::pair{ProxyEndpoint{"2001:db8::7", 1}, local},
          std::pair{ProxyEndpoint{"::1", 65535}, ProxyEndpoint{"::1", 25}}}) {
        for (const std::string& wire : {build_proxy_v1(src, dst), build_proxy_v2(src, dst)}) {
            const auto r = parse_proxy_header(wire);
            REQUIRE(r.status == Status::header);
            CHECK(r.consumed == wire.size());
            const bool mixed = src.ip.find(':') != dst.ip.find(':');
            CHECK(r.header.source.ip ==
                  (mixed && src.ip.find(':') == std::string::npos ? "::ffff:" + src.ip : src.ip));
            CHECK(r.header.source.port == src.port);
            CHECK(r.header.destination.port == dst.port);
        }
    }
    // Mixed families become TCP6 with the IPv4 address mapped.
    CHECK(build_proxy_v1({"2001:db8::7", 1}, local) ==
          "PROXY TCP6 2001:db8::7 ::ffff:192.0.2.1 1 587\r\n");
    // Not an IP: UNKNOWN / LOCAL.
    CHECK(build_proxy_v1({"", 0}, local) == "PROXY UNKNOWN\r\n");
    const auto r = parse_proxy_header(build_proxy_v2({"x", 0}, local));
    REQUIRE(r.status == Status::header);
    CHECK(r.header.local);
    CHECK(build_proxy_v2(client, local).size() == 16 + 12);
}
