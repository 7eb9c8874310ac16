// Fuzzes the DATA decoder (the SMTP-smuggling shield) under both policies and asserts
// its properties, aborting on any violation:
//  - the result does not depend on how the input is split (two chunks, cut at a
//    position taken from the first byte) nor on whether it is called as the session
//    does (short unfinished lines held, plain runs passed through pass_plain_lines()),
//    and matches the reference model;
//  - data ends only right after the first CRLF "." CRLF (or "." CRLF at the start);
//  - under normalize, the output has no bare CR/LF and no line ".";
//  - a bare CR/LF before the end is always flagged, and only then;
//  - lines without CR/LF survive encode -> decode unchanged.
#include <string>
#include <vector>

#include "data_codec_model.hpp"
#include "fuzz_check.hpp"
#include "smtp/data_codec.hpp"

using namespace portcullis::smtp;

namespace {

// session: through next_chunk(), as the gateway's session calls it: an unfinished last
// line of the first chunk is held for the second (ready_for_decoding), and plain lines
// are forwarded as they are.
model::Decoded run(std::string_view in, BarePolicy policy, std::size_t cut, bool session = false) {
    DataDecoder decoder(policy);
    model::Decoded d;
    std::size_t start = 0;
    for (const std::size_t end : {cut, in.size()}) {
        const std::string_view chunk = in.substr(start, end - start);
        const bool more = end < in.size();
        const std::size_t ready = more && session ? ready_for_decoding(chunk) : chunk.size();
        DataDecoder::Result r;
        if (session) {
            std::string scratch;
            const auto c = decoder.next_chunk(chunk, scratch, more);
            d.out.append(c.wire);
            r = {c.consumed, c.finished};
        } else {
            r = decoder.feed(chunk, d.out);
        }
        d.consumed += r.consumed;
        if (r.finished) {
            d.finished = true;
            break;
        }
        FUZZ_CHECK(r.consumed == ready);
        start += ready;
    }
    d.bare_seen = decoder.bare_line_ending_seen();
    d.size = decoder.message_size();
    d.longest = decoder.longest_line();
    return d;
}

bool same(const model::Decoded& a, const model::Decoded& b) {
    return a.out == b.out && a.consumed == b.consumed && a.finished == b.finished &&
           a.bare_seen == b.bare_seen && a.size == b.size && a.longest == b.longest;
}

void check_stream(std::string_view in, BarePolicy policy, std::size_t cut) {
    const auto whole = run(in, policy, in.size());
    FUZZ_CHECK(same(whole, run(in, policy, cut)));
    FUZZ_CHECK(same(whole, run(in, policy, cut, true)));
    FUZZ_CHECK(same(whole, model::decode(in, policy)));

    const auto end = model::expected_end(in);
    FUZZ_CHECK(whole.finished == (end != std::string_view::npos));
    FUZZ_CHECK(whole.consumed == (whole.finished ? end : in.size()));
    if (policy == BarePolicy::normalize) {
        FUZZ_CHECK(model::safe_output(whole.out));
    }
    const bool bare = model::has_bare(in.substr(0, whole.consumed), whole.finished);
    FUZZ_CHECK(whole.bare_seen == bare);
}

void check_round_trip(std::string_view in, BarePolicy policy, std::size_t cut) {
    std::string encoded;
    std::size_t start = 0;
    while (start <= in.size()) {
        const auto lf = in.find('\n', start);
        std::string line(in.substr(start, lf == std::string_view::npos ? lf : lf - start));
        std::erase(line, '\r');
        encode_line(line, encoded);
        if (lf == std::string_view::npos) {
            break;
        }
        start = lf + 1;
    }
    const std::string stream = encoded + ".\r\nQUIT\r\n";
    const auto d = run(stream, policy, cut % (stream.size() + 1));
    FUZZ_CHECK(d.finished);
    FUZZ_CHECK(d.consumed == encoded.size() + 3);
    FUZZ_CHECK(d.out == encoded);
    FUZZ_CHECK(!d.bare_seen);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = portcullis::fuzz::as_view(data, size);
    const std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
    for (const auto policy : {BarePolicy::reject, BarePolicy::normalize}) {
        check_stream(input, policy, cut);
        check_round_trip(input, policy, cut);
    }
    return 0;
}
