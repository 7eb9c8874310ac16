// Splits a byte stream into command lines with a hard length limit.
#pragma once

#include <cstddef>
#include <string_view>

namespace portcullis::smtp {

// How far an over-long line is skipped while waiting for its end. No client sends a
// command line anywhere near this long by mistake; past it the peer is not speaking
// SMTP (or is trying to tie the session up), and the caller gives up on the stream.
inline constexpr std::size_t kMaxSkippedLine = 64 * 1024;

class LineReader {
  public:
    // `max_line` counts the terminator (CRLF) too; `max_skip` bounds an over-long line
    // (terminator included) before it is reported as a runaway.
    explicit LineReader(std::size_t max_line, std::size_t max_skip = kMaxSkippedLine)
        : max_line_(max_line), max_skip_(max_skip) {}

    enum class Kind {
        line,       // `text` is one line without its LF / CRLF terminator
        too_long,   // a line longer than max_line ended; its bytes were dropped
        runaway,    // an over-long line went past max_skip octets; its bytes were
                    // dropped; reported once (instead of too_long), as soon as known
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
    std::size_t max_skip_;
    bool skipping_ = false;
    bool runaway_reported_ = false;
    std::size_t skipped_ = 0;  // octets of the over-long line dropped so far
};

}  // namespace portcullis::smtp
