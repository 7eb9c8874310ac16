// The small, strict HTTP/1.x subset that the metrics endpoint speaks: one GET per
// connection, no body, bounded size, then Connection: close. Pure: no I/O, no globals.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace portcullis::ops::http {

// Largest request (request line and headers) that is read; more is 431.
constexpr std::size_t kMaxRequest = 8 * 1024;

struct Parse {
    enum class State { incomplete, complete, bad };
    State state = State::incomplete;
    std::string path;    // target without the query string, when complete
    int status = 0;      // when bad: the status to answer with
    std::string reason;  // when bad: why, for the body and the log
};

// Looks at everything received so far on one connection.
Parse parse_request(std::string_view received);

// A complete response with Content-Length and Connection: close.
std::string response(int status, std::string_view content_type, std::string_view body);

}  // namespace portcullis::ops::http
