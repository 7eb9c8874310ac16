// PROXY protocol headers (HAProxy's PROXY protocol, versions 1 and 2): the strict,
// bounded parser used on listeners with proxy_protocol = true, and the builders used
// for backend identity = "proxy-v1" / "proxy-v2". Pure code: no I/O, no allocation
// beyond the result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace portcullis::smtp {

// Longest v1 header, CRLF included (the specification's limit).
inline constexpr std::size_t kProxyV1MaxLength = 107;
// Longest v2 header we accept: the 16-byte fixed part plus at most this many bytes of
// addresses and TLVs (the specification allows 65535; load balancers send far less).
inline constexpr std::size_t kProxyV2MaxPayload = 2048;

struct ProxyEndpoint {
    std::string ip;  // numeric text: "203.0.113.9" or "2001:db8::1"
    std::uint16_t port = 0;
    bool operator==(const ProxyEndpoint&) const = default;
};

struct ProxyHeader {
    int version = 1;
    // No address carried (v1 "UNKNOWN", v2 LOCAL, or a v2 family other than TCP over
    // IPv4/IPv6): the receiver uses the connection's own addresses.
    bool local = false;
    ProxyEndpoint source;       // the real client
    ProxyEndpoint destination;  // the address the client connected to
};

struct ProxyParseResult {
    enum class Status { need_more, header, error };
    Status status = Status::need_more;
    std::size_t consumed = 0;  // bytes of the header (Status::header only)
    ProxyHeader header;
    std::string error;  // Status::error: why
};

// Parses a PROXY header at the front of `buffer`. need_more while `buffer` is a proper
// prefix of a header that may still become valid; error as soon as it cannot (wrong
// signature, bad syntax, over the length limits, non-TCP families with the PROXY
// command); header once complete, with `consumed` telling where the payload begins.
ProxyParseResult parse_proxy_header(std::string_view buffer);

// "PROXY TCP4 src dst sport dport\r\n" (TCP6 when either address is IPv6; an IPv4
// address is then written IPv4-mapped). "PROXY UNKNOWN\r\n" when an address is not a
// numeric IP.
std::string build_proxy_v1(const ProxyEndpoint& source, const ProxyEndpoint& destination);

// The binary v2 header with the PROXY command over TCP (IPv4 or IPv6, as above), or
// the LOCAL command when an address is not a numeric IP.
std::string build_proxy_v2(const ProxyEndpoint& source, const ProxyEndpoint& destination);

}  // namespace portcullis::smtp
