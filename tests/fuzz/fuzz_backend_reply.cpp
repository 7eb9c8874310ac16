// Fuzzes the backend reply parser: split-independence, and every accepted reply
// re-encodes (wire()) to a form that parses back to the same reply.
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "smtp/backend_reply.hpp"

using namespace portcullis::smtp;
using Status = ReplyParser::Status;

namespace {

struct Outcome {
    std::vector<BackendReply> replies;
    bool error = false;
};

// Feeds `input` in chunks of `chunk` bytes, the way the upstream connection does.
Outcome parse_all(std::string_view input, std::size_t chunk) {
    ReplyParser parser(256, 8);
    Outcome o;
    std::string buffer;
    for (std::size_t pos = 0; pos < input.size() && !o.error; pos += chunk) {
        buffer.append(input.substr(pos, chunk));
        for (;;) {
            auto r = parser.next(buffer);
            FUZZ_CHECK(r.consumed <= buffer.size());
            if (r.status == Status::error) {
                FUZZ_CHECK(!r.error.empty());
                o.error = true;
                break;
            }
            buffer.erase(0, r.consumed);
            if (r.status == Status::need_more) {
                break;
            }
            o.replies.push_back(std::move(r.reply));
        }
        FUZZ_CHECK(o.error || buffer.size() < 256);
    }
    return o;
}

void check_reply(const BackendReply& reply) {
    FUZZ_CHECK(reply.code >= 200 && reply.code <= 599);
    FUZZ_CHECK(!reply.lines.empty() && reply.lines.size() <= 8);
    const std::string wire = reply.wire();
    ReplyParser again;
    const auto r = again.next(wire);
    FUZZ_CHECK(r.status == Status::reply);
    FUZZ_CHECK(r.consumed == wire.size());
    FUZZ_CHECK(r.reply.code == reply.code);
    FUZZ_CHECK(r.reply.lines == reply.lines);
    const std::string enhanced = reply.enhanced();
    FUZZ_CHECK(enhanced.empty() || reply.lines.front().starts_with(enhanced));
    FUZZ_CHECK(enhanced.empty() || enhanced.size() >= 5);
}

bool same(const Outcome& a, const Outcome& b) {
    if (a.error != b.error || a.replies.size() != b.replies.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.replies.size(); ++i) {
        if (a.replies[i].code != b.replies[i].code || a.replies[i].lines != b.replies[i].lines) {
            return false;
        }
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = portcullis::fuzz::as_view(data, size);
    const auto whole = parse_all(input, input.size() + 1);
    for (const auto& reply : whole.replies) {
        check_reply(reply);
    }
    const std::size_t chunk = size == 0 ? 1 : 1 + data[0] % 16;
    FUZZ_CHECK(same(whole, parse_all(input, chunk)));
    return 0;
}
