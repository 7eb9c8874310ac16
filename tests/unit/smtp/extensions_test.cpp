#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "smtp/extensions.hpp"

using namespace portcullis::smtp;

namespace {

const std::vector<std::string> postfix_ehlo{
    "mta.test",
    "PIPELINING",
    "SIZE 10240000",
    "VRFY",
    "ETRN",
    "STARTTLS",
    "XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "DSN",
    "SMTPUTF8",
    "CHUNKING"};

PathArgument mail(std::string address, std::vector<Parameter> parameters) {
    return PathArgument{std::move(address), std::move(parameters)};
}

Offer full_offer() {
    return Offer{1000, true, true, true, true};
}

}  // namespace

TEST_CASE("EHLO keywords are learned case-insensitively", "[smtp][extensions]") {
    const Extensions e = parse_ehlo(postfix_ehlo);
    CHECK(e.esmtp);
    CHECK(e.pipelining);
    CHECK(e.size);
    CHECK(e.max_size == 10240000);
    CHECK(e.eight_bit_mime);
    CHECK(e.smtputf8);
    CHECK(e.dsn);
    CHECK(e.enhanced_status_codes);
    CHECK(e.starttls);
    CHECK(e.xclient);
    CHECK(e.xclient_attributes == std::vector<std::string>{"NAME", "ADDR", "PROTO", "HELO",
                                                           "REVERSE_NAME", "PORT", "LOGIN",
                                                           "DESTADDR", "DESTPORT"});
    CHECK(describe(e) ==
          "PIPELINING SIZE=10240000 8BITMIME SMTPUTF8 DSN ENHANCEDSTATUSCODES STARTTLS "
          "XCLIENT=NAME,ADDR,PROTO,HELO,REVERSE_NAME,PORT,LOGIN,DESTADDR,DESTPORT");

    const Extensions lower =
        parse_ehlo(std::vector<std::string>{"x", "size", "8bitmime", "xclient addr"});
    CHECK(lower.size);
    CHECK(lower.max_size == 0);
    CHECK(lower.eight_bit_mime);
    CHECK(lower.xclient_attributes == std::vector<std::string>{"ADDR"});
    CHECK_FALSE(lower.pipelining);

    // A bare server name: ESMTP without extensions.
    const Extensions bare = parse_ehlo(std::vector<std::string>{"old.example"});
    CHECK(bare.esmtp);
    CHECK(describe(bare) == "ESMTP");
    CHECK(describe(Extensions{}) == "HELO only");
    CHECK(parse_ehlo(std::vector<std::string>{"x", "SIZE 12x"}).max_size == 0);
}

TEST_CASE("common extensions of several backends", "[smtp][extensions]") {
    const Extensions a = parse_ehlo(postfix_ehlo);
    Extensions b = parse_ehlo(
        std::vector<std::string>{"b", "SIZE 5000", "8BITMIME", "XCLIENT ADDR NAME", "PIPELINING"});
    const Extensions c = common_extensions(std::vector<Extensions>{a, b});
    CHECK(c.esmtp);
    CHECK(c.pipelining);
    CHECK(c.size);
    CHECK(c.max_size == 5000);
    CHECK(c.eight_bit_mime);
    CHECK_FALSE(c.smtputf8);
    CHECK_FALSE(c.dsn);
    CHECK_FALSE(c.enhanced_status_codes);
    CHECK(c.xclient_attributes == std::vector<std::string>{"NAME", "ADDR"});

    // SIZE without a number does not lower the limit; no SIZE at all removes it.
    Extensions unlimited = parse_ehlo(std::vector<std::string>{"u", "SIZE"});
    CHECK(common_extensions(std::vector<Extensions>{a, unlimited}).max_size == 10240000);
    CHECK(common_extensions(std::vector<Extensions>{unlimited, a}).max_size == 10240000);
    Extensions no_size = parse_ehlo(std::vector<std::string>{"n", "8BITMIME"});
    const Extensions none = common_extensions(std::vector<Extensions>{a, no_size});
    CHECK_FALSE(none.size);
    CHECK(none.max_size == 0);
    // A HELO-only backend removes everything.
    const Extensions helo = common_extensions(std::vector<Extensions>{a, Extensions{}});
    CHECK(helo == Extensions{});
    CHECK(common_extensions(std::vector<Extensions>{}) == Extensions{});
}

TEST_CASE("MAIL parameters are passed on re-encoded when offered", "[smtp][extensions]") {
    const auto r = check_mail(mail("a@b.c", {{"SIZE", "00999"},
                                             {"BODY", "8bitmime"},
                                             {"SMTPUTF8", ""},
                                             {"RET", "hdrs"},
                                             {"ENVID", "QQ+2B1"}}),
                              full_offer());
    CHECK(r.verdict == ParamVerdict::ok);
    CHECK(r.smtputf8);
    CHECK(r.forward == " SIZE=999 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B1");
    // SIZE is checked but not forwarded to a backend without SIZE.
    Offer no_size = full_offer();
    no_size.forward_size = false;
    CHECK(check_mail(mail("a@b.c", {{"SIZE", "10"}}), no_size).forward.empty());
    CHECK(check_mail(mail("", {}), Offer{}).verdict == ParamVerdict::ok);
}

