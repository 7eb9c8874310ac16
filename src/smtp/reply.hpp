// The one table of replies the gateway itself sends, and the one reply encoder.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace portcullis::smtp {

enum class ReplyId {
    ready,                  // 220 <host> ESMTP ready  (text built with the host name)
    starttls_go,            // 220 2.0.0 Ready to start TLS
    closing,                // 221 2.0.0 Bye
    auth_ok,                // 235 2.7.0 Authentication successful
    ok,                     // 250 2.0.0 OK
    sender_ok,              // 250 2.1.0 Sender OK
    recipient_ok,           // 250 2.1.5 Recipient OK
    reset_ok,               // 250 2.0.0 Reset
    vrfy_cannot,            // 252 2.5.0 Cannot VRFY user, but will accept message
    data_go,                // 354 End data with <CR><LF>.<CR><LF>
    shutting_down,          // 421 4.3.2 Service shutting down
    timeout,                // 421 4.4.2 Timeout, closing connection
    backend_unavailable,    // 421 4.4.1 Backend unavailable
    backend_lost,           // 451 4.4.2 Backend connection lost
    temp_auth_failure,      // 454 4.7.0 Temporary authentication failure
    tls_not_available,      // 454 4.7.0 TLS not available
    syntax_unknown,         // 500 5.5.1 Command unrecognized
    line_too_long,          // 500 5.5.2 Line too long
    param_syntax,           // 501 5.5.4 Syntax error in parameters
    auth_cancelled,         // 501 5.7.0 Authentication cancelled
    bad_base64,             // 501 5.5.2 Invalid base64 data
    not_implemented,        // 502 5.5.1 Command not implemented
    bad_sequence,           // 503 5.5.1 Bad sequence of commands
    already_authenticated,  // 503 5.5.1 Already authenticated
    mechanism_unknown,      // 504 5.5.4 Unrecognized authentication mechanism
    auth_required,          // 530 5.7.0 Authentication required
    starttls_first,         // 530 5.7.0 Must issue a STARTTLS command first
    bad_credentials,        // 535 5.7.8 Authentication credentials invalid
    encryption_required,    // 538 5.7.11 Encryption required for requested authentication mechanism
    too_many_recipients,    // 452 4.5.3 Too many recipients
    message_too_big,        // 552 5.3.4 Message size exceeds fixed limit
    sender_not_owned,       // 553 5.7.1 Sender address not owned by user
    bare_line_ending,       // 550 5.6.0 Bare CR or LF in message; use CRLF line endings
    bad_address,            // 553 5.1.3 Bad address syntax
    param_unknown,          // 555 5.5.4 Unsupported parameter
    no_valid_recipients,    // 554 5.5.1 No valid recipients
    too_many_connections,   // 421 4.7.0 Too many connections, try again later
    rate_limited,           // 450 4.7.1 Rate limit exceeded  (with_retry_hint adds when)
    rate_limited_data,      // 451 4.7.1 Rate limit exceeded  (at end of DATA)
    auth_busy,              // 454 4.7.0 Too many authentications in progress, try again later
    too_many_bad_commands,  // 421 4.7.0 Too many bad commands, closing connection
    auth_deadline,          // 421 4.4.2 Authentication took too long, closing connection
    data_timeout,           // 421 4.4.2 Message transfer took too long, closing connection
    header_from_not_allowed,  // 550 5.7.1 From: header address not allowed for this sender
    header_from_invalid,      // 550 5.7.1 Message must have exactly one valid From: address
    backend_identity_failed,  // 421 4.3.0 Backend cannot be told the client identity, closing
                              // connection
    backend_tls_failed,       // 421 4.3.0 Backend connection cannot be secured, closing connection
    smtputf8_required,        // 553 5.6.7 Must declare SMTPUTF8 to send unicode address
    backend_out_of_step,      // 421 4.4.2 Backend out of step, closing connection
    bad_characters,           // 500 5.5.2 Syntax error, invalid character in command
    data_line_too_long,       // 554 5.6.0 Message has a text line longer than the limit
    state_unavailable,        // 451 4.3.0 Shared limit state unavailable, try again later
                              // ([state] on_state_error = "fail-closed")
};

// The full wire form, CRLF included, e.g. "530 5.7.0 Authentication required\r\n".
// `ready` is the one reply that depends on the host name; use greeting() for it.
std::string_view reply(ReplyId id);
std::string greeting(std::string_view hostname);

// `id`'s reply with what was limited and when to come back, e.g.
// "450 4.7.1 Rate limit exceeded (messages), try again in 37s\r\n".
std::string with_retry_hint(ReplyId id, std::string_view what, std::uint64_t seconds);

// Multi-line reply: "250-first\r\n250-second\r\n250 last\r\n". `lines` must not be
// empty and no line may contain CR or LF.
std::string multiline(int code, std::span<const std::string> lines);

// A single line reply with an extra text, e.g. 334 continuation "334 VXNlcm5hbWU6\r\n".
std::string single(int code, std::string_view text);

}  // namespace portcullis::smtp
