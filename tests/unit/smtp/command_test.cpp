#include <catch2/catch.hpp>

#include <string>

#include "smtp/command.hpp"

using namespace portcullis::smtp;

namespace {

PathArgument mail_ok(std::string_view argument) {
    auto r = parse_mail_from(argument);
    INFO(argument);
    REQUIRE(r.path.has_value());
    return *r.path;
}

PathArgument rcpt_ok(std::string_view argument) {
    auto r = parse_rcpt_to(argument);
    INFO(argument);
    REQUIRE(r.path.has_value());
    return *r.path;
}

PathError mail_error(std::string_view argument) {
    const auto r = parse_mail_from(argument);
    INFO(argument);
    REQUIRE_FALSE(r.path.has_value());
    return r.error;
}

PathError rcpt_error(std::string_view argument) {
    const auto r = parse_rcpt_to(argument);
    INFO(argument);
    REQUIRE_FALSE(r.path.has_value());
    return r.error;
}

}  // namespace

TEST_CASE("parse_command: verbs are case-insensitive", "[smtp][command]") {
    REQUIRE(parse_command("EHLO client.example").verb == Verb::ehlo);
    REQUIRE(parse_command("ehlo x").verb == Verb::ehlo);
    REQUIRE(parse_command("HeLo x").verb == Verb::helo);
    REQUIRE(parse_command("mail FROM:<a@b>").verb == Verb::mail);
    REQUIRE(parse_command("Rcpt TO:<a@b>").verb == Verb::rcpt);
    REQUIRE(parse_command("DATA").verb == Verb::data);
    REQUIRE(parse_command("rset").verb == Verb::rset);
    REQUIRE(parse_command("NOOP").verb == Verb::noop);
    REQUIRE(parse_command("quit").verb == Verb::quit);
    REQUIRE(parse_command("VRFY x").verb == Verb::vrfy);
    REQUIRE(parse_command("EXPN x").verb == Verb::expn);
    REQUIRE(parse_command("HELP").verb == Verb::help);
    REQUIRE(parse_command("StartTLS").verb == Verb::starttls);
    REQUIRE(parse_command("AUTH PLAIN").verb == Verb::auth);
    REQUIRE(parse_command("BDAT 10 LAST").verb == Verb::bdat);
}

TEST_CASE("parse_command: unknown and malformed verbs", "[smtp][command]") {
    REQUIRE(parse_command("").verb == Verb::unknown);
    REQUIRE(parse_command("XCLIENT ADDR=1.2.3.4").verb == Verb::unknown);
    REQUIRE(parse_command("MAILFROM:<a@b>").verb == Verb::unknown);
    REQUIRE(parse_command("MAIL:").verb == Verb::unknown);
    REQUIRE(parse_command(" MAIL FROM:<a@b>").verb == Verb::unknown);
    REQUIRE(parse_command("NOOP\tx").verb == Verb::unknown);
    REQUIRE(parse_command("DATAX").verb == Verb::unknown);
    REQUIRE(parse_command("DAT").verb == Verb::unknown);
}

TEST_CASE("parse_command: argument after exactly one space", "[smtp][command]") {
    const auto mail = parse_command("MAIL FROM:<a@b>");
    REQUIRE(mail.argument == "FROM:<a@b>");
    REQUIRE(parse_command("AUTH PLAIN dGVzdA==   ").argument == "PLAIN dGVzdA==");
    REQUIRE(parse_command("MAIL  FROM:<a@b>").argument == " FROM:<a@b>");
    REQUIRE(parse_command("QUIT").argument.empty());
    REQUIRE(parse_command("QUIT   ").argument.empty());
    REQUIRE(parse_command("EHLO ").argument.empty());
}

TEST_CASE("parse_command: NUL and other controls are bad bytes in any command", "[smtp][command]") {
    using namespace std::string_literals;
    for (const std::string& line :
         {"EHLO a\0b"s, "EHLO client\x01"s, "MAIL FROM:<a\0@b>"s, "RCPT TO:<a@b>\x1b[2J"s,
          "AUTH PLAIN \0dGVzdA=="s, "XYZZY \x7f"s, "NOOP\r"s, "\0"s, "DATA\x0b"s,
          "MAIL FROM:<j\xc3\xb6rg@b>\x00"s}) {
        INFO(line);
        CHECK(parse_command(line).bad_bytes == BadBytes::control);
    }
}

