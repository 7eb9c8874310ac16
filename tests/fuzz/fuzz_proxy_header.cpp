// Fuzzes the PROXY protocol header parser (v1 and v2): bounded, prefix-consistent
// (every proper prefix of an accepted header asks for more), errors are final, and an
// accepted header re-built by the builders parses back to the same addresses.
#include <string>

#include "fuzz_check.hpp"
#include "smtp/proxy_header.hpp"

using namespace portcullis::smtp;
using Status = ProxyParseResult::Status;

namespace {

bool is_v6(const std::string& ip) {
    return ip.find(':') != std::string::npos;
}

void check_round_trip(const ProxyHeader& h) {
    if (h.local) {
        return;
    }
    FUZZ_CHECK(!h.source.ip.empty() && !h.destination.ip.empty());
    FUZZ_CHECK(is_v6(h.source.ip) == is_v6(h.destination.ip));
    for (const std::string& wire :
         {build_proxy_v1(h.source, h.destination), build_proxy_v2(h.source, h.destination)}) {
        const auto again = parse_proxy_header(wire);
        FUZZ_CHECK(again.status == Status::header);
        FUZZ_CHECK(again.consumed == wire.size());
        FUZZ_CHECK(!again.header.local);
        FUZZ_CHECK(again.header.source == h.source);
        FUZZ_CHECK(again.header.destination == h.destination);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = portcullis::fuzz::as_view(data, size);
    const auto r = parse_proxy_header(input);
    switch (r.status) {
        case Status::need_more:
            // Only a prefix of something that may still be a header, and never more
            // than the bounds allow.
            FUZZ_CHECK(input.size() < 16 + kProxyV2MaxPayload);
            FUZZ_CHECK(input.empty() || input[0] != 'P' || input.size() < kProxyV1MaxLength);
            break;
        case Status::error: {
            FUZZ_CHECK(!r.error.empty());
            // An error is final: more bytes never make it a header.
            const auto longer = parse_proxy_header(std::string(input) + "\r\n\r\n");
            FUZZ_CHECK(longer.status == Status::error);
            break;
        }
        case Status::header: {
            FUZZ_CHECK(r.consumed > 0 && r.consumed <= input.size());
            FUZZ_CHECK(r.header.version == 1 || r.header.version == 2);
            FUZZ_CHECK(r.header.version != 1 || r.consumed <= kProxyV1MaxLength);
            FUZZ_CHECK(r.header.version != 2 || r.consumed <= 16 + kProxyV2MaxPayload);
            // The same header with other bytes behind it, and every proper prefix.
            const std::string header(input.substr(0, r.consumed));
            const auto alone = parse_proxy_header(header);
            FUZZ_CHECK(alone.status == Status::header && alone.consumed == r.consumed);
            const std::size_t step = header.size() / 16 + 1;
            for (std::size_t n = 0; n < header.size(); n += step) {
                FUZZ_CHECK(parse_proxy_header(header.substr(0, n)).status == Status::need_more);
            }
            check_round_trip(r.header);
            break;
        }
    }
    return 0;
}
