#include "smtp/data_codec.hpp"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace portcullis::smtp {
namespace {

// The first CR or LF in [p, end), or end: one pass for both bytes, 16 at a time.
const char* find_line_break(const char* p, const char* end) {
#if defined(__SSE2__)
    const __m128i cr = _mm_set1_epi8('\r');
    const __m128i lf = _mm_set1_epi8('\n');
    while (end - p >= 16) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const int hits =
            _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(bytes, cr), _mm_cmpeq_epi8(bytes, lf)));
        if (hits != 0) {
            return p + __builtin_ctz(static_cast<unsigned>(hits));
        }
        p += 16;
    }
#endif
    while (p < end && *p != '\r' && *p != '\n') {
        ++p;
    }
    return p;
}

struct PlainBlocks {
    const char* end;        // after the last LF of the run (the start when none)
    std::uint64_t longest;  // longest line in the run, without its CRLF
};

#if defined(__x86_64__) && defined(__GNUC__)
#define PORTCULLIS_AVX2_BLOCKS 1

// Bit i set where block[i] == c, for the 64 bytes in lo (0..31) and hi (32..63).
__attribute__((target("avx2"))) inline std::uint64_t byte_mask(__m256i lo, __m256i hi, char c) {
    const __m256i wanted = _mm256_set1_epi8(c);
    const auto low =
        static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, wanted)));
    const auto high =
        static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, wanted)));
    return low | (std::uint64_t{high} << 32);
}

// The whole 64-byte blocks from `p` (a line start) in which every CR is followed by an
// LF, every LF follows a CR, and no line starts with "."; the run ends after the last
// LF before the first block that is not like that (or the last whole block).
__attribute__((target("avx2"))) PlainBlocks plain_blocks_avx2(const char* p, const char* end) {
    const char* line = p;  // start of the line being read
    std::uint64_t longest = 0;
    std::uint64_t cr_carry = 0;     // the previous block ended with a CR
    std::uint64_t start_carry = 1;  // bit 0 of this block starts a line
    for (const char* q = p; end - q >= 64; q += 64) {
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
        const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32));
        const std::uint64_t cr = byte_mask(lo, hi, '\r');
        const std::uint64_t lf = byte_mask(lo, hi, '\n');
        if (((cr << 1) | cr_carry) != lf) {
            break;  // a CR without its LF, or an LF without its CR
        }
        if ((((lf << 1) | start_carry) & byte_mask(lo, hi, '.')) != 0) {
            break;  // a line starting with ".": judged line by line
        }
        for (std::uint64_t ends = lf; ends != 0; ends &= ends - 1) {
            const char* lf_at = q + __builtin_ctzll(ends);
            longest = std::max(longest, static_cast<std::uint64_t>(lf_at - 1 - line));
            line = lf_at + 1;
        }
        cr_carry = cr >> 63;
        start_carry = lf >> 63;
    }
    return {line, longest};
}
#endif

PlainBlocks plain_blocks(const char* p, const char* end) {
#if defined(PORTCULLIS_AVX2_BLOCKS)
    static const bool avx2 = __builtin_cpu_supports("avx2");  // the CPU's, never changes
    if (avx2 && end - p >= 64) {
        return plain_blocks_avx2(p, end);
    }
#endif
    return {p, 0};
}

}  // namespace

DataDecoder::Result DataDecoder::feed(std::string_view in, std::string& out) {
    if (finished_) {
        return {0, true};
    }
    const char* const begin = in.data();
    const char* const end = begin + in.size();
    const char* p = begin;
    while (p < end) {
        if (state_ == State::line_start) {
            const char* plain_end = skip_plain_lines(p, end);
            if (plain_end != p) {
                out.append(p, static_cast<std::size_t>(plain_end - p));  // unchanged
                p = plain_end;
                continue;
            }
        }
        if (state_ == State::in_line) {
            p = scan_line(p, end, out);
            continue;
        }
        switch (step(*p, out)) {
            case Step::consumed:
                ++p;
                break;
            case Step::reprocess:
                break;
            case Step::finished:
                finished_ = true;
                return {static_cast<std::size_t>(p + 1 - begin), true};
        }
    }
    return {in.size(), false};
}

