#include "bench/message.hpp"

#include <fmt/format.h>
#include <openssl/base64.h>

#include <algorithm>

namespace portcullis::bench {
namespace {

constexpr std::size_t kLineBytes = 78;  // including CRLF
constexpr std::size_t kDotEvery = 100;  // every Nth body line starts with '.'

std::string header_block(std::string_view from, std::string_view to) {
    return fmt::format(
        "From: <{}>\r\nTo: <{}>\r\nSubject: portcullis-bench\r\n"
        "Message-ID: <portcullis-bench@bench.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
        from, to);
}

// One filler line of `length` bytes (>= 2) ending in CRLF.
void append_line(std::string& out, std::size_t length, std::size_t index) {
    static constexpr std::string_view kAlphabet =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
    for (std::size_t i = 0; i + 2 < length; ++i) {
        const bool dot = i == 0 && index % kDotEvery == kDotEvery - 1;
        out.push_back(dot ? '.' : kAlphabet[(index + i) % kAlphabet.size()]);
    }
    out += "\r\n";
}

std::string auth_plain_line(const Options& o) {
    std::string blob;
    blob.push_back('\0');
    blob += o.user;
    blob.push_back('\0');
    blob += o.password;
    return "AUTH PLAIN " + base64(blob) + "\r\n";
}

}  // namespace

std::string base64(std::string_view bytes) {
    std::size_t length = 0;
    EVP_EncodedLength(&length, bytes.size());
    std::string out(length, '\0');
    const std::size_t written =
        EVP_EncodeBlock(reinterpret_cast<std::uint8_t*>(out.data()),
                        reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    out.resize(written);
    return out;
}

std::string make_message(std::uint64_t size, std::string_view from, std::string_view to) {
    std::string out = header_block(from, to);
    if (out.size() + 2 > size) {
        out.clear();  // too small for headers: body lines only
    }
    out.reserve(size);
    std::size_t index = 0;
    while (out.size() < size) {
        const std::size_t remaining = size - out.size();
        std::size_t length = std::min(kLineBytes, remaining);
        if (remaining - length == 1) {
            --length;  // never leave a 1-byte remainder: a line needs CRLF
        }
        append_line(out, length, index++);
    }
    return out;
}

std::string dot_stuff(std::string_view content) {
    std::string out;
    out.reserve(content.size() + content.size() / (kLineBytes * kDotEvery) + 8);
    bool line_start = true;
    for (const char c : content) {
        if (line_start && c == '.') {
            out.push_back('.');
        }
        out.push_back(c);
        line_start = c == '\n';
    }
    out += ".\r\n";
    return out;
}

Script make_script(const Options& o) {
    Script s;
    s.ehlo = "EHLO " + o.ehlo_name + "\r\n";
    if (o.auth != AuthMech::none) {
        s.auth_plain = auth_plain_line(o);
        s.login_user = base64(o.user) + "\r\n";
        s.login_pass = base64(o.password) + "\r\n";
    }
    s.mail = "MAIL FROM:<" + o.from + ">\r\n";
    s.rcpt = "RCPT TO:<" + o.to + ">\r\n";
    s.transaction = s.mail + s.rcpt + s.data;
    s.message_size = o.message_size;
    s.body = dot_stuff(make_message(o.message_size, o.from, o.to));
    return s;
}

unsigned staggered_first_session(unsigned index, unsigned clients, unsigned per_connection) {
    if (clients == 0 || per_connection == 0) {
        return 1;
    }
    const auto skip =
        static_cast<unsigned>(std::uint64_t{index % clients} * per_connection / clients);
    return std::max(1u, per_connection - skip);
}

}  // namespace portcullis::bench
