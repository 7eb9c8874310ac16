// Fuzzes the command path: LineReader splitting, parse_command, parse_mail_from and
// parse_rcpt_to. Accepted paths must be safe to relay and must survive a round trip.
#include <algorithm>
#include <string>

#include "fuzz_check.hpp"
#include "smtp/command.hpp"
#include "smtp/line_reader.hpp"

using namespace portcullis::smtp;

namespace {

bool is_control(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
}

std::string serialize(std::string_view prefix, const PathArgument& p) {
    std::string s(prefix);
    s += "<" + p.address + ">";
    for (const auto& param : p.parameters) {
        s += " " + param.keyword;
        if (!param.value.empty()) {
            s += "=" + param.value;
        }
    }
    return s;
}

void check_path(const PathResult& r, std::string_view prefix, bool mail,
                PathResult (*parse)(std::string_view)) {
    if (!r.path) {
        return;
    }
    const auto& address = r.path->address;
    FUZZ_CHECK(address.size() <= 254);
    FUZZ_CHECK(std::none_of(address.begin(), address.end(), is_control));
    FUZZ_CHECK(mail || !address.empty());
    for (const auto& p : r.path->parameters) {
        FUZZ_CHECK(!p.keyword.empty());
        FUZZ_CHECK(std::all_of(p.keyword.begin(), p.keyword.end(), [](char c) {
            return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        }));
        FUZZ_CHECK(p.value.find_first_of(" =") == std::string::npos);
        FUZZ_CHECK(std::none_of(p.value.begin(), p.value.end(), is_control));
    }
    const auto again = parse(serialize(prefix, *r.path));
    FUZZ_CHECK(again.path.has_value());
    FUZZ_CHECK(again.path->address == address);
    FUZZ_CHECK(again.path->parameters == r.path->parameters);
}

void check_line(std::string_view line) {
    const Command c = parse_command(line);
    if (!c.argument.empty()) {
        FUZZ_CHECK(c.argument.data() >= line.data());
        FUZZ_CHECK(c.argument.data() + c.argument.size() <= line.data() + line.size());
        FUZZ_CHECK(c.argument.back() != ' ');
    }
    check_path(parse_mail_from(c.argument), "FROM:", true, parse_mail_from);
    check_path(parse_rcpt_to(c.argument), "TO:", false, parse_rcpt_to);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = portcullis::fuzz::as_view(data, size);
    check_line(input);

    // The session's loop: append what arrives, take lines, keep the rest.
    constexpr std::size_t kChunk = 97;
    LineReader reader(kMaxCommandLine);
    std::string buffer;
    for (std::size_t pos = 0; pos < input.size(); pos += kChunk) {
        buffer.append(input.substr(pos, kChunk));
        for (;;) {
            const auto r = reader.next(buffer);
            FUZZ_CHECK(r.consumed <= buffer.size());
            if (r.kind == LineReader::Kind::line) {
                FUZZ_CHECK(r.text.find('\n') == std::string_view::npos);
                FUZZ_CHECK(r.text.size() + 2 <= kMaxCommandLine);
                check_line(r.text);
            }
            FUZZ_CHECK(r.kind == LineReader::Kind::need_more || r.consumed > 0);
            buffer.erase(0, r.consumed);
            if (r.kind == LineReader::Kind::need_more) {
                break;
            }
        }
        FUZZ_CHECK(buffer.size() < kMaxCommandLine);
    }
    return 0;
}
