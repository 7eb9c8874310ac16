// Fuzzes the header From scanner and the RFC 5322 mailbox-list parser. The first byte
// sets the chunk size the message is fed in and whether the input is dot-stuffed;
// the rest is the message. Properties: the verdict does not depend on how the input
// is split, a decided verdict never changes, an accepted From address parses back to
// itself, and the parser alone never accepts an address without an "@".
#include <string>

#include "fuzz_check.hpp"
#include "smtp/header_from.hpp"

using namespace portcullis::smtp;
using Verdict = HeaderFromScanner::Verdict;

namespace {

struct Outcome {
    Verdict verdict;
    std::string address;
};

Outcome scan(std::string_view message, std::size_t chunk, bool dot_stuffed) {
    HeaderFromScanner s(dot_stuffed);
    Verdict last = Verdict::pending;
    for (std::size_t i = 0; i < message.size(); i += chunk) {
        const Verdict v = s.feed(message.substr(i, chunk));
        if (last != Verdict::pending) {
            FUZZ_CHECK(v == last);  // decided verdicts stay
        }
        last = v;
    }
    const Verdict end = s.finish();
    if (last != Verdict::pending) {
        FUZZ_CHECK(end == last);
    }
    FUZZ_CHECK(end != Verdict::pending);
    return {end, s.address()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto input = portcullis::fuzz::as_view(data, size);
    if (const auto list = parse_mailbox_list(input)) {
        for (const auto& address : list->addresses) {
            FUZZ_CHECK(address.find('@') != std::string::npos);
        }
    }
    if (input.empty()) {
        return 0;
    }
    const auto control = static_cast<unsigned char>(input.front());
    input.remove_prefix(1);
    const bool dot_stuffed = (control & 0x80) != 0;
    const std::size_t chunk = (control & 0x7f) + 1;
    const Outcome whole = scan(input, input.size() + 1, dot_stuffed);
    const Outcome split = scan(input, chunk, dot_stuffed);
    const Outcome bytes = scan(input, 1, dot_stuffed);
    FUZZ_CHECK(whole.verdict == split.verdict && whole.verdict == bytes.verdict);
    if (whole.verdict == Verdict::one) {
        FUZZ_CHECK(whole.address == split.address && whole.address == bytes.address);
        FUZZ_CHECK(whole.address.find('@') != std::string::npos);
        const auto again = parse_mailbox_list(whole.address);
        FUZZ_CHECK(again && !again->group && again->addresses.size() == 1 &&
                   again->addresses.front() == whole.address);
    }
    return 0;
}
