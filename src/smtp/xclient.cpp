#include "smtp/xclient.hpp"

#include <algorithm>

namespace portcullis::smtp {
namespace {

constexpr std::string_view kHex = "0123456789ABCDEF";
constexpr std::string_view kVerb = "XCLIENT";

int hex_value(char c) {
    const auto pos = kHex.find(c);
    return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

bool offers(std::span<const std::string> offered, std::string_view name) {
    return std::find(offered.begin(), offered.end(), name) != offered.end();
}

}  // namespace

std::string xtext_encode(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (const char c : raw) {
        const auto u = static_cast<unsigned char>(c);
        if (u < '!' || u > '~' || c == '+' || c == '=') {
            out.push_back('+');
            out.push_back(kHex[u >> 4]);
            out.push_back(kHex[u & 0x0F]);
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::optional<std::string> xtext_decode(std::string_view xtext) {
    std::string out;
    out.reserve(xtext.size());
    for (std::size_t i = 0; i < xtext.size(); ++i) {
        const auto u = static_cast<unsigned char>(xtext[i]);
        if (u < '!' || u > '~' || u == '=') {
            return std::nullopt;
        }
        if (u != '+') {
            out.push_back(xtext[i]);
            continue;
        }
        if (i + 2 >= xtext.size()) {
            return std::nullopt;
        }
        const int high = hex_value(xtext[i + 1]);
        const int low = hex_value(xtext[i + 2]);
        if (high < 0 || low < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>((high << 4) | low));
        i += 2;
    }
    return out;
}

std::string xclient_address(std::string_view ip) {
    if (ip.find(':') != std::string_view::npos) {
        return "IPV6:" + std::string(ip);
    }
    return std::string(ip);
}

std::optional<std::vector<std::string>> build_xclient(std::span<const XclientAttribute> attributes,
                                                      std::span<const std::string> offered,
                                                      std::size_t max_line) {
    // Room for " NAME=value" items on one line: max_line - "XCLIENT" - CRLF.
    const std::size_t room = max_line - kVerb.size() - 2;
    std::vector<std::string> lines;
    std::string current;
    for (const XclientAttribute& attribute : attributes) {
        if (!offers(offered, attribute.name)) {
            continue;
        }
        std::string item = " " + attribute.name + "=" + xtext_encode(attribute.value);
        if (item.size() > room) {
            if (attribute.name != "HELO" && attribute.name != "NAME") {
                return std::nullopt;
            }
            item = " " + attribute.name + "=" + std::string(kXclientUnavailable);
        }
        if (current.size() + item.size() > room) {
            lines.push_back(std::string(kVerb) + current + "\r\n");
            current.clear();
        }
        current += item;
    }
    if (!current.empty()) {
        lines.push_back(std::string(kVerb) + current + "\r\n");
    }
    return lines;
}

}  // namespace portcullis::smtp