TEST_CASE("parse_command: 8-bit bytes only in the argument of MAIL and RCPT", "[smtp][command]") {
    CHECK(parse_command("EHLO cli\xc3\xa9nt.example").bad_bytes == BadBytes::non_ascii);
    CHECK(parse_command("HELO \xff").bad_bytes == BadBytes::non_ascii);
    CHECK(parse_command("AUTH PLAIN \x80\x80\x80\x80").bad_bytes == BadBytes::non_ascii);
    CHECK(parse_command("NO\xc3\x96P").bad_bytes == BadBytes::non_ascii);
    CHECK(parse_command("VRFY j\xc3\xb6rg").bad_bytes == BadBytes::non_ascii);
    CHECK(parse_command("M\xc3\x80IL FROM:<a@b>").bad_bytes == BadBytes::non_ascii);
    // The path parser and the SMTPUTF8 rules judge these.
    CHECK(parse_command("MAIL FROM:<j\xc3\xb6rg@b> SMTPUTF8").bad_bytes == BadBytes::none);
    CHECK(parse_command("RCPT TO:<\xc3\xb6@b>").bad_bytes == BadBytes::none);
    CHECK(parse_command("mail FROM:<\xff@b>").bad_bytes == BadBytes::none);
    CHECK(mail_error("FROM:<\xff@b>") == PathError::bad_address);  // not UTF-8
}

TEST_CASE("parse_command: printable ASCII and TAB are fine", "[smtp][command]") {
    CHECK(parse_command("EHLO client.example").bad_bytes == BadBytes::none);
    CHECK(parse_command("MAIL FROM:<a@b>\tSIZE=10").bad_bytes == BadBytes::none);
    CHECK(parse_command("XYZZY ~!@#$%^&*()").bad_bytes == BadBytes::none);
    CHECK(parse_command("").bad_bytes == BadBytes::none);
}

TEST_CASE("parse_mail_from: paths and the null path", "[smtp][command]") {
    REQUIRE(mail_ok("FROM:<alice@example.com>").address == "alice@example.com");
    REQUIRE(mail_ok("from:<alice@example.com>").address == "alice@example.com");
    REQUIRE(mail_ok("FROM: <alice@example.com>").address == "alice@example.com");
    REQUIRE(mail_ok("FROM:<>").address.empty());
    REQUIRE(mail_ok("FROM:<@relay.example,@b.example:alice@example.com>").address ==
            "alice@example.com");
    REQUIRE(mail_ok("FROM:<\"a b\"@x>").address == "\"a b\"@x");
    REQUIRE(mail_ok("FROM:<\"a>b@c\"@x>").address == "\"a>b@c\"@x");
    REQUIRE(mail_ok("FROM:<\"a\\\"b\"@x>").address == "\"a\\\"b\"@x");
    REQUIRE(mail_ok("FROM:<user@[192.0.2.1]>").address == "user@[192.0.2.1]");
    REQUIRE(mail_ok("FROM:<user@[IPv6:2001:db8::1]>").address == "user@[IPv6:2001:db8::1]");
    REQUIRE(mail_ok("FROM:<jörg@bücher.example>").address == "jörg@bücher.example");
    REQUIRE(mail_ok("FROM:<a+tag=x/y@sub.example-one.org>").address ==
            "a+tag=x/y@sub.example-one.org");
}

TEST_CASE("parse_mail_from: syntax errors", "[smtp][command]") {
    REQUIRE(mail_error("") == PathError::syntax);
    REQUIRE(mail_error("TO:<a@b>") == PathError::syntax);
    REQUIRE(mail_error("FROM<a@b>") == PathError::syntax);
    REQUIRE(mail_error("FROM:a@b") == PathError::syntax);
    REQUIRE(mail_error("FROM:  <a@b>") == PathError::syntax);
    REQUIRE(mail_error("FROM:<a@b") == PathError::syntax);
    REQUIRE(mail_error("FROM:<a@b>SIZE=10") == PathError::syntax);
    REQUIRE(mail_error("FROM:<\"a@b>") == PathError::syntax);
}

TEST_CASE("parse_mail_from: bad addresses", "[smtp][command]") {
    REQUIRE(mail_error("FROM:<ab>") == PathError::bad_address);
    REQUIRE(mail_error("FROM:<a@b@c>") == PathError::bad_address);
    REQUIRE(mail_error("FROM:<@b>") == PathError::bad_address);
    REQUIRE(mail_error("FROM:<a@>") == PathError::bad_address);
    REQUIRE(mail_error("FROM:<a b@c>") == PathError::bad_address);
    REQUIRE(mail_error("FROM:<<a@b>>") == PathError::syntax);
    REQUIRE(mail_error("FROM:<a<b@c>") == PathError::bad_address);
    REQUIRE(mail_error(std::string("FROM:<a\x01@b>")) == PathError::bad_address);
    REQUIRE(mail_error(std::string("FROM:<a\x7f@b>")) == PathError::bad_address);
    REQUIRE(mail_error(std::string("FROM:<a\r\n@b>")) == PathError::bad_address);
    REQUIRE(mail_error(std::string("FROM:<\"a") + '\0' + "b\"@c>") == PathError::bad_address);
    REQUIRE(mail_error(std::string("FROM:<\"a\tb\"@c>")) == PathError::bad_address);
    REQUIRE(mail_error("FROM:<a@b c>") == PathError::bad_address);
    REQUIRE(mail_error("FROM:<a@b\"c\">") == PathError::bad_address);
    REQUIRE(mail_error("FROM:<a,b@c>") == PathError::bad_address);
    REQUIRE(mail_error("FROM:<a@[1.2.3.4>") == PathError::bad_address);
    REQUIRE(mail_error("FROM:<postmaster>") == PathError::bad_address);
    REQUIRE(mail_error("FROM:<@relay:>") == PathError::bad_address);
    REQUIRE(mail_error("FROM:<@relay,a@b>") == PathError::bad_address);
    REQUIRE(mail_error("FROM:<@,@b:a@b>") == PathError::bad_address);
}

