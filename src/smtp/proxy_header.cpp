#include "smtp/proxy_header.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <optional>
#include <vector>

namespace portcullis::smtp {
namespace {

using Status = ProxyParseResult::Status;

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::array<unsigned char, 12> kV2Signature{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                     0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::size_t kV2FixedLength = 16;

ProxyParseResult need_more() {
    return {};
}

ProxyParseResult error(std::string why) {
    ProxyParseResult r;
    r.status = Status::error;
    r.error = std::move(why);
    return r;
}

ProxyParseResult done(std::size_t consumed, ProxyHeader header) {
    ProxyParseResult r;
    r.status = Status::header;
    r.consumed = consumed;
    r.header = std::move(header);
    return r;
}

// An IP address in binary form (4 or 16 bytes).
struct RawIp {
    bool v6 = false;
    std::array<unsigned char, 16> bytes{};
};

std::optional<RawIp> parse_ip(std::string_view text, bool v6) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
        return std::nullopt;
    }
    char buffer[INET6_ADDRSTRLEN] = {};
    std::memcpy(buffer, text.data(), text.size());
    RawIp ip;
    ip.v6 = v6;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, buffer, ip.bytes.data()) != 1) {
        return std::nullopt;
    }
    return ip;
}

// Either family, for the builders.
std::optional<RawIp> parse_any_ip(std::string_view text) {
    if (auto v4 = parse_ip(text, false)) {
        return v4;
    }
    return parse_ip(text, true);
}

RawIp mapped_v6(const RawIp& ip) {
    if (ip.v6) {
        return ip;
    }
    RawIp out;
    out.v6 = true;
    out.bytes[10] = 0xFF;
    out.bytes[11] = 0xFF;
    std::memcpy(out.bytes.data() + 12, ip.bytes.data(), 4);
    return out;
}

std::string ip_text(const unsigned char* bytes, bool v6) {
    char buffer[INET6_ADDRSTRLEN] = {};
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, buffer, sizeof(buffer));
    return buffer;
}

// Decimal 0..65535 without leading zeros (a lone "0" is allowed).
std::optional<std::uint16_t> parse_port(std::string_view text) {
    if (text.empty() || text.size() > 5 || (text.size() > 1 && text.front() == '0')) {
        return std::nullopt;
    }
    unsigned value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

std::vector<std::string_view> split_spaces(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        const std::size_t space = line.find(' ', start);
        out.push_back(line.substr(start, space == std::string_view::npos ? space : space - start));
        if (space == std::string_view::npos) {
            return out;
        }
        start = space + 1;
    }
}

ProxyParseResult parse_v1(std::string_view buffer) {
    // Every byte before the CRLF must be printable ASCII; the line is bounded.
    const std::size_t limit = std::min(buffer.size(), kProxyV1MaxLength);
    std::size_t end = std::string_view::npos;
    for (std::size_t i = 0; i < limit; ++i) {
        const auto c = static_cast<unsigned char>(buffer[i]);
        if (c == '\r') {
            if (i + 2 > kProxyV1MaxLength) {
                return error("PROXY v1: header longer than 107 bytes");
            }
            if (i + 1 == buffer.size()) {
                return need_more();
            }
            if (buffer[i + 1] != '\n') {
                return error("PROXY v1: CR without LF");
            }
            end = i;
            break;
        }
        if (c < 0x20 || c > 0x7E) {
            return error("PROXY v1: control or non-ASCII byte in the header");
        }
    }
    if (end == std::string_view::npos) {
        if (buffer.size() >= kProxyV1MaxLength) {
            return error("PROXY v1: header longer than 107 bytes");
        }
        return need_more();
    }
    const std::size_t consumed = end + 2;
    if (consumed > kProxyV1MaxLength) {
        return error("PROXY v1: header longer than 107 bytes");
    }
    const auto fields = split_spaces(buffer.substr(0, end));
    ProxyHeader header;
    header.version = 1;
    if (fields.size() >= 2 && fields[1] == "UNKNOWN") {
        header.local = true;  // whatever follows UNKNOWN is ignored, as specified
        return done(consumed, std::move(header));
    }
    if (fields.size() < 2 || (fields[1] != "TCP4" && fields[1] != "TCP6")) {
        return error("PROXY v1: protocol must be TCP4, TCP6 or UNKNOWN");
    }
    if (fields.size() != 6) {
        return error("PROXY v1: expected 'PROXY TCPn SRC DST SPORT DPORT'");
    }
    const bool v6 = fields[1] == "TCP6";
    const auto src = parse_ip(fields[2], v6);
    const auto dst = parse_ip(fields[3], v6);
    if (!src || !dst) {
        return error(v6 ? "PROXY v1: bad IPv6 address" : "PROXY v1: bad IPv4 address");
    }
    const auto sport = parse_port(fields[4]);
    const auto dport = parse_port(fields[5]);
    if (!sport || !dport) {
        return error("PROXY v1: bad port");
    }
    header.source = {ip_text(src->bytes.data(), v6), *sport};
    header.destination = {ip_text(dst->bytes.data(), v6), *dport};
    return done(consumed, std::move(header));
}

