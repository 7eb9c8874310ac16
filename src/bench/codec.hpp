// Codec mode of portcullis-bench: the gateway's DATA decoder on its own, without
// sockets or TLS, so its cost per MB can be compared between builds and machines.
#pragma once

#include <cstdint>
#include <ostream>
#include <string_view>

#include "bench/options.hpp"

namespace portcullis::bench {

struct CodecResult {
    const char* caller = "";     // "feed": every byte re-encoded into a buffer;
                                 // "pass": plain lines passed as they are first, as the
                                 // gateway's session does
    std::uint64_t messages = 0;  // whole messages decoded
    double seconds = 0;
    double ms_per_mb = 0;  // MB = 10^6 bytes of message content
    bool correct = true;   // every message decoded to its own size and ended
};

// Decodes `stream` (a dot-stuffed message and its end-of-data line, of `content_size`
// content bytes) in pieces of options.codec_chunk bytes, over and over for `seconds`.
CodecResult run_codec(const Options& options, std::string_view stream, std::uint64_t content_size,
                      bool pass_first, double seconds);

void print_codec(const Options& options, const CodecResult (&results)[2], std::ostream& out);

}  // namespace portcullis::bench
