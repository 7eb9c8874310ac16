// Splits a byte stream into command lines with a hard length limit.
#pragma once

#include <cstddef>
#include <string_view>

namespace portcullis::smtp {

class LineReader {
  public:
    // `max_line` counts the terminator (CRLF) too.
    explicit LineReader(std::size_t max_line) : max_line_(max_line) {}

    enum class Kind {
        line,       // `text` is one line without its LF / CRLF terminator
        too_long,   // a line longer than max_line ended; its bytes were dropped
        need_more,  // no complete line yet; keep the unconsumed bytes and feed more
    };
    struct Result {
        Kind kind = Kind::need_more;
        std::string_view text;     // points into the buffer passed to next()
        std::size_t consumed = 0;  // bytes of the buffer this call used up
    };

    // Looks at the front of `buffer`. Lines end at LF; a CR right before the LF is
    // stripped. While an over-long line is being skipped, every byte is consumed (so
    // memory stays bounded) and too_long is reported once, when that line ends.
    // With need_more and consumed == 0 the caller keeps the bytes and waits; the
    // caller must never hold more than max_line bytes because the reader consumes
    // (discards) as soon as a partial line exceeds the limit.
    Result next(std::string_view buffer);

    bool skipping() const { return skipping_; }

  private:
    std::size_t max_line_;
    bool skipping_ = false;
};

}  // namespace portcullis::smtp
