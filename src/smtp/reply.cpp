#include "smtp/reply.hpp"

#include <string>

namespace portcullis::smtp {
namespace {

// `ready` without the host name: the greeting is "220 " + host + kReadyText.
constexpr std::string_view kReadyText = " ESMTP ready\r\n";

// Appends `text` with CR, LF and NUL replaced by spaces, so no caller can split a reply.
void append_text(std::string& out, std::string_view text) {
    for (const char c : text) {
        out.push_back((c == '\r' || c == '\n' || c == '\0') ? ' ' : c);
    }
}

void append_code(std::string& out, int code) {
    out += std::to_string(code);
}

}  // namespace

std::string_view reply(ReplyId id) {
    switch (id) {
        case ReplyId::ready:
            return "220 ESMTP ready\r\n";
        case ReplyId::starttls_go:
            return "220 2.0.0 Ready to start TLS\r\n";
        case ReplyId::closing:
            return "221 2.0.0 Bye\r\n";
        case ReplyId::auth_ok:
            return "235 2.7.0 Authentication successful\r\n";
        case ReplyId::ok:
            return "250 2.0.0 OK\r\n";
        case ReplyId::sender_ok:
            return "250 2.1.0 Sender OK\r\n";
        case ReplyId::recipient_ok:
            return "250 2.1.5 Recipient OK\r\n";
        case ReplyId::reset_ok:
            return "250 2.0.0 Reset\r\n";
        case ReplyId::vrfy_cannot:
            return "252 2.5.0 Cannot VRFY user, but will accept message\r\n";
        case ReplyId::data_go:
            return "354 End data with <CR><LF>.<CR><LF>\r\n";
        case ReplyId::shutting_down:
            return "421 4.3.2 Service shutting down\r\n";
        case ReplyId::timeout:
            return "421 4.4.2 Timeout, closing connection\r\n";
        case ReplyId::backend_unavailable:
            return "421 4.4.1 Backend unavailable\r\n";
        case ReplyId::backend_lost:
            return "451 4.4.2 Backend connection lost\r\n";
        case ReplyId::temp_auth_failure:
            return "454 4.7.0 Temporary authentication failure\r\n";
        case ReplyId::tls_not_available:
            return "454 4.7.0 TLS not available\r\n";
        case ReplyId::syntax_unknown:
            return "500 5.5.1 Command unrecognized\r\n";
        case ReplyId::line_too_long:
            return "500 5.5.2 Line too long\r\n";
        case ReplyId::param_syntax:
            return "501 5.5.4 Syntax error in parameters\r\n";
        case ReplyId::auth_cancelled:
            return "501 5.7.0 Authentication cancelled\r\n";
        case ReplyId::bad_base64:
            return "501 5.5.2 Invalid base64 data\r\n";
        case ReplyId::not_implemented:
            return "502 5.5.1 Command not implemented\r\n";
        case ReplyId::bad_sequence:
            return "503 5.5.1 Bad sequence of commands\r\n";
        case ReplyId::already_authenticated:
            return "503 5.5.1 Already authenticated\r\n";
        case ReplyId::mechanism_unknown:
            return "504 5.5.4 Unrecognized authentication mechanism\r\n";
        case ReplyId::auth_required:
            return "530 5.7.0 Authentication required\r\n";
        case ReplyId::starttls_first:
            return "530 5.7.0 Must issue a STARTTLS command first\r\n";
        case ReplyId::bad_credentials:
            return "535 5.7.8 Authentication credentials invalid\r\n";
        case ReplyId::encryption_required:
            return "538 5.7.11 Encryption required for requested authentication mechanism\r\n";
        case ReplyId::too_many_recipients:
            return "452 4.5.3 Too many recipients\r\n";
        case ReplyId::message_too_big:
            return "552 5.3.4 Message size exceeds fixed limit\r\n";
        case ReplyId::sender_not_owned:
            return "553 5.7.1 Sender address not owned by user\r\n";
        case ReplyId::bare_line_ending:
            return "550 5.6.0 Bare CR or LF in message; use CRLF line endings\r\n";
        case ReplyId::bad_address:
            return "553 5.1.3 Bad address syntax\r\n";
        case ReplyId::param_unknown:
            return "555 5.5.4 Unsupported parameter\r\n";
        case ReplyId::no_valid_recipients:
            return "554 5.5.1 No valid recipients\r\n";
        case ReplyId::too_many_connections:
            return "421 4.7.0 Too many connections, try again later\r\n";
        case ReplyId::rate_limited:
            return "450 4.7.1 Rate limit exceeded\r\n";
        case ReplyId::rate_limited_data:
            return "451 4.7.1 Rate limit exceeded\r\n";
        case ReplyId::auth_busy:
            return "454 4.7.0 Too many authentications in progress, try again later\r\n";
        case ReplyId::too_many_bad_commands:
            return "421 4.7.0 Too many bad commands, closing connection\r\n";
        case ReplyId::auth_deadline:
            return "421 4.4.2 Authentication took too long, closing connection\r\n";
        case ReplyId::data_timeout:
            return "421 4.4.2 Message transfer took too long, closing connection\r\n";
        case ReplyId::header_from_not_allowed:
            return "550 5.7.1 From: header address not allowed for this sender\r\n";
        case ReplyId::header_from_invalid:
            return "550 5.7.1 Message must have exactly one valid From: address\r\n";
        case ReplyId::backend_identity_failed:
            return "421 4.3.0 Backend cannot be told the client identity, closing connection\r\n";
        case ReplyId::backend_tls_failed:
            return "421 4.3.0 Backend connection cannot be secured, closing connection\r\n";
        case ReplyId::smtputf8_required:
            return "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n";
        case ReplyId::backend_out_of_step:
            return "421 4.4.2 Backend out of step, closing connection\r\n";
        case ReplyId::bad_characters:
            return "500 5.5.2 Syntax error, invalid character in command\r\n";
        case ReplyId::data_line_too_long:
            return "554 5.6.0 Message has a text line longer than the limit\r\n";
        case ReplyId::state_unavailable:
            return "451 4.3.0 Shared limit state unavailable, try again later\r\n";
    }
    return "451 4.3.0 Internal error\r\n";  // unreachable for a valid ReplyId
}

std::string with_retry_hint(ReplyId id, std::string_view what, std::uint64_t seconds) {
    const std::string_view base = reply(id);
    std::string out(base.substr(0, base.size() - 2));  // without CRLF
    out += " (";
    append_text(out, what);
    out += "), try again in " + std::to_string(seconds) + "s\r\n";
    return out;
}

std::string greeting(std::string_view hostname) {
    std::string out = "220 ";
    append_text(out, hostname);
    out += kReadyText;
    return out;
}

std::string multiline(int code, std::span<const std::string> lines) {
    std::string out;
    if (lines.empty()) {
        append_code(out, code);
        out += "\r\n";
        return out;
    }
    for (std::size_t i = 0; i < lines.size(); ++i) {
        append_code(out, code);
        out.push_back(i + 1 == lines.size() ? ' ' : '-');
        append_text(out, lines[i]);
        out += "\r\n";
    }
    return out;
}

std::string single(int code, std::string_view text) {
    std::string out;
    append_code(out, code);
    out.push_back(' ');
    append_text(out, text);
    out += "\r\n";
    return out;
}

}  // namespace portcullis::smtp
