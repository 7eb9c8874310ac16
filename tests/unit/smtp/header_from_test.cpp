#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "smtp/header_from.hpp"

using namespace portcullis::smtp;
using Verdict = HeaderFromScanner::Verdict;
using Addresses = std::vector<std::string>;

namespace {

Addresses addresses(std::string_view body) {
    const auto list = parse_mailbox_list(body);
    REQUIRE(list);
    CHECK_FALSE(list->group);
    return list->addresses;
}

bool malformed(std::string_view body) {
    return !parse_mailbox_list(body).has_value();
}

struct Scan {
    Verdict verdict;
    std::string address;
};

// Feeds `message` in pieces of `chunk` bytes, then finishes.
Scan scan(std::string_view message, std::size_t chunk = 1, bool dot_stuffed = false) {
    HeaderFromScanner s(dot_stuffed);
    for (std::size_t i = 0; i < message.size(); i += chunk) {
        s.feed(message.substr(i, chunk));
    }
    s.finish();
    return {s.verdict(), s.address()};
}

void check_all_chunkings(std::string_view message, Verdict verdict, std::string_view address = "") {
    for (std::size_t chunk : {std::size_t{1}, std::size_t{2}, std::size_t{7}, message.size() + 1}) {
        CAPTURE(message, chunk);
        const Scan r = scan(message, chunk);
        CHECK(r.verdict == verdict);
        if (verdict == Verdict::one) {
            CHECK(r.address == address);
        }
    }
}

}  // namespace

TEST_CASE("mailbox-list: addr-spec and name-addr forms", "[smtp][header_from]") {
    CHECK(addresses("alice@example.com") == Addresses{"alice@example.com"});
    CHECK(addresses(" alice@example.com ") == Addresses{"alice@example.com"});
    CHECK(addresses("<alice@example.com>") == Addresses{"alice@example.com"});
    CHECK(addresses("Alice <alice@example.com>") == Addresses{"alice@example.com"});
    CHECK(addresses("Alice Q. Liddell <alice@example.com>") == Addresses{"alice@example.com"});
    CHECK(addresses("\"Liddell, Alice\" <alice@example.com>") == Addresses{"alice@example.com"});
    CHECK(addresses("=?UTF-8?B?QWxpY2U=?= <alice@example.com>") == Addresses{"alice@example.com"});
    CHECK(addresses("Zoë Müller <zoe@exämple.de>") == Addresses{"zoe@exämple.de"});  // RFC 6532
    CHECK(addresses("a@b, c@d") == Addresses{"a@b", "c@d"});
    CHECK(addresses("A <a@b>, \"C\" <c@d>") == Addresses{"a@b", "c@d"});
}

TEST_CASE("mailbox-list: comments, quoted strings and obsolete forms", "[smtp][header_from]") {
    CHECK(addresses("alice@example.com (Alice (the real one))") == Addresses{"alice@example.com"});
    CHECK(addresses("(comment) Alice (x) <(y) alice@example.com (z)> (w)") ==
          Addresses{"alice@example.com"});
    CHECK(addresses("\"alice\"@example.com") == Addresses{"alice@example.com"});
    CHECK(addresses("\"al\\ice\"@example.com") == Addresses{"alice@example.com"});
    CHECK(addresses("\"a b\"@example.com") == Addresses{"\"a b\"@example.com"});
    CHECK(addresses("\"a\\\"b\"@example.com") == Addresses{"\"a\\\"b\"@example.com"});
    CHECK(addresses("john . doe @ example . com") == Addresses{"john.doe@example.com"});
    CHECK(addresses("\"john\".doe@example.com") == Addresses{"john.doe@example.com"});
    CHECK(addresses("<@route.example,@other.example:alice@example.com>") ==
          Addresses{"alice@example.com"});
    CHECK(addresses("alice@[192.0.2.1]") == Addresses{"alice@[192.0.2.1]"});
    CHECK(addresses(", alice@example.com, ,") == Addresses{"alice@example.com"});
    CHECK(addresses("\"alice@example.com\" <evil@attacker.example>") ==
          Addresses{"evil@attacker.example"});  // the display name is not the address
    CHECK(addresses("alice@example.com(x)") == Addresses{"alice@example.com"});
}