TEST_CASE("MAIL parameters of extensions not offered get 555", "[smtp][extensions]") {
    const Offer bare{1000, false, false, false, false};
    for (const Parameter& p : std::vector<Parameter>{{"BODY", "8BITMIME"},
                                                     {"BODY", "7BIT"},
                                                     {"SMTPUTF8", ""},
                                                     {"RET", "FULL"},
                                                     {"ENVID", "x"},
                                                     {"AUTH", "<>"},
                                                     {"MT-PRIORITY", "3"},
                                                     {"NOTIFY", "NEVER"}}) {
        INFO(p.keyword << "=" << p.value);
        CHECK(check_mail(mail("a@b.c", {p}), bare).verdict == ParamVerdict::unsupported);
    }
    CHECK(check_mail(mail("a@b.c", {{"SIZE", "999"}}), bare).verdict == ParamVerdict::ok);
}

TEST_CASE("bad MAIL parameter values get 501, big SIZE 552", "[smtp][extensions]") {
    for (const Parameter& p : std::vector<Parameter>{{"SIZE", ""},
                                                     {"SIZE", "12k"},
                                                     {"SIZE", "-1"},
                                                     {"SIZE", "123456789012345678901"},
                                                     {"BODY", "BINARYMIME"},
                                                     {"BODY", ""},
                                                     {"SMTPUTF8", "yes"},
                                                     {"RET", "ALL"},
                                                     {"ENVID", ""},
                                                     {"ENVID", "a+2"},
                                                     {"ENVID", "+0A"},
                                                     {"ENVID", std::string(101, 'e')}}) {
        INFO(p.keyword << "=" << p.value);
        CHECK(check_mail(mail("a@b.c", {p}), full_offer()).verdict == ParamVerdict::syntax);
    }
    CHECK(check_mail(mail("a@b.c", {{"ENVID", std::string(100, 'e')}}), full_offer()).verdict ==
          ParamVerdict::ok);
    CHECK(check_mail(mail("a@b.c", {{"RET", "FULL"}, {"RET", "HDRS"}}), full_offer()).verdict ==
          ParamVerdict::syntax);
    CHECK(check_mail(mail("a@b.c", {{"SIZE", "1001"}}), full_offer()).verdict ==
          ParamVerdict::too_big);
    CHECK(check_mail(mail("a@b.c", {{"SIZE", "1000"}}), full_offer()).verdict == ParamVerdict::ok);
}

TEST_CASE("non-ASCII addresses need SMTPUTF8", "[smtp][extensions]") {
    const std::string unicode = "j\xC3\xB8rn@example.com";
    CHECK(check_mail(mail(unicode, {}), full_offer()).verdict == ParamVerdict::needs_smtputf8);
    CHECK(check_mail(mail(unicode, {{"SMTPUTF8", ""}}), full_offer()).verdict == ParamVerdict::ok);
    CHECK(check_rcpt(mail(unicode, {}), full_offer(), false).verdict ==
          ParamVerdict::needs_smtputf8);
    CHECK(check_rcpt(mail(unicode, {}), full_offer(), true).verdict == ParamVerdict::ok);
}

TEST_CASE("RCPT DSN parameters", "[smtp][extensions]") {
    auto r = check_rcpt(mail("r@b.c", {{"NOTIFY", "success,Delay"}, {"ORCPT", "RFC822;r+40b.c"}}),
                        full_offer(), false);
    CHECK(r.verdict == ParamVerdict::ok);
    CHECK(r.forward == " NOTIFY=SUCCESS,DELAY ORCPT=rfc822;r@b.c");
    CHECK(check_rcpt(mail("r@b.c", {{"NOTIFY", "NEVER"}}), full_offer(), false).forward ==
          " NOTIFY=NEVER");
    CHECK(check_rcpt(mail("r@b.c", {{"ORCPT", "utf-8;j\\x{F8}rn@b.c"}}), full_offer(), true)
              .forward == " ORCPT=utf-8;j\\x{F8}rn@b.c");
    for (const Parameter& p :
         std::vector<Parameter>{{"NOTIFY", "NEVER,SUCCESS"},
                                {"NOTIFY", "SUCCESS,SUCCESS"},
                                {"NOTIFY", "ALWAYS"},
                                {"NOTIFY", ""},
                                {"NOTIFY", "SUCCESS,"},
                                {"ORCPT", "r@b.c"},
                                {"ORCPT", ";r@b.c"},
                                {"ORCPT", "rfc822;"},
                                {"ORCPT", "rfc822;a+2"},
                                {"ORCPT", "x400;whatever"},
                                {"ORCPT", "utf-8;j\\x{F8}rn@b.c"},
                                {"ORCPT", "rfc822;" + std::string(500, 'o')}}) {
        INFO(p.keyword << "=" << p.value);
        CHECK(check_rcpt(mail("r@b.c", {p}), full_offer(), false).verdict == ParamVerdict::syntax);
    }
    CHECK(check_rcpt(mail("r@b.c", {{"ORCPT", "utf-8;a+b"}}), full_offer(), true).verdict ==
          ParamVerdict::syntax);
    const Offer no_dsn{1000, true, true, true, false};
    CHECK(check_rcpt(mail("r@b.c", {{"NOTIFY", "NEVER"}}), no_dsn, false).verdict ==
          ParamVerdict::unsupported);
    CHECK(check_rcpt(mail("r@b.c", {{"ORCPT", "rfc822;r@b.c"}}), no_dsn, false).verdict ==
          ParamVerdict::unsupported);
    CHECK(check_rcpt(mail("r@b.c", {{"SIZE", "1"}}), full_offer(), false).verdict ==
          ParamVerdict::unsupported);
}
