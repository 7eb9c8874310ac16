#include "bench/codec.hpp"

#include <chrono>
#include <string>

#include "smtp/data_codec.hpp"

namespace portcullis::bench {
namespace {

// One message through a fresh decoder; true when it ended where it should with the
// right size. `out` is reused: the gateway keeps its buffer too.
bool decode_once(std::string_view stream, std::uint64_t content_size, std::size_t chunk,
                 bool pass_first, std::string& out) {
    smtp::DataDecoder decoder(smtp::BarePolicy::reject);
    std::size_t offset = 0;
    while (offset < stream.size()) {
        const std::string_view piece = stream.substr(offset, chunk);
        // as the session does (--codec-chunk is at least kHeldLineMax, so a piece is
        // never all one held line)
        const bool more = offset + piece.size() < stream.size();
        std::size_t consumed = 0;
        bool finished = false;
        if (pass_first) {
            const auto result = decoder.next_chunk(piece, out, more);
            consumed = result.consumed;
            finished = result.finished;
        } else {
            out.clear();
            const auto result = decoder.feed(piece, out);
            consumed = result.consumed;
            finished = result.finished;
        }
        offset += consumed;
        if (finished) {
            return offset == stream.size() && decoder.message_size() == content_size &&
                   !decoder.bare_line_ending_seen();
        }
    }
    return false;
}

}  // namespace

CodecResult run_codec(const Options& options, std::string_view stream, std::uint64_t content_size,
                      bool pass_first, double seconds) {
    using Clock = std::chrono::steady_clock;
    CodecResult r;
    r.caller = pass_first ? "pass" : "feed";
    std::string out;
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration<double>(seconds);
    do {
        r.correct =
            decode_once(stream, content_size, options.codec_chunk, pass_first, out) && r.correct;
        ++r.messages;
    } while (Clock::now() < deadline);
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const double mb = static_cast<double>(content_size) * static_cast<double>(r.messages) / 1e6;
    r.ms_per_mb = r.seconds * 1e3 / mb;
    return r;
}

void print_codec(const Options& options, const CodecResult (&results)[2], std::ostream& out) {
    if (options.json) {
        out << "{\"kind\": \"codec\", \"size\": " << options.message_size
            << ", \"chunk\": " << options.codec_chunk;
        for (const auto& r : results) {
            out << ", \"" << r.caller << "\": {\"messages\": " << r.messages
                << ", \"seconds\": " << r.seconds << ", \"ms_per_mb\": " << r.ms_per_mb
                << ", \"correct\": " << (r.correct ? "true" : "false") << "}";
        }
        out << "}\n";
        return;
    }
    out << "portcullis-bench --codec: DATA decoder alone, " << options.message_size
        << " B messages in " << options.codec_chunk << " B pieces\n";
    for (const auto& r : results) {
        out << r.caller << "   " << r.ms_per_mb << " ms/MB  (" << r.messages << " messages in "
            << r.seconds << " s" << (r.correct ? "" : ", WRONG RESULT") << ")\n";
    }
}

}  // namespace portcullis::bench