TEST_CASE("mailbox-list: groups", "[smtp][header_from]") {
    auto g = parse_mailbox_list("undisclosed-recipients:;");
    REQUIRE(g);
    CHECK(g->group);
    CHECK(g->addresses.empty());
    g = parse_mailbox_list("Team: a@b, c@d;, e@f");
    REQUIRE(g);
    CHECK(g->group);
    CHECK(g->addresses == Addresses{"a@b", "c@d", "e@f"});
    CHECK(malformed("Team: a@b"));    // unterminated group
    CHECK(malformed("A: B: a@b;;"));  // nested group
}

TEST_CASE("mailbox-list: malformed bodies", "[smtp][header_from]") {
    for (const char* body : {
             "alice",                                // no domain
             "Alice",                                // a name without an address
             "alice@",                               // empty domain
             "@example.com",                         // empty local part
             "<>",                                   // the null path is no author
             "alice@example.com <bob@example.com>",  // ambiguous
             "Alice <alice@example.com",             // unclosed
             "Alice alice@example.com>",             //
             "alice@example.com (unclosed comment",  //
             "\"unclosed@example.com",               //
             "alice..x@example.com",                 // empty word in local part
             ".alice@example.com",                   //
             "alice@example..com",                   //
             "alice@\"example\".com",                // quoted domain
             "John Doe@example.com",                 // two words, no dot
             "alice@example.com; bob@example.com",   // ; outside a group
             "alice@[1.2.3.4",                       // unclosed literal
             "al\x01ice@example.com",                // control character
             "alice@exa mple.com",                   // space inside the domain
         }) {
        CAPTURE(body);
        CHECK(malformed(body));
    }
    CHECK(malformed(std::string("alice@example.com\0x", 19)));
}

TEST_CASE("scanner: one From, folded, any case, obsolete space before the colon",
          "[smtp][header_from]") {
    check_all_chunkings("From: alice@example.com\r\nSubject: hi\r\n\r\nbody\r\n", Verdict::one,
                        "alice@example.com");
    check_all_chunkings("Subject: hi\r\nfrom: Alice\r\n <alice@example.com>\r\nTo: b@c\r\n\r\n",
                        Verdict::one, "alice@example.com");
    check_all_chunkings("FROM : \"Alice\"\r\n\t(comment)\r\n <alice@example.com>\r\n\r\nx\r\n",
                        Verdict::one, "alice@example.com");
    // "From" as part of another field name is not From
    check_all_chunkings(
        "X-From: evil@example.com\r\nFrom: alice@example.com\r\nResent-From: "
        "x@y\r\nFromage: brie\r\n\r\n",
        Verdict::one, "alice@example.com");
    // a message that is only a header block (no empty line before the end)
    check_all_chunkings("From: alice@example.com\r\nSubject: x\r\n", Verdict::one,
                        "alice@example.com");
}

TEST_CASE("scanner: the body is not read", "[smtp][header_from]") {
    check_all_chunkings(
        "From: alice@example.com\r\n\r\nFrom: evil@example.com\r\n"
        "\x01\x02 anything at all\r\n",
        Verdict::one, "alice@example.com");
    HeaderFromScanner s(false);
    CHECK(s.feed("From: a@b\r\n\r\n") == Verdict::one);  // decided at the empty line
    CHECK(s.feed("From: c@d\r\n") == Verdict::one);
}

