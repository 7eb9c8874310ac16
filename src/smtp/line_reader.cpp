#include "smtp/line_reader.hpp"

#include <cstring>

namespace portcullis::smtp {
namespace {

// Offset of the first LF in `buffer`, or npos.
std::size_t find_lf(std::string_view buffer) {
    if (buffer.empty()) {
        return std::string_view::npos;
    }
    const void* lf = std::memchr(buffer.data(), '\n', buffer.size());
    return lf == nullptr ? std::string_view::npos
                         : static_cast<std::size_t>(static_cast<const char*>(lf) - buffer.data());
}

}  // namespace

// A line's length is measured as its text plus CRLF, whichever terminator it used, so
// the limit on the text is the same for "text\r\n" and "text\n".
LineReader::Result LineReader::next(std::string_view buffer) {
    const std::size_t lf = find_lf(buffer);
    if (skipping_) {
        if (lf == std::string_view::npos) {
            skipped_ += buffer.size();
            if (skipped_ > max_skip_ && !runaway_reported_) {
                runaway_reported_ = true;
                return {Kind::runaway, {}, buffer.size()};
            }
            return {Kind::need_more, {}, buffer.size()};
        }
        // The line ends here: too_long, or runaway if it went past max_skip (which is
        // then reported now, or was already: its end is then just consumed).
        skipping_ = false;
        const bool past_skip = skipped_ + lf + 1 > max_skip_;
        const bool reported = runaway_reported_;
        skipped_ = 0;
        runaway_reported_ = false;
        if (reported) {
            return {Kind::need_more, {}, lf + 1};
        }
        return {past_skip ? Kind::runaway : Kind::too_long, {}, lf + 1};
    }
    if (lf == std::string_view::npos) {
        if (buffer.size() >= max_line_) {  // with its LF, this line cannot fit any more
            skipping_ = true;
            skipped_ = buffer.size();
            if (skipped_ > max_skip_) {
                runaway_reported_ = true;
                return {Kind::runaway, {}, buffer.size()};
            }
            return {Kind::need_more, {}, buffer.size()};
        }
        return {Kind::need_more, {}, 0};
    }
    std::string_view text = buffer.substr(0, lf);
    if (!text.empty() && text.back() == '\r') {
        text.remove_suffix(1);
    }
    if (text.size() + 2 > max_line_) {
        return {lf + 1 > max_skip_ ? Kind::runaway : Kind::too_long, {}, lf + 1};
    }
    return {Kind::line, text, lf + 1};
}

}  // namespace portcullis::smtp
