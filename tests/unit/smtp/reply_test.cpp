#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "smtp/reply.hpp"

using namespace portcullis::smtp;

TEST_CASE("reply table texts", "[smtp][reply]") {
    REQUIRE(reply(ReplyId::starttls_go) == "220 2.0.0 Ready to start TLS\r\n");
    REQUIRE(reply(ReplyId::closing) == "221 2.0.0 Bye\r\n");
    REQUIRE(reply(ReplyId::auth_ok) == "235 2.7.0 Authentication successful\r\n");
    REQUIRE(reply(ReplyId::ok) == "250 2.0.0 OK\r\n");
    REQUIRE(reply(ReplyId::sender_ok) == "250 2.1.0 Sender OK\r\n");
    REQUIRE(reply(ReplyId::recipient_ok) == "250 2.1.5 Recipient OK\r\n");
    REQUIRE(reply(ReplyId::reset_ok) == "250 2.0.0 Reset\r\n");
    REQUIRE(reply(ReplyId::vrfy_cannot) ==
            "252 2.5.0 Cannot VRFY user, but will accept message\r\n");
    REQUIRE(reply(ReplyId::data_go) == "354 End data with <CR><LF>.<CR><LF>\r\n");
    REQUIRE(reply(ReplyId::shutting_down) == "421 4.3.2 Service shutting down\r\n");
    REQUIRE(reply(ReplyId::timeout) == "421 4.4.2 Timeout, closing connection\r\n");
    REQUIRE(reply(ReplyId::backend_unavailable) == "421 4.4.1 Backend unavailable\r\n");
    REQUIRE(reply(ReplyId::backend_lost) == "451 4.4.2 Backend connection lost\r\n");
    REQUIRE(reply(ReplyId::backend_out_of_step) ==
            "421 4.4.2 Backend out of step, closing connection\r\n");
    REQUIRE(reply(ReplyId::temp_auth_failure) == "454 4.7.0 Temporary authentication failure\r\n");
    REQUIRE(reply(ReplyId::tls_not_available) == "454 4.7.0 TLS not available\r\n");
    REQUIRE(reply(ReplyId::syntax_unknown) == "500 5.5.1 Command unrecognized\r\n");
    REQUIRE(reply(ReplyId::line_too_long) == "500 5.5.2 Line too long\r\n");
    REQUIRE(reply(ReplyId::param_syntax) == "501 5.5.4 Syntax error in parameters\r\n");
    REQUIRE(reply(ReplyId::auth_cancelled) == "501 5.7.0 Authentication cancelled\r\n");
    REQUIRE(reply(ReplyId::bad_base64) == "501 5.5.2 Invalid base64 data\r\n");
    REQUIRE(reply(ReplyId::not_implemented) == "502 5.5.1 Command not implemented\r\n");
    REQUIRE(reply(ReplyId::bad_sequence) == "503 5.5.1 Bad sequence of commands\r\n");
    REQUIRE(reply(ReplyId::already_authenticated) == "503 5.5.1 Already authenticated\r\n");
    REQUIRE(reply(ReplyId::mechanism_unknown) ==
            "504 5.5.4 Unrecognized authentication mechanism\r\n");
    REQUIRE(reply(ReplyId::auth_required) == "530 5.7.0 Authentication required\r\n");
    REQUIRE(reply(ReplyId::starttls_first) == "530 5.7.0 Must issue a STARTTLS command first\r\n");
    REQUIRE(reply(ReplyId::bad_credentials) == "535 5.7.8 Authentication credentials invalid\r\n");
    REQUIRE(reply(ReplyId::encryption_required) ==
            "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
    REQUIRE(reply(ReplyId::too_many_recipients) == "452 4.5.3 Too many recipients\r\n");
    REQUIRE(reply(ReplyId::message_too_big) == "552 5.3.4 Message size exceeds fixed limit\r\n");
    REQUIRE(reply(ReplyId::sender_not_owned) == "553 5.7.1 Sender address not owned by user\r\n");
    REQUIRE(reply(ReplyId::bare_line_ending) ==
            "550 5.6.0 Bare CR or LF in message; use CRLF line endings\r\n");
    REQUIRE(reply(ReplyId::bad_address) == "553 5.1.3 Bad address syntax\r\n");
    REQUIRE(reply(ReplyId::param_unknown) == "555 5.5.4 Unsupported parameter\r\n");
    REQUIRE(reply(ReplyId::no_valid_recipients) == "554 5.5.1 No valid recipients\r\n");
    REQUIRE(reply(ReplyId::bad_characters) ==
            "500 5.5.2 Syntax error, invalid character in command\r\n");
    REQUIRE(reply(ReplyId::data_line_too_long) ==
            "554 5.6.0 Message has a text line longer than the limit\r\n");
}

TEST_CASE("every reply is one well-formed line", "[smtp][reply]") {
    for (int i = 0; i <= static_cast<int>(ReplyId::header_from_invalid); ++i) {
        const auto r = reply(static_cast<ReplyId>(i));
        CAPTURE(i, r);
        REQUIRE(r.size() > 6);
        REQUIRE(r.substr(r.size() - 2) == "\r\n");
        REQUIRE(r.find_first_of("\r\n") == r.size() - 2);
        REQUIRE(r[0] >= '2');
        REQUIRE(r[0] <= '5');
        REQUIRE(r[3] == ' ');
    }
}

TEST_CASE("abuse-control replies", "[smtp][reply]") {
    REQUIRE(reply(ReplyId::rate_limited) == "450 4.7.1 Rate limit exceeded\r\n");
    REQUIRE(reply(ReplyId::rate_limited_data) == "451 4.7.1 Rate limit exceeded\r\n");
    REQUIRE(reply(ReplyId::auth_busy) ==
            "454 4.7.0 Too many authentications in progress, try again later\r\n");
    REQUIRE(reply(ReplyId::too_many_bad_commands) ==
            "421 4.7.0 Too many bad commands, closing connection\r\n");
    REQUIRE(reply(ReplyId::auth_deadline) ==
            "421 4.4.2 Authentication took too long, closing connection\r\n");
    REQUIRE(reply(ReplyId::data_timeout) ==
            "421 4.4.2 Message transfer took too long, closing connection\r\n");
    REQUIRE(reply(ReplyId::header_from_not_allowed) ==
            "550 5.7.1 From: header address not allowed for this sender\r\n");
    REQUIRE(reply(ReplyId::header_from_invalid) ==
            "550 5.7.1 Message must have exactly one valid From: address\r\n");
    REQUIRE(with_retry_hint(ReplyId::rate_limited, "messages", 37) ==
            "450 4.7.1 Rate limit exceeded (messages), try again in 37s\r\n");
    REQUIRE(with_retry_hint(ReplyId::rate_limited_data, "bytes\r\n", 1) ==
            "451 4.7.1 Rate limit exceeded (bytes  ), try again in 1s\r\n");
}

TEST_CASE("greeting carries the host name", "[smtp][reply]") {
    REQUIRE(greeting("mail.example.com") == "220 mail.example.com ESMTP ready\r\n");
    REQUIRE(greeting("evil\r\n250 x") == "220 evil  250 x ESMTP ready\r\n");
}

TEST_CASE("multiline and single replies", "[smtp][reply]") {
    const std::vector<std::string> lines{"mail.example.com", "PIPELINING", "AUTH PLAIN LOGIN"};
    REQUIRE(multiline(250, lines) ==
            "250-mail.example.com\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n");
    REQUIRE(multiline(250, std::vector<std::string>{"only"}) == "250 only\r\n");
    REQUIRE(multiline(250, std::vector<std::string>{}) == "250\r\n");
    REQUIRE(multiline(250, std::vector<std::string>{"a\r\nb"}) == "250 a  b\r\n");
    REQUIRE(single(334, "VXNlcm5hbWU6") == "334 VXNlcm5hbWU6\r\n");
    REQUIRE(single(334, "") == "334 \r\n");
    REQUIRE(single(250, std::string("x\0y", 3)) == "250 x y\r\n");
}

TEST_CASE("backend transparency replies", "[smtp][reply]") {
    REQUIRE(reply(ReplyId::backend_identity_failed) ==
            "421 4.3.0 Backend cannot be told the client identity, closing connection\r\n");
    REQUIRE(reply(ReplyId::backend_tls_failed) ==
            "421 4.3.0 Backend connection cannot be secured, closing connection\r\n");
    REQUIRE(reply(ReplyId::smtputf8_required) ==
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
    REQUIRE(reply(ReplyId::state_unavailable) ==
            "451 4.3.0 Shared limit state unavailable, try again later\r\n");
}