std::size_t DataDecoder::pass_plain_lines(std::string_view in) {
    if (finished_ || state_ != State::line_start) {
        return 0;
    }
    const char* const begin = in.data();
    return static_cast<std::size_t>(skip_plain_lines(begin, begin + in.size()) - begin);
}

DataDecoder::Chunk DataDecoder::next_chunk(std::string_view in, std::string& out, bool more_input) {
    out.clear();
    if (more_input) {
        in = in.substr(0, ready_for_decoding(in));
    }
    const std::size_t plain = pass_plain_lines(in);
    if (plain == in.size()) {
        return {plain, false, in};
    }
    out.reserve(in.size() + in.size() / 8 + 64);  // room for dot-stuffing
    out.append(in.substr(0, plain));
    const Result rest = feed(in.substr(plain), out);
    return {plain + rest.consumed, rest.finished, out};
}

DataDecoder::Step DataDecoder::step(char c, std::string& out) {
    switch (state_) {
        case State::line_start:
            return at_line_start(c);
        case State::dot:
            return after_dot(c, out);
        case State::dot_cr:
            return after_dot_cr(c, out);
        case State::cr:
            return after_cr(c, out);
        case State::in_line:
            break;
    }
    return Step::reprocess;  // in_line bytes are handled by scan_line
}

// First byte of a line. Nothing is emitted yet: a "." or CR may still turn out to be
// (part of) the end marker or a line break.
DataDecoder::Step DataDecoder::at_line_start(char c) {
    switch (c) {
        case '.':
            state_ = State::dot;
            return Step::consumed;
        case '\r':
            state_ = State::cr;
            return Step::consumed;
        default:
            state_ = State::in_line;
            return Step::reprocess;  // bare LF included
    }
}

// After a leading "." (transparency: that dot is dropped).
DataDecoder::Step DataDecoder::after_dot(char c, std::string& out) {
    switch (c) {
        case '.':  // the decoded line starts with "." and is re-stuffed
            out.push_back('.');
            content(&c, &c + 1, out);
            state_ = State::in_line;
            return Step::consumed;
        case '\r':
            state_ = State::dot_cr;
            return Step::consumed;
        case '\n':
            if (policy_ == BarePolicy::normalize) {  // "." ended by a bare LF
                lone_dot(out);
                bare_seen_ = true;
                out.append("\r\n");
                close_line(false);
                return Step::consumed;
            }
            state_ = State::in_line;
            return Step::reprocess;
        default:
            state_ = State::in_line;
            return Step::reprocess;
    }
}

// After "." CR at a line start: the end marker if LF follows on a line that began
// after a real CRLF. Anything else makes a line that is just "." and is not the end:
// no client stuffs a lone dot that way, so it is kept as content (and re-stuffed),
// which is what a smuggling attempt such as "\n.\r\n" looks like.
DataDecoder::Step DataDecoder::after_dot_cr(char c, std::string& out) {
    if (c == '\n') {
        if (after_crlf_) {
            return Step::finished;
        }
        lone_dot(out);  // normalize only: a line after a bare ending
        end_line(out);
        return Step::consumed;
    }
    if (policy_ == BarePolicy::normalize) {
        lone_dot(out);
    }
    bare_ending('\r', out);
    return Step::reprocess;
}

// A line that is exactly "." but not the end of data: content ".", stuffed to "..".
void DataDecoder::lone_dot(std::string& out) {
    out.append("..");
    count(1);
}

// After a CR that is not yet known to be part of a CRLF.
DataDecoder::Step DataDecoder::after_cr(char c, std::string& out) {
    if (c == '\n') {
        end_line(out);
        return Step::consumed;
    }
    bare_ending('\r', out);
    return Step::reprocess;
}

// The fast path: from a line start, the end of the run of whole lines that pass
// through unchanged (empty, or not starting with a single "."; no bare CR or LF; ended
// by CRLF). Counts them; the first other line is left to the state machine, from its
// start. Whole 64-byte blocks of such lines go at once where the CPU has AVX2; the
// lines between and after them one at a time.
const char* DataDecoder::skip_plain_lines(const char* p, const char* end) {
    for (;;) {
        const PlainBlocks blocks = plain_blocks(p, end);
        if (blocks.end != p) {
            size_ += static_cast<std::uint64_t>(blocks.end - p);
            longest_ = std::max(longest_, blocks.longest);
            after_crlf_ = true;
            p = blocks.end;
        }
        const char* next = skip_plain_line(p, end);
        if (next == p) {
            return p;
        }
        p = next;
    }
}

