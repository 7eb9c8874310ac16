#include <catch2/catch.hpp>

#include <string>

#include "smtp/backend_reply.hpp"

using namespace portcullis::smtp;
using Status = ReplyParser::Status;

TEST_CASE("single-line backend replies", "[smtp][backend]") {
    ReplyParser parser;
    auto r = parser.next("250 2.0.0 Ok: queued as 4Xyz\r\n221 Bye\r\n");
    REQUIRE(r.status == Status::reply);
    REQUIRE(r.consumed == 30);
    REQUIRE(r.reply.code == 250);
    REQUIRE(r.reply.lines == std::vector<std::string>{"2.0.0 Ok: queued as 4Xyz"});
    REQUIRE(r.reply.positive());
    REQUIRE(r.reply.enhanced() == "2.0.0");
    REQUIRE(r.reply.wire() == "250 2.0.0 Ok: queued as 4Xyz\r\n");

    r = parser.next("354\n");
    REQUIRE(r.status == Status::reply);
    REQUIRE(r.reply.code == 354);
    REQUIRE(r.reply.lines == std::vector<std::string>{""});
    REQUIRE(r.reply.wire() == "354\r\n");
    REQUIRE(r.reply.enhanced().empty());
}

TEST_CASE("multi-line backend replies, split anywhere", "[smtp][backend]") {
    const std::string wire = "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        ReplyParser parser;
        const auto a = parser.next(std::string_view(wire).substr(0, cut));
        REQUIRE(a.status == (cut == wire.size() ? Status::reply : Status::need_more));
        if (a.status == Status::reply) {
            REQUIRE(a.reply.wire() == wire);
            continue;
        }
        const auto b = parser.next(std::string_view(wire).substr(a.consumed));
        REQUIRE(b.status == Status::reply);
        REQUIRE(a.consumed + b.consumed == wire.size());
        REQUIRE(b.reply.code == 250);
        REQUIRE(b.reply.lines.size() == 3);
        REQUIRE(b.reply.wire() == wire);
    }
}

TEST_CASE("malformed backend replies are errors", "[smtp][backend]") {
    const char* const bad[] = {
        "25 ok\r\n",     "abc ok\r\n",   "250x\r\n",           "150 ok\r\n",
        "650 ok\r\n",    "250 a\rb\r\n", "250-a\r\n251 b\r\n", "250 a\x01\r\n",
        "250 a\x7f\r\n", "\r\n",         "250\r\r\n",
    };
    for (const char* input : bad) {
        CAPTURE(input);
        ReplyParser parser;
        REQUIRE(parser.next(input).status == Status::error);
    }
    ReplyParser parser;
    REQUIRE(parser.next(std::string("250 a\0b\r\n", 9)).status == Status::error);
    REQUIRE(parser.next("250 tab\tand 8bit \xc3\xa9\r\n").status == Status::reply);
}

TEST_CASE("backend reply limits", "[smtp][backend]") {
    ReplyParser parser(16, 3);
    REQUIRE(parser.next("250 0123456789A\r\n").status == Status::error);
    REQUIRE(parser.next("250 0123456789\r\n").status == Status::reply);
    REQUIRE(parser.next("250 0123456789ABCDEF").status == Status::error);
    REQUIRE(parser.next("250 01234567890").status == Status::need_more);
    ReplyParser lines(2048, 3);
    REQUIRE(lines.next("250-a\r\n250-b\r\n250 c\r\n").status == Status::reply);
    REQUIRE(lines.next("250-a\r\n250-b\r\n250-c\r\n250 d\r\n").status == Status::error);
}

TEST_CASE("reply classes and enhanced codes", "[smtp][backend]") {
    BackendReply r;
    r.code = 451;
    r.lines = {"4.3.0 try later"};
    REQUIRE(r.transient());
    REQUIRE_FALSE(r.positive());
    REQUIRE(r.enhanced() == "4.3.0");
    r.code = 554;
    r.lines = {"5.123.999"};
    REQUIRE(r.permanent());
    REQUIRE(r.enhanced() == "5.123.999");
    const char* const no_code[] = {"3.0.0 x",  "2.0 x",    "2.0.0x", "2.1234.0 x", "2..0 x",
                                   "2.0.1234", " 2.0.0 x", "2.0.",   "x"};
    for (const char* text : no_code) {
        CAPTURE(text);
        r.lines = {text};
        REQUIRE(r.enhanced().empty());
    }
}

TEST_CASE("wire() never emits CR, LF or NUL from text", "[smtp][backend]") {
    BackendReply r;
    r.code = 250;
    r.lines = {"a\r\n250 injected", std::string("b\0c", 3)};
    REQUIRE(r.wire() == "250-a  250 injected\r\n250 b c\r\n");
    r.lines.clear();
    REQUIRE(r.wire() == "250\r\n");
}