TEST_CASE("scanner: refusals", "[smtp][header_from]") {
    check_all_chunkings("Subject: no from\r\n\r\nx\r\n", Verdict::none);
    check_all_chunkings("\r\nFrom: a@b\r\n", Verdict::none);  // empty header block
    check_all_chunkings("From: a@b\r\nFrom: c@d\r\n\r\n", Verdict::several);
    check_all_chunkings("From: a@b\r\nfrom : a@b\r\n\r\n", Verdict::several);
    check_all_chunkings("From: a@b, c@d\r\n\r\n", Verdict::several);
    check_all_chunkings("From: a@b,\r\n c@d\r\n\r\n", Verdict::several);
    check_all_chunkings("From: undisclosed:;\r\n\r\n", Verdict::group);
    check_all_chunkings("From: Team: a@b;\r\n\r\n", Verdict::group);
    check_all_chunkings("From:\r\n\r\n", Verdict::none);
    check_all_chunkings("From: Alice\r\n\r\n", Verdict::malformed);
    // a line that is neither a field nor a continuation: the backend might read the
    // next lines as header fields, so the scanner must not stop there
    check_all_chunkings("From: a@b\r\nnot a header line\r\nFrom: evil@x\r\n\r\n",
                        Verdict::malformed);
    check_all_chunkings(" folded first line\r\nFrom: a@b\r\n\r\n", Verdict::malformed);
    check_all_chunkings("From: a@b\nSubject: bare LF\r\n\r\n", Verdict::malformed);
    check_all_chunkings("From: a@b\rX: bare CR\r\n\r\n", Verdict::malformed);
    check_all_chunkings("Fr\x80m: a@b\r\n\r\n", Verdict::malformed);
    check_all_chunkings("From x: a@b\r\n\r\n", Verdict::malformed);
}

TEST_CASE("scanner: a second From is refused as soon as its name is read", "[smtp][header_from]") {
    HeaderFromScanner s(false);
    CHECK(s.feed("From: a@b\r\nSubject: x\r\n") == Verdict::pending);
    CHECK(s.feed("FROM:") == Verdict::several);
}

TEST_CASE("scanner: the message ends inside a line", "[smtp][header_from]") {
    HeaderFromScanner s(false);
    s.feed("From: a@b\r\nSubj");
    CHECK(s.finish() == Verdict::malformed);
}

TEST_CASE("scanner: bounded input", "[smtp][header_from]") {
    std::string big = "From: a@b\r\n";
    while (big.size() <= HeaderFromScanner::kMaxHeaderBlock) {
        big += "X-Padding: " + std::string(900, 'p') + "\r\n";
    }
    check_all_chunkings(big + "\r\n", Verdict::too_large);
    // a From body over its own cap, folded over many lines
    std::string from = "From: a@b";
    while (from.size() <= HeaderFromScanner::kMaxFromBody + 100) {
        from += "\r\n (" + std::string(500, 'c') + ")";
    }
    CHECK(scan(from + "\r\n\r\n", 4096).verdict == Verdict::too_large);
    // just under the header cap is fine
    std::string fits = "From: a@b\r\n";
    while (fits.size() + 1000 < HeaderFromScanner::kMaxHeaderBlock) {
        fits += "X-Padding: " + std::string(900, 'p') + "\r\n";
    }
    CHECK(scan(fits + "\r\n", 4096).verdict == Verdict::one);
}

TEST_CASE("scanner: dot-stuffed input", "[smtp][header_from]") {
    // "..From: x" on the wire is the field ".From", not From
    const Scan r = scan("..From: evil@x\r\nFrom: a@b\r\n\r\n", 3, true);
    CHECK(r.verdict == Verdict::one);
    CHECK(r.address == "a@b");
    // without stuffing a line starting with a dot is the field name ".From"
    CHECK(scan(".From: evil@x\r\nFrom: a@b\r\n\r\n", 1, false).address == "a@b");
    // stuffed input without a leading dot reads as usual
    CHECK(scan("From: a@b\r\n\r\n", 1, true).address == "a@b");
}