std::uint16_t read_u16(const unsigned char* p) {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

// TLVs must tile the rest of the header exactly.
bool valid_tlvs(const unsigned char* p, std::size_t length) {
    std::size_t pos = 0;
    while (pos < length) {
        if (length - pos < 3) {
            return false;
        }
        const std::size_t value_length = read_u16(p + pos + 1);
        pos += 3;
        if (length - pos < value_length) {
            return false;
        }
        pos += value_length;
    }
    return true;
}

ProxyParseResult parse_v2(std::string_view buffer) {
    const auto* p = reinterpret_cast<const unsigned char*>(buffer.data());
    if (buffer.size() < kV2FixedLength) {
        return need_more();
    }
    const unsigned version = p[12] >> 4;
    const unsigned command = p[12] & 0x0F;
    if (version != 2) {
        return error("PROXY v2: unsupported version " + std::to_string(version));
    }
    if (command > 1) {
        return error("PROXY v2: unknown command " + std::to_string(command));
    }
    const std::size_t length = read_u16(p + 14);
    if (length > kProxyV2MaxPayload) {
        return error("PROXY v2: header longer than " + std::to_string(kProxyV2MaxPayload) +
                     " bytes after the fixed part");
    }
    const unsigned family = p[13] >> 4;
    const unsigned transport = p[13] & 0x0F;
    if (family > 3 || transport > 2) {
        return error("PROXY v2: unknown address family or transport");
    }
    if (command == 1 && family != 0 && transport != 1) {
        return error("PROXY v2: only stream (TCP) connections can be proxied here");
    }
    if (buffer.size() < kV2FixedLength + length) {
        return need_more();
    }
    const std::size_t consumed = kV2FixedLength + length;
    ProxyHeader header;
    header.version = 2;
    const unsigned char* body = p + kV2FixedLength;
    if (command == 0 || family == 0) {
        header.local = true;  // LOCAL, or PROXY with AF_UNSPEC: addresses are ignored
        return done(consumed, std::move(header));
    }
    const std::size_t address_length = family == 1 ? 12 : family == 2 ? 36 : 216;
    if (length < address_length) {
        return error("PROXY v2: address block too short for its family");
    }
    if (!valid_tlvs(body + address_length, length - address_length)) {
        return error("PROXY v2: malformed TLV");
    }
    if (family == 3) {
        header.local = true;  // a UNIX socket carries no IP address
        return done(consumed, std::move(header));
    }
    const bool v6 = family == 2;
    const std::size_t ip_length = v6 ? 16 : 4;
    header.source = {ip_text(body, v6), read_u16(body + 2 * ip_length)};
    header.destination = {ip_text(body + ip_length, v6), read_u16(body + 2 * ip_length + 2)};
    return done(consumed, std::move(header));
}

// True when `buffer` is a (possibly empty) prefix of `full`.
bool is_prefix_of(std::string_view buffer, std::string_view full) {
    return buffer.size() <= full.size() && full.substr(0, buffer.size()) == buffer;
}

}  // namespace

ProxyParseResult parse_proxy_header(std::string_view buffer) {
    const std::string_view v2_signature(reinterpret_cast<const char*>(kV2Signature.data()),
                                        kV2Signature.size());
    if (buffer.empty()) {
        return need_more();
    }
    if (buffer.front() == 'P') {
        if (buffer.size() < kV1Prefix.size()) {
            return is_prefix_of(buffer, kV1Prefix) ? need_more()
                                                   : error("not a PROXY protocol header");
        }
        if (buffer.substr(0, kV1Prefix.size()) != kV1Prefix) {
            return error("not a PROXY protocol header");
        }
        return parse_v1(buffer);
    }
    if (buffer.size() < v2_signature.size()) {
        return is_prefix_of(buffer, v2_signature) ? need_more()
                                                  : error("not a PROXY protocol header");
    }
    if (buffer.substr(0, v2_signature.size()) != v2_signature) {
        return error("not a PROXY protocol header");
    }
    return parse_v2(buffer);
}

std::string build_proxy_v1(const ProxyEndpoint& source, const ProxyEndpoint& destination) {
    auto src = parse_any_ip(source.ip);
    auto dst = parse_any_ip(destination.ip);
    if (!src || !dst) {
        return "PROXY UNKNOWN\r\n";
    }
    const bool v6 = src->v6 || dst->v6;
    if (v6) {
        src = mapped_v6(*src);
        dst = mapped_v6(*dst);
    }
    return std::string("PROXY ") + (v6 ? "TCP6 " : "TCP4 ") + ip_text(src->bytes.data(), v6) + " " +
           ip_text(dst->bytes.data(), v6) + " " + std::to_string(source.port) + " " +
           std::to_string(destination.port) + "\r\n";
}

std::string build_proxy_v2(const ProxyEndpoint& source, const ProxyEndpoint& destination) {
    std::string out(reinterpret_cast<const char*>(kV2Signature.data()), kV2Signature.size());
    auto src = parse_any_ip(source.ip);
    auto dst = parse_any_ip(destination.ip);
    if (!src || !dst) {
        out += std::string("\x20\x00\x00\x00", 4);  // v2, LOCAL, AF_UNSPEC, no payload
        return out;
    }
    const bool v6 = src->v6 || dst->v6;
    if (v6) {
        src = mapped_v6(*src);
        dst = mapped_v6(*dst);
    }
    const std::size_t ip_length = v6 ? 16 : 4;
    const std::size_t length = 2 * ip_length + 4;
    out.push_back('\x21');                // v2, PROXY
    out.push_back(v6 ? '\x21' : '\x11');  // TCP over IPv6 / IPv4
    out.push_back(static_cast<char>(length >> 8));
    out.push_back(static_cast<char>(length & 0xFF));
    out.append(reinterpret_cast<const char*>(src->bytes.data()), ip_length);
    out.append(reinterpret_cast<const char*>(dst->bytes.data()), ip_length);
    for (const std::uint16_t port : {source.port, destination.port}) {
        out.push_back(static_cast<char>(port >> 8));
        out.push_back(static_cast<char>(port & 0xFF));
    }
    return out;
}

}  // namespace portcullis::smtp
