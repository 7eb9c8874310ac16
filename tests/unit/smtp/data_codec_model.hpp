// Reference model of DataDecoder for tests and fuzzing: a slow, whole-input decoder
// written independently of the streaming one (split into lines first, then decode
// each), plus the independent properties the streaming decoder must satisfy.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "smtp/data_codec.hpp"

namespace portcullis::smtp::model {

struct Decoded {
    std::string out;
    std::size_t consumed = 0;
    bool finished = false;
    bool bare_seen = false;
    std::uint64_t size = 0;
    std::uint64_t longest = 0;
};

// The decoded line (dot transparency) in wire form without its line break. A complete
// line that is exactly "." (it is not the end marker, or it would not get here) is
// kept as content "." rather than un-stuffed to "".
inline void emit_content(std::string_view line, Decoded& d, bool complete = true) {
    if (line == "." && !complete) {
        return;  // undecided: the next byte tells what this dot is
    }
    const bool lone_dot = line == ".";
    const auto decoded =
        (!lone_dot && !line.empty() && line.front() == '.') ? line.substr(1) : line;
    if (!decoded.empty() && decoded.front() == '.') {
        d.out.push_back('.');
    }
    d.out.append(decoded);
    d.size += decoded.size();
    d.longest = std::max<std::uint64_t>(d.longest, decoded.size());
}

struct LineEnd {
    std::size_t at = std::string_view::npos;  // where the line's text ends; npos = not yet
    std::size_t next = 0;                     // where the next line starts
    bool real = false;                        // ended by CRLF
};

inline LineEnd find_line_end(std::string_view in, std::size_t pos, BarePolicy policy) {
    LineEnd e;
    if (policy == BarePolicy::reject) {
        e.at = in.find("\r\n", pos);
        e.next = e.at + 2;
        e.real = true;
        return e;
    }
    e.at = in.find_first_of("\r\n", pos);
    if (e.at == std::string_view::npos || (in[e.at] == '\r' && e.at + 1 == in.size())) {
        e.at = std::string_view::npos;  // a final CR is not decided yet
        return e;
    }
    e.real = in[e.at] == '\r' && in[e.at + 1] == '\n';
    e.next = e.at + (e.real ? 2 : 1);
    return e;
}

inline bool has_cr_or_lf(std::string_view s) {
    return s.find_first_of("\r\n") != s.npos;
}

inline Decoded decode(std::string_view in, BarePolicy policy) {
    Decoded d;
    std::size_t pos = 0;
    bool after_crlf = true;
    for (;;) {
        const LineEnd e = find_line_end(in, pos, policy);
        if (e.at == std::string_view::npos) {
            break;
        }
        const auto line = in.substr(pos, e.at - pos);
        d.bare_seen = d.bare_seen || !e.real || has_cr_or_lf(line);
        if (line == "." && e.real && after_crlf) {
            d.finished = true;
            d.consumed = e.next;
            return d;
        }
        emit_content(line, d);
        d.out.append("\r\n");
        d.size += 2;
        after_crlf = e.real;
        pos = e.next;
    }
    auto tail = in.substr(pos);
    if (!tail.empty() && tail.back() == '\r') {
        tail.remove_suffix(1);  // pending: may be the start of a CRLF
    }
    d.bare_seen = d.bare_seen || has_cr_or_lf(tail);
    emit_content(tail, d, false);
    d.consumed = in.size();
    return d;
}

// --- properties checked directly on the input and output ----------------------------

// Where the data must end: right after the first "\r\n.\r\n" (or ".\r\n" at the very
// start), whatever the policy, since CR LF is always a real line break. npos if none.
inline std::size_t expected_end(std::string_view in) {
    if (in.substr(0, 3) == ".\r\n") {
        return 3;
    }
    const auto at = in.find("\r\n.\r\n");
    return at == std::string_view::npos ? at : at + 5;
}

// A CR not followed by LF or an LF not preceded by CR in `in` (a final CR counts only
// when `final_cr_decided`).
inline bool has_bare(std::string_view in, bool final_cr_decided) {
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) {
            return true;
        }
        if (in[i] == '\r' && i + 1 < in.size() && in[i + 1] != '\n') {
            return true;
        }
        if (in[i] == '\r' && i + 1 == in.size() && final_cr_decided) {
            return true;
        }
    }
    return false;
}

// Output safe for a backend: no bare CR/LF and no line that is exactly ".".
inline bool safe_output(std::string_view out) {
    if (has_bare(out, true)) {
        return false;
    }
    std::size_t line_start = 0;
    for (;;) {
        const auto rest = out.substr(line_start);
        if (rest == "." || rest.substr(0, 3) == ".\r\n") {
            return false;
        }
        const auto crlf = out.find("\r\n", line_start);
        if (crlf == std::string_view::npos) {
            return true;
        }
        line_start = crlf + 2;
    }
}

}  // namespace portcullis::smtp::model
