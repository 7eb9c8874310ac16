// DATA codec: decodes the client's dot-stuffed message stream and re-encodes it with
// the gateway's own CRLFs and dot-stuffing, so the backend never sees the client's
// line endings. The only end of data is CRLF "." CRLF (or "." CRLF at the start).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace portcullis::smtp {

enum class BarePolicy {
    reject,     // a bare CR or LF marks the message bad (caller answers 550 5.6.0)
    normalize,  // a bare CR or LF becomes a CRLF line break
};

inline constexpr std::string_view kEndOfData = ".\r\n";

class DataDecoder {
  public:
    explicit DataDecoder(BarePolicy policy) : policy_(policy) {}

    struct Result {
        std::size_t consumed = 0;  // bytes of `in` used; after `finished`, the rest is
                                   // the client's next (pipelined) commands
        bool finished = false;     // end of data seen
    };

    // Appends the re-encoded form of the content in `in` to `out` (never the end
    // marker: the caller writes kEndOfData only when it decides to commit). Content
    // is streamed: a partial line is emitted as soon as it arrives, so memory is
    // bounded whatever the line length. Under `reject`, once a bare CR/LF is seen the
    // decoder keeps scanning for the end but the message must not be delivered.
    Result feed(std::string_view in, std::string& out);

    // The fast path of feed() on its own: at a line start, the length of the run of
    // whole lines at the front of `in` that re-encode to exactly themselves, counted as
    // consumed. Their wire form is those bytes of `in`, so the caller may forward them
    // without a copy; feed() goes on from the first byte after them. 0 when the next
    // line is not such a line (or is unfinished), or in the middle of a line.
    std::size_t pass_plain_lines(std::string_view in);

    struct Chunk {
        std::size_t consumed = 0;  // bytes of `in` used (a held unfinished line is not)
        bool finished = false;     // end of data seen (not part of `wire`)
        std::string_view wire;     // the re-encoded bytes: a view of `in` when every
                                   // line passed as it is, else of `out`
    };
    // How a streaming caller drives the decoder, in one place: decodes what is ready
    // of `in` (all of it, or with `more_input` all but a short unfinished last line:
    // ready_for_decoding), passing plain lines without a copy; only a chunk with other
    // lines is re-encoded into `out` (cleared first).
    Chunk next_chunk(std::string_view in, std::string& out, bool more_input);

    // A bare CR or LF was seen before the end (under either policy; under `normalize`
    // it is informational and the message stays deliverable). Under `reject` the
    // bytes appended to `out` by the feed() call that set it, and by later calls, carry
    // the client's bare CR/LF as content: the caller must not forward them.
    bool bare_line_ending_seen() const { return bare_seen_; }
    // Decoded message size in octets, counting each line break as CRLF.
    std::uint64_t message_size() const { return size_; }
    // Longest line (without line break) seen so far.
    std::uint64_t longest_line() const { return longest_; }

  private:
    enum class State { line_start, dot, dot_cr, in_line, cr };
    enum class Step { consumed, reprocess, finished };  // what a state step did with a byte
    Step step(char c, std::string& out);
    Step at_line_start(char c);
    Step after_dot(char c, std::string& out);
    Step after_dot_cr(char c, std::string& out);
    Step after_cr(char c, std::string& out);
    const char* skip_plain_lines(const char* p, const char* end);
    const char* skip_plain_line(const char* p, const char* end);
    const char* scan_line(const char* p, const char* end, std::string& out);
    void bare_ending(char c, std::string& out);
    void content(const char* begin, const char* end, std::string& out);
    void count(std::uint64_t n);
    void close_line(bool after_crlf);
    void end_line(std::string& out);
    void lone_dot(std::string& out);
    BarePolicy policy_;
    State state_ = State::line_start;
    bool after_crlf_ = true;  // the current line started after a CRLF (or at the start)
    bool bare_seen_ = false;
    bool finished_ = false;
    std::uint64_t size_ = 0;
    std::uint64_t line_len_ = 0;
    std::uint64_t longest_ = 0;
};

// How much of `input` a caller should decode now: all of it, except a short
// unfinished last line (under kHeldLineMax bytes, no CR or LF yet), which is better
// kept for the next read so that the next chunk starts at a line start, where
// pass_plain_lines() applies. Holding changes only when bytes are decoded, never what
// they decode to, and data cannot end before that line is finished.
inline constexpr std::size_t kHeldLineMax = 4 * 1024;
std::size_t ready_for_decoding(std::string_view input);

// Appends one content line (without line break) in wire form: a leading "." is
// doubled, and CRLF is added.
void encode_line(std::string_view line, std::string& out);

}  // namespace portcullis::smtp