// One line of the fast path from a line start: the start of the next line, or `p`
// when this line is not plain or not finished here.
const char* DataDecoder::skip_plain_line(const char* p, const char* end) {
    if (p == end || *p == '\n') {
        return p;
    }
    if (*p == '\r') {  // an empty line, or a bare CR the state machine must judge
        if (end - p < 2 || p[1] != '\n') {
            return p;
        }
        size_ += 2;
        after_crlf_ = true;
        return p + 2;
    }
    // A line the client dot-stuffed ("..x") decodes to ".x" and is stuffed again the
    // same way: it passes too. A single leading dot (".x", ".") does not.
    const bool stuffed = *p == '.';
    if (stuffed && (end - p < 2 || p[1] != '.')) {
        return p;
    }
    const char* q = find_line_break(p + (stuffed ? 1 : 0), end);
    if (end - q < 2 || q[0] != '\r' || q[1] != '\n') {
        return p;  // unfinished here, or a bare CR/LF
    }
    const auto length = static_cast<std::uint64_t>(q - p) - (stuffed ? 1 : 0);
    size_ += length + 2;
    longest_ = std::max(longest_, length);
    after_crlf_ = true;
    return q + 2;
}

// Copies runs of ordinary bytes; stops after a line break or at the end of input.
const char* DataDecoder::scan_line(const char* p, const char* end, std::string& out) {
    const char* run = p;
    for (;;) {
        const char* q = find_line_break(p, end);
        if (q == end) {
            content(run, end, out);
            return end;
        }
        const bool is_cr = *q == '\r';
        if (is_cr && q + 1 == end) {  // CR at the end of this input: undecided
            content(run, q, out);
            state_ = State::cr;
            return end;
        }
        if (is_cr && q[1] == '\n') {  // real CRLF: copy run and break in one append
            out.append(run, static_cast<std::size_t>(q + 2 - run));
            count(static_cast<std::uint64_t>(q - run));
            close_line(true);
            return q + 2;
        }
        // A bare CR or LF (an LF right after a CR never gets here).
        bare_seen_ = true;
        if (policy_ == BarePolicy::reject) {
            p = q + 1;  // ordinary content: keep the run going
            continue;
        }
        content(run, q, out);
        out.append("\r\n");
        close_line(false);
        return q + 1;
    }
}

// A bare CR or LF at a line start (or right after a leading dot) in state `state_`.
void DataDecoder::bare_ending(char c, std::string& out) {
    bare_seen_ = true;
    if (policy_ == BarePolicy::reject) {
        content(&c, &c + 1, out);
        state_ = State::in_line;
        return;
    }
    out.append("\r\n");
    close_line(false);
}

void DataDecoder::content(const char* begin, const char* end, std::string& out) {
    out.append(begin, static_cast<std::size_t>(end - begin));
    count(static_cast<std::uint64_t>(end - begin));
}

void DataDecoder::count(std::uint64_t n) {
    size_ += n;
    line_len_ += n;
    longest_ = std::max(longest_, line_len_);
}

void DataDecoder::close_line(bool after_crlf) {
    size_ += 2;
    line_len_ = 0;
    state_ = State::line_start;
    after_crlf_ = after_crlf;
}

// A line ended by a real CRLF.
void DataDecoder::end_line(std::string& out) {
    out.append("\r\n");
    close_line(true);
}

std::size_t ready_for_decoding(std::string_view input) {
    const std::size_t last_lf = input.rfind('\n');
    const std::size_t tail_start = last_lf == std::string_view::npos ? 0 : last_lf + 1;
    const std::string_view tail = input.substr(tail_start);
    if (tail.size() >= kHeldLineMax || tail.find('\r') != std::string_view::npos) {
        return input.size();
    }
    return tail_start;
}

void encode_line(std::string_view line, std::string& out) {
    if (!line.empty() && line.front() == '.') {
        out.push_back('.');
    }
    out.append(line);
    out.append("\r\n");
}

}  // namespace portcullis::smtp
