#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "bench/message.hpp"

using namespace portcullis::bench;

namespace {

// Every line ends in CRLF and there is no other CR or LF.
bool only_crlf_lines(const std::string& s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) {
            return false;
        }
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) {
            return false;
        }
    }
    return s.size() >= 2 && s.substr(s.size() - 2) == "\r\n";
}

}  // namespace

TEST_CASE("bench messages have exactly the requested size", "[bench]") {
    for (const std::uint64_t size :
         {2u, 3u, 4u, 79u, 80u, 81u, 300u, 301u, 1024u, 65536u, 1048576u}) {
        const std::string m = make_message(size, "a@example.com", "b@example.net");
        INFO("size " << size);
        REQUIRE(m.size() == size);
        REQUIRE(only_crlf_lines(m));
    }
    const std::string big = make_message(1048576, "a@example.com", "b@example.net");
    REQUIRE(big.rfind("From: <a@example.com>\r\n", 0) == 0);
    REQUIRE(big.find("\r\n.") != std::string::npos);  // some lines start with a dot
}

TEST_CASE("dot-stuffing and the end-of-data line", "[bench]") {
    REQUIRE(dot_stuff("abc\r\n") == "abc\r\n.\r\n");
    REQUIRE(dot_stuff(".abc\r\n.\r\nx.y\r\n") == "..abc\r\n..\r\nx.y\r\n.\r\n");
    const std::string m = make_message(10000, "a@example.com", "b@example.net");
    const std::string wire = dot_stuff(m);
    REQUIRE(wire.size() > m.size());
    REQUIRE(wire.find("\r\n.\r\n") == wire.size() - 5);  // the only end of data
}

TEST_CASE("base64 (RFC 4648 test vectors)", "[bench]") {
    REQUIRE(base64("") == "");
    REQUIRE(base64("f") == "Zg==");
    REQUIRE(base64("fo") == "Zm8=");
    REQUIRE(base64("foo") == "Zm9v");
    REQUIRE(base64("foobar") == "Zm9vYmFy");
    REQUIRE(base64(std::string("\0u\0p", 4)) == "AHUAcA==");
}

TEST_CASE("the script carries the credentials and envelope", "[bench]") {
    Options o;
    o.user = "u";
    o.password = "p";
    o.from = "u@example.com";
    o.to = "r@example.net";
    o.message_size = 100;
    const Script s = make_script(o);
    REQUIRE(s.auth_plain == "AUTH PLAIN AHUAcA==\r\n");
    REQUIRE(s.login_user == "dQ==\r\n");
    REQUIRE(s.login_pass == "cA==\r\n");
    REQUIRE(s.mail == "MAIL FROM:<u@example.com>\r\n");
    REQUIRE(s.rcpt == "RCPT TO:<r@example.net>\r\n");
    REQUIRE(s.body.size() >= 103);
    REQUIRE(s.body.substr(s.body.size() - 5) == "\r\n.\r\n");
}

TEST_CASE("--stagger spreads the first connections' ends evenly", "[bench]") {
    using portcullis::bench::staggered_first_session;
    std::vector<unsigned> quotas;
    for (unsigned i = 0; i < 50; ++i) {
        quotas.push_back(staggered_first_session(i, 50, 100));
    }
    CHECK(quotas.front() == 100);
    CHECK(quotas[1] == 98);
    CHECK(quotas.back() == 2);
    CHECK(std::adjacent_find(quotas.begin(), quotas.end(), std::less_equal<>()) == quotas.end());
    // more clients than messages: some end together, none sends nothing
    CHECK(staggered_first_session(7, 8, 1) == 1);
    CHECK(staggered_first_session(7, 8, 4) == 1);
    CHECK(staggered_first_session(4, 8, 4) == 2);
    CHECK(staggered_first_session(0, 0, 5) == 1);
}
