// Parser for replies coming from the backend MTA. Strict: a malformed reply is an
// error (the caller closes the backend), never guessed at.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portcullis::smtp {

struct BackendReply {
    int code = 0;                    // 200..599
    std::vector<std::string> lines;  // text of each line, after "NNN-" / "NNN "
    // Re-encoded wire form with our own CRLFs ("NNN-text\r\n...NNN text\r\n").
    std::string wire() const;
    bool positive() const { return code >= 200 && code < 400; }
    bool transient() const { return code >= 400 && code < 500; }
    bool permanent() const { return code >= 500; }
    // Enhanced status code (e.g. "2.0.0") at the start of the first line, or "".
    std::string enhanced() const;
};

class ReplyParser {
  public:
    explicit ReplyParser(std::size_t max_line = 2048, std::size_t max_lines = 64)
        : max_line_(max_line), max_lines_(max_lines) {}

    enum class Status { need_more, reply, error };
    struct Result {
        Status status = Status::need_more;
        std::size_t consumed = 0;  // bytes of `buffer` used
        BackendReply reply;        // for Status::reply
        std::string error;         // for Status::error: why
    };

    // Parses from the front of `buffer`. Lines end at CRLF (a bare LF is accepted,
    // a bare CR inside a line is an error, as are NUL and other controls). Each line
    // is "NNN-text" or "NNN text" or "NNN"; every line of one reply has the same code.
    Result next(std::string_view buffer);

  private:
    std::size_t max_line_;
    std::size_t max_lines_;
    BackendReply partial_;
};

}  // namespace portcullis::smtp
