#include "ops/http.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace portcullis::ops::http {

namespace {

Parse bad(int status, std::string reason) {
    Parse p;
    p.state = Parse::State::bad;
    p.status = status;
    p.reason = std::move(reason);
    return p;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

std::string_view status_text(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 431:
            return "Request Header Fields Too Large";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Error";
    }
}

}  // namespace

Parse parse_request(std::string_view received) {
    const std::size_t end = received.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (received.size() >= kMaxRequest) {
            return bad(431, "request larger than 8 KiB");
        }
        return {};
    }
    if (end + 4 > kMaxRequest) {
        return bad(431, "request larger than 8 KiB");
    }
    const std::string_view head = received.substr(0, end);
    const std::size_t line_end = head.find("\r\n");
    const std::string_view request_line = head.substr(0, line_end);
    const std::size_t sp1 = request_line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
        request_line.find(' ', sp2 + 1) != std::string_view::npos) {
        return bad(400, "malformed request line");
    }
    const std::string_view method = request_line.substr(0, sp1);
    const std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = request_line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
        return version.rfind("HTTP/", 0) == 0 ? bad(505, "only HTTP/1.0 and HTTP/1.1")
                                              : bad(400, "malformed request line");
    }
    if (target.empty() || target.front() != '/') {
        return bad(400, "the target must be an absolute path");
    }
    if (std::any_of(target.begin(), target.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u <= 0x20 || u >= 0x7f;
        })) {
        return bad(400, "invalid character in the target");
    }
    // Headers: each "Name: value"; a request body is not accepted.
    std::string_view rest =
        line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
    while (!rest.empty()) {
        const std::size_t eol = rest.find("\r\n");
        const std::string_view line = rest.substr(0, eol);
        rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
        const std::size_t colon = line.find(':');
        if (colon == 0 || colon == std::string_view::npos || line.front() == ' ' ||
            line.front() == '\t' ||
            line.substr(0, colon).find_first_of(" \t") != std::string_view::npos) {
            return bad(400, "malformed header line");
        }
        const std::string_view name = line.substr(0, colon);
        const std::string_view value = trim(line.substr(colon + 1));
        if (iequals(name, "Transfer-Encoding") ||
            (iequals(name, "Content-Length") && value != "0")) {
            return bad(400, "a request body is not accepted");
        }
    }
    if (method != "GET") {
        return bad(405, "only GET is allowed");
    }
    Parse p;
    p.state = Parse::State::complete;
    p.path = std::string(target.substr(0, target.find('?')));
    return p;
}

std::string response(int status, std::string_view content_type, std::string_view body) {
    std::string out = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n",
        status, status_text(status), content_type, body.size());
    if (status == 405) {
        out += "Allow: GET\r\n";
    }
    out += "Connection: close\r\n\r\n";
    out += body;
    return out;
}

}  // namespace portcullis::ops::http
