#include "smtp/backend_reply.hpp"

#include <algorithm>
#include <cstring>

namespace portcullis::smtp {
namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// RFC 5321 textstring (HT, SP, printable ASCII) plus 8-bit bytes some servers send.
bool is_text_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == '\t' || (u >= 0x20 && u != 0x7F);
}

char safe_char(char c) {
    return (c == '\r' || c == '\n' || c == '\0') ? ' ' : c;
}

struct ReplyLine {
    int code = 0;
    bool last = false;
    std::string_view text;
};

// "NNN", "NNN text" or "NNN-text"; an error message when malformed.
std::optional<ReplyLine> parse_line(std::string_view line, std::string& error) {
    if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
        line[0] < '2' || line[0] > '5') {
        error = "reply line does not start with a 2xx-5xx code";
        return std::nullopt;
    }
    ReplyLine r;
    r.code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (line.size() == 3) {
        r.last = true;
        return r;
    }
    if (line[3] != ' ' && line[3] != '-') {
        error = "reply code not followed by space or hyphen";
        return std::nullopt;
    }
    r.last = line[3] == ' ';
    r.text = line.substr(4);
    if (!std::all_of(r.text.begin(), r.text.end(), is_text_char)) {
        error = "control character in reply text";
        return std::nullopt;
    }
    return r;
}

// Digits of one enhanced-code field: 1-3 of them; returns how many, 0 if invalid.
std::size_t field_digits(std::string_view s, std::size_t pos) {
    std::size_t n = 0;
    while (pos + n < s.size() && is_digit(s[pos + n]) && n < 4) {
        ++n;
    }
    return n <= 3 ? n : 0;
}

}  // namespace

std::string BackendReply::wire() const {
    const std::string code_text = std::to_string(code);
    std::string out;
    if (lines.empty()) {
        return code_text + "\r\n";
    }
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const bool last = i + 1 == lines.size();
        out += code_text;
        if (!last || !lines[i].empty()) {
            out.push_back(last ? ' ' : '-');
        }
        std::transform(lines[i].begin(), lines[i].end(), std::back_inserter(out), safe_char);
        out += "\r\n";
    }
    return out;
}

std::string BackendReply::enhanced() const {
    if (lines.empty()) {
        return {};
    }
    const std::string_view s = lines.front();
    if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') {
        return {};
    }
    const std::size_t y = field_digits(s, 2);
    if (y == 0 || 2 + y >= s.size() || s[2 + y] != '.') {
        return {};
    }
    const std::size_t z = field_digits(s, 3 + y);
    const std::size_t end = 3 + y + z;
    if (z == 0 || (end < s.size() && s[end] != ' ')) {
        return {};
    }
    return std::string(s.substr(0, end));
}

ReplyParser::Result ReplyParser::next(std::string_view buffer) {
    Result result;
    std::size_t pos = 0;
    const auto fail = [&](std::string why) {
        partial_ = BackendReply{};
        result.status = Status::error;
        result.consumed = pos;
        result.error = std::move(why);
        return std::move(result);
    };
    while (pos < buffer.size()) {
        const std::string_view rest = buffer.substr(pos);
        const void* lf = std::memchr(rest.data(), '\n', rest.size());
        if (lf == nullptr) {
            if (rest.size() >= max_line_) {
                return fail("reply line too long");
            }
            break;
        }
        const auto length =
            static_cast<std::size_t>(static_cast<const char*>(lf) - rest.data()) + 1;
        if (length > max_line_) {
            return fail("reply line too long");
        }
        std::string_view text = rest.substr(0, length - 1);
        if (!text.empty() && text.back() == '\r') {
            text.remove_suffix(1);
        }
        std::string error;
        const auto line = parse_line(text, error);
        if (!line) {
            return fail(std::move(error));
        }
        if (!partial_.lines.empty() && line->code != partial_.code) {
            return fail("reply code changes within a multi-line reply");
        }
        if (partial_.lines.size() >= max_lines_) {
            return fail("too many lines in one reply");
        }
        partial_.code = line->code;
        partial_.lines.emplace_back(line->text);
        pos += length;
        if (line->last) {
            result.status = Status::reply;
            result.consumed = pos;
            result.reply = std::move(partial_);
            partial_ = BackendReply{};
            return result;
        }
    }
    result.consumed = pos;  // complete continuation lines are kept in partial_
    return result;
}

}  // namespace portcullis::smtp
