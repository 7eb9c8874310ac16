// Fuzzes the command path: LineReader splitting, parse_command, parse_mail_from and
// parse_rcpt_to. Accepted paths must be safe to relay and must survive a round trip, and
// so must the MAIL/RCPT parameters check_mail/check_rcpt re-encode for the backend.
#include <algorithm>
#include <string>

#include "fuzz_check.hpp"
#include "smtp/command.hpp"
#include "smtp/extensions.hpp"
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

// Parameters re-encoded for the backend parse back to themselves and encode the same.
void check_forwarded(const PathResult& r, std::string_view prefix, bool mail) {
    if (!r.path) {
        return;
    }
    const Offer offer{1u << 20, true, true, true, true};
    for (const bool smtputf8 : {false, true}) {
        const auto check = [&](const PathArgument& p) {
            return mail ? check_mail(p, offer) : check_rcpt(p, offer, smtputf8);
        };
        const ParamOutcome out = check(*r.path);
        if (out.verdict != ParamVerdict::ok) {
            continue;
        }
        FUZZ_CHECK(std::none_of(out.forward.begin(), out.forward.end(), is_control));
        const std::string line = std::string(prefix) + "<" + r.path->address + ">" + out.forward;
        const auto again = mail ? parse_mail_from(line) : parse_rcpt_to(line);
        FUZZ_CHECK(again.path.has_value());
        const ParamOutcome twice = check(*again.path);
        FUZZ_CHECK(twice.verdict == ParamVerdict::ok);
        FUZZ_CHECK(twice.forward == out.forward);
    }
}

void check_line(std::string_view line) {
    const Command c = parse_command(line);
    // bad_bytes: a control (TAB aside) anywhere; else 8-bit only in MAIL/RCPT arguments.
    const bool control =
        std::any_of(line.begin(), line.end(), [](char ch) { return is_control(ch) && ch != '\t'; });
    const bool eight_bit = std::any_of(
        line.begin(), line.end(), [](char ch) { return static_cast<unsigned char>(ch) >= 0x80; });
    const bool path_verb = c.verb == Verb::mail || c.verb == Verb::rcpt;
    FUZZ_CHECK(control == (c.bad_bytes == BadBytes::control));
    FUZZ_CHECK(control || (c.bad_bytes == BadBytes::non_ascii) == (eight_bit && !path_verb));
    if (!c.argument.empty()) {
        FUZZ_CHECK(c.argument.data() >= line.data());
        FUZZ_CHECK(c.argument.data() + c.argument.size() <= line.data() + line.size());
        FUZZ_CHECK(c.argument.back() != ' ');
    }
    check_path(parse_mail_from(c.argument), "FROM:", true, parse_mail_from);
    check_path(parse_rcpt_to(c.argument), "TO:", false, parse_rcpt_to);
    check_forwarded(parse_mail_from(c.argument), "FROM:", true);
    check_forwarded(parse_rcpt_to(c.argument), "TO:", false);
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
