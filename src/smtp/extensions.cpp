#include "smtp/extensions.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>

#include "smtp/xclient.hpp"

namespace portcullis::smtp {
namespace {

// RFC 3461: ENVID at most 100 characters, ORCPT at most 500.
constexpr std::size_t kMaxEnvid = 100;
constexpr std::size_t kMaxOrcpt = 500;

char upper_char(char c) {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
}

std::string upper(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), upper_char);
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return upper_char(x) == upper_char(y);
           });
}

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        const std::size_t pos = text.find(separator, start);
        out.push_back(text.substr(start, pos == std::string_view::npos ? pos : pos - start));
        if (pos == std::string_view::npos) {
            return out;
        }
        start = pos + 1;
    }
}

bool is_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool is_printable_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 0x20 && u <= 0x7E;
    });
}

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

bool is_alnum(char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// RFC 6533 utf-8-addr-unitext: graphic ASCII except "+", "=" and "\" (which only starts
// an "\x{HEX}" escape), or non-ASCII octets (the caller's parser checked UTF-8).
bool valid_unitext(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto u = static_cast<unsigned char>(s[i]);
        if (u >= 0x80) {
            continue;
        }
        if (u < '!' || u > '~' || u == '+' || u == '=') {
            return false;
        }
        if (u == '\\') {
            if (s.substr(i, 3) != "\\x{") {
                return false;
            }
            std::size_t j = i + 3;
            while (j < s.size() && is_hex(s[j]) && j - (i + 3) < 6) {
                ++j;
            }
            if (j == i + 3 || j >= s.size() || s[j] != '}') {
                return false;
            }
            i = j;
        }
    }
    return true;
}

bool valid_utf8_sequence(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto lead = static_cast<unsigned char>(s[i]);
        std::size_t n = lead < 0x80           ? 1
                        : (lead >> 5) == 0x6  ? 2
                        : (lead >> 4) == 0xE  ? 3
                        : (lead >> 3) == 0x1E ? 4
                                              : 0;
        if (n == 0 || i + n > s.size()) {
            return false;
        }
        for (std::size_t k = 1; k < n; ++k) {
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
                return false;
            }
        }
        i += n;
    }
    return true;
}

ParamOutcome verdict(ParamVerdict v) {
    ParamOutcome out;
    out.verdict = v;
    return out;
}

std::optional<std::uint64_t> parse_decimal(std::string_view text) {
    std::uint64_t value = 0;
    const char* end = text.data() + text.size();
    if (text.empty() || text.size() > 20 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || ptr != end) {
        return std::nullopt;
    }
    return value;
}

// One MAIL parameter; appends its re-encoded form to `out.forward`.
ParamVerdict mail_parameter(const Parameter& p, const Offer& offer, ParamOutcome& out) {
    if (p.keyword == "SIZE") {
        const auto size = parse_decimal(p.value);
        if (!size) {
            return ParamVerdict::syntax;
        }
        if (*size > offer.size_limit) {
            return ParamVerdict::too_big;
        }
        if (offer.forward_size) {
            out.forward += " SIZE=" + std::to_string(*size);
        }
        return ParamVerdict::ok;
    }
    if (p.keyword == "BODY") {
        if (!offer.eight_bit_mime) {
            return ParamVerdict::unsupported;
        }
        if (!iequals(p.value, "7BIT") && !iequals(p.value, "8BITMIME")) {
            return ParamVerdict::syntax;
        }
        out.forward += " BODY=" + upper(p.value);
        return ParamVerdict::ok;
    }
    if (p.keyword == "SMTPUTF8") {
        if (!offer.smtputf8) {
            return ParamVerdict::unsupported;
        }
        if (!p.value.empty()) {
            return ParamVerdict::syntax;
        }
        out.smtputf8 = true;
        out.forward += " SMTPUTF8";
        return ParamVerdict::ok;
    }
    if (p.keyword == "RET") {
        if (!offer.dsn) {
            return ParamVerdict::unsupported;
        }
        if (!iequals(p.value, "FULL") && !iequals(p.value, "HDRS")) {
            return ParamVerdict::syntax;
        }
        out.forward += " RET=" + upper(p.value);
        return ParamVerdict::ok;
    }
    if (p.keyword == "ENVID") {
        if (!offer.dsn) {
            return ParamVerdict::unsupported;
        }
        const auto decoded = xtext_decode(p.value);
        if (!decoded || decoded->empty() || decoded->size() > kMaxEnvid ||
            !is_printable_ascii(*decoded)) {
            return ParamVerdict::syntax;
        }
        out.forward += " ENVID=" + xtext_encode(*decoded);
        return ParamVerdict::ok;
    }
    return ParamVerdict::unsupported;
}