TEST_CASE("parse_mail_from: UTF-8 must be well-formed", "[smtp][command]") {
    REQUIRE(mail_ok("FROM:<\xe2\x82\xac@x>").address == "\xe2\x82\xac@x");
    REQUIRE(mail_ok("FROM:<\xf0\x9f\x98\x80@x>").address == "\xf0\x9f\x98\x80@x");
    REQUIRE(mail_error("FROM:<\xc3@x>") == PathError::bad_address);              // truncated
    REQUIRE(mail_error("FROM:<\xc0\xaf@x>") == PathError::bad_address);          // overlong
    REQUIRE(mail_error("FROM:<\xe0\x80\xaf@x>") == PathError::bad_address);      // overlong
    REQUIRE(mail_error("FROM:<\xed\xa0\x80@x>") == PathError::bad_address);      // surrogate
    REQUIRE(mail_error("FROM:<\xf4\x90\x80\x80@x>") == PathError::bad_address);  // > U+10FFFF
    REQUIRE(mail_error("FROM:<\x80@x>") == PathError::bad_address);  // lone continuation
    REQUIRE(mail_error("FROM:<\xff@x>") == PathError::bad_address);
}

TEST_CASE("parse_mail_from: address length limit", "[smtp][command]") {
    const std::string domain = "@example.com";
    const std::string at_limit = std::string(254 - domain.size(), 'a') + domain;
    REQUIRE(mail_ok("FROM:<" + at_limit + ">").address == at_limit);
    REQUIRE(mail_error("FROM:<a" + at_limit + ">") == PathError::bad_address);
}

TEST_CASE("parse_mail_from: ESMTP parameters", "[smtp][command]") {
    const auto p = mail_ok("FROM:<a@b> size=1000 BODY=8BITMIME SMTPUTF8 x-foo=a+b");
    REQUIRE(p.parameters.size() == 4);
    REQUIRE(p.parameters[0] == Parameter{"SIZE", "1000"});
    REQUIRE(p.parameters[1] == Parameter{"BODY", "8BITMIME"});
    REQUIRE(p.parameters[2] == Parameter{"SMTPUTF8", ""});
    REQUIRE(p.parameters[3] == Parameter{"X-FOO", "a+b"});
    REQUIRE(mail_ok("FROM:<> AUTH=<>").parameters.front() == Parameter{"AUTH", "<>"});
    REQUIRE(mail_ok("FROM:<a@b>  SIZE=1").parameters.size() == 1);
    REQUIRE(mail_ok("FROM:<a@b>").parameters.empty());

    REQUIRE(mail_error("FROM:<a@b> SIZE=") == PathError::bad_parameter);
    REQUIRE(mail_error("FROM:<a@b> =1") == PathError::bad_parameter);
    REQUIRE(mail_error("FROM:<a@b> -X=1") == PathError::bad_parameter);
    REQUIRE(mail_error("FROM:<a@b> S_IZE=1") == PathError::bad_parameter);
    REQUIRE(mail_error("FROM:<a@b> SIZE=1=2") == PathError::bad_parameter);
    REQUIRE(mail_error("FROM:<a@b> SIZE=\x01") == PathError::bad_parameter);
    REQUIRE(mail_error("FROM:<a@b> SIZE=\xc3\xa9") == PathError::bad_parameter);
}

TEST_CASE("parse_rcpt_to", "[smtp][command]") {
    REQUIRE(rcpt_ok("TO:<bob@example.org>").address == "bob@example.org");
    REQUIRE(rcpt_ok("to: <bob@example.org> NOTIFY=NEVER").parameters.front() ==
            Parameter{"NOTIFY", "NEVER"});
    REQUIRE(rcpt_ok("TO:<postmaster>").address == "postmaster");
    REQUIRE(rcpt_ok("TO:<PostMaster>").address == "PostMaster");
    REQUIRE(rcpt_ok("TO:<@hop:bob@example.org>").address == "bob@example.org");
    REQUIRE(rcpt_error("TO:<>") == PathError::bad_address);
    REQUIRE(rcpt_error("TO:<postmistress>") == PathError::bad_address);
    REQUIRE(rcpt_error("FROM:<a@b>") == PathError::syntax);
    REQUIRE(rcpt_error("TO:bob@example.org") == PathError::syntax);
}
