// xtext (RFC 3461 section 4) and Postfix's XCLIENT command (XCLIENT_README): how the
// gateway tells a backend who the real client is. Pure code.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace portcullis::smtp {

// Encodes every octet outside "!" .. "~", and "+" and "=", as "+XX" (upper-case hex).
std::string xtext_encode(std::string_view raw);

// Decodes xtext; nullopt when it is not valid xtext (a raw octet outside "!" .. "~" or
// a raw "=", or a "+" not followed by two upper-case hex digits).
std::optional<std::string> xtext_decode(std::string_view xtext);

// The value XCLIENT uses for an attribute the gateway does not know.
inline constexpr std::string_view kXclientUnavailable = "[UNAVAILABLE]";

// XCLIENT's ADDR value for a numeric IP: "192.0.2.1" or "IPV6:2001:db8::1".
std::string xclient_address(std::string_view ip);

struct XclientAttribute {
    std::string name;   // upper case: ADDR, PORT, NAME, HELO, LOGIN, PROTO, ...
    std::string value;  // raw (not yet xtext-encoded)
};

// Longest XCLIENT command line, CRLF included (RFC 5321's command line limit).
inline constexpr std::size_t kMaxXclientLine = 512;

// Builds the XCLIENT command lines ("XCLIENT NAME=value ...\r\n") for the attributes the
// backend offered (`offered`, upper case, from its EHLO XCLIENT line), in the order of
// `attributes`, values xtext-encoded, packed into as few lines as fit kMaxXclientLine.
// A HELO or NAME value too long for a line on its own is sent as [UNAVAILABLE]; any
// other attribute that cannot fit makes the result nullopt. An empty vector means no
// offered attribute was given.
std::optional<std::vector<std::string>> build_xclient(std::span<const XclientAttribute> attributes,
                                                      std::span<const std::string> offered,
                                                      std::size_t max_line = kMaxXclientLine);

}  // namespace portcullis::smtp