std::optional<std::string> notify_value(std::string_view value) {
    const auto items = split(value, ',');
    std::set<std::string> seen;
    for (const auto item : items) {
        std::string word = upper(item);
        if (word != "NEVER" && word != "SUCCESS" && word != "FAILURE" && word != "DELAY") {
            return std::nullopt;
        }
        if (!seen.insert(std::move(word)).second) {
            return std::nullopt;
        }
    }
    if (seen.count("NEVER") != 0 && seen.size() > 1) {
        return std::nullopt;  // NEVER excludes the others (RFC 3461 4.1)
    }
    return upper(value);
}

std::optional<std::string> orcpt_value(std::string_view value, bool smtputf8) {
    const std::size_t semicolon = value.find(';');
    if (value.size() > kMaxOrcpt || semicolon == std::string_view::npos || semicolon == 0) {
        return std::nullopt;
    }
    const auto type = value.substr(0, semicolon);
    const auto address = value.substr(semicolon + 1);
    if (!std::all_of(type.begin(), type.end(), [](char c) { return is_alnum(c) || c == '-'; })) {
        return std::nullopt;
    }
    if (iequals(type, "rfc822")) {
        const auto decoded = xtext_decode(address);
        if (!decoded || decoded->empty() || !is_printable_ascii(*decoded)) {
            return std::nullopt;
        }
        return "rfc822;" + xtext_encode(*decoded);
    }
    if (iequals(type, "utf-8") && smtputf8 && valid_utf8_sequence(address) &&
        valid_unitext(address)) {
        return "utf-8;" + std::string(address);
    }
    return std::nullopt;
}

ParamVerdict rcpt_parameter(const Parameter& p, const Offer& offer, bool smtputf8,
                            ParamOutcome& out) {
    if (p.keyword != "NOTIFY" && p.keyword != "ORCPT") {
        return ParamVerdict::unsupported;
    }
    if (!offer.dsn) {
        return ParamVerdict::unsupported;
    }
    const auto value =
        p.keyword == "NOTIFY" ? notify_value(p.value) : orcpt_value(p.value, smtputf8);
    if (!value) {
        return ParamVerdict::syntax;
    }
    out.forward += " " + p.keyword + "=" + *value;
    return ParamVerdict::ok;
}

template <class One>
ParamOutcome check_all(const PathArgument& path, One one) {
    ParamOutcome out;
    std::set<std::string> seen;
    for (const Parameter& p : path.parameters) {
        if (!seen.insert(p.keyword).second) {
            return verdict(ParamVerdict::syntax);
        }
        if (const ParamVerdict v = one(p, out); v != ParamVerdict::ok) {
            return verdict(v);
        }
    }
    return out;
}

}  // namespace

Extensions parse_ehlo(std::span<const std::string> lines) {
    Extensions e;
    e.esmtp = true;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const auto words = split(lines[i], ' ');
        const std::string keyword = upper(words.front());
        if (keyword == "PIPELINING") {
            e.pipelining = true;
        } else if (keyword == "SIZE") {
            e.size = true;
            const auto limit = words.size() > 1 ? parse_decimal(words[1]) : std::nullopt;
            e.max_size = limit.value_or(0);
        } else if (keyword == "8BITMIME") {
            e.eight_bit_mime = true;
        } else if (keyword == "SMTPUTF8") {
            e.smtputf8 = true;
        } else if (keyword == "DSN") {
            e.dsn = true;
        } else if (keyword == "ENHANCEDSTATUSCODES") {
            e.enhanced_status_codes = true;
        } else if (keyword == "STARTTLS") {
            e.starttls = true;
        } else if (keyword == "XCLIENT") {
            e.xclient = true;
            e.xclient_attributes.clear();
            for (std::size_t w = 1; w < words.size(); ++w) {
                if (!words[w].empty()) {
                    e.xclient_attributes.push_back(upper(words[w]));
                }
            }
        }
    }
    return e;
}

Extensions common_extensions(std::span<const Extensions> each) {
    if (each.empty()) {
        return {};
    }
    Extensions c = each.front();
    for (const Extensions& e : each.subspan(1)) {
        c.esmtp = c.esmtp && e.esmtp;
        c.pipelining = c.pipelining && e.pipelining;
        if (c.size && e.size && e.max_size != 0) {
            c.max_size = c.max_size == 0 ? e.max_size : std::min(c.max_size, e.max_size);
        }
        c.size = c.size && e.size;
        c.eight_bit_mime = c.eight_bit_mime && e.eight_bit_mime;
        c.smtputf8 = c.smtputf8 && e.smtputf8;
        c.dsn = c.dsn && e.dsn;
        c.enhanced_status_codes = c.enhanced_status_codes && e.enhanced_status_codes;
        c.starttls = c.starttls && e.starttls;
        c.xclient = c.xclient && e.xclient;
        std::erase_if(c.xclient_attributes, [&e](const std::string& a) {
            return std::find(e.xclient_attributes.begin(), e.xclient_attributes.end(), a) ==
                   e.xclient_attributes.end();
        });
    }
    if (!c.size) {
        c.max_size = 0;
    }
    if (!c.xclient) {
        c.xclient_attributes.clear();
    }
    return c;
}

std::string describe(const Extensions& e) {
    if (!e.esmtp) {
        return "HELO only";
    }
    std::string out;
    const auto add = [&out](std::string_view word) {
        out += (out.empty() ? "" : " ") + std::string(word);
    };
    if (e.pipelining) {
        add("PIPELINING");
    }
    if (e.size) {
        add(e.max_size != 0 ? "SIZE=" + std::to_string(e.max_size) : "SIZE");
    }
    if (e.eight_bit_mime) {
        add("8BITMIME");
    }
    if (e.smtputf8) {
        add("SMTPUTF8");
    }
    if (e.dsn) {
        add("DSN");
    }
    if (e.enhanced_status_codes) {
        add("ENHANCEDSTATUSCODES");
    }
    if (e.starttls) {
        add("STARTTLS");
    }
    if (e.xclient) {
        std::string x = "XCLIENT";
        for (std::size_t i = 0; i < e.xclient_attributes.size(); ++i) {
            x += (i == 0 ? "=" : ",") + e.xclient_attributes[i];
        }
        add(x);
    }
    return out.empty() ? "ESMTP" : out;
}

ParamOutcome check_mail(const PathArgument& path, const Offer& offer) {
    ParamOutcome out = check_all(path, [&offer](const Parameter& p, ParamOutcome& o) {
        return mail_parameter(p, offer, o);
    });
    if (out.verdict == ParamVerdict::ok && !out.smtputf8 && !is_ascii(path.address)) {
        return verdict(ParamVerdict::needs_smtputf8);
    }
    return out;
}

ParamOutcome check_rcpt(const PathArgument& path, const Offer& offer, bool smtputf8) {
    ParamOutcome out = check_all(path, [&offer, smtputf8](const Parameter& p, ParamOutcome& o) {
        return rcpt_parameter(p, offer, smtputf8, o);
    });
    if (out.verdict == ParamVerdict::ok && !smtputf8 && !is_ascii(path.address)) {
        return verdict(ParamVerdict::needs_smtputf8);
    }
    return out;
}

}  // namespace portcullis::smtp
