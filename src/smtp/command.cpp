#include "smtp/command.hpp"

#include <algorithm>
#include <array>
#include <cstddef>

namespace portcullis::smtp {
namespace {

constexpr std::size_t kMaxAddress = 254;

constexpr char to_upper(char c) {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return to_upper(x) == to_upper(y);
           });
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

struct VerbName {
    std::string_view name;
    Verb verb;
};

constexpr std::array<VerbName, 14> kVerbs{{
    {"EHLO", Verb::ehlo},
    {"HELO", Verb::helo},
    {"MAIL", Verb::mail},
    {"RCPT", Verb::rcpt},
    {"DATA", Verb::data},
    {"RSET", Verb::rset},
    {"NOOP", Verb::noop},
    {"QUIT", Verb::quit},
    {"VRFY", Verb::vrfy},
    {"EXPN", Verb::expn},
    {"HELP", Verb::help},
    {"STARTTLS", Verb::starttls},
    {"AUTH", Verb::auth},
    {"BDAT", Verb::bdat},
}};

Verb lookup_verb(std::string_view name) {
    for (const auto& v : kVerbs) {
        if (iequals(name, v.name)) {
            return v.verb;
        }
    }
    return Verb::unknown;
}

std::string_view trim_trailing_spaces(std::string_view s) {
    const auto last = s.find_last_not_of(' ');
    return last == std::string_view::npos ? std::string_view{} : s.substr(0, last + 1);
}

// --- UTF-8 -------------------------------------------------------------------------------

// Length of the well-formed UTF-8 sequence (RFC 3629) starting at s[i], or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
    const unsigned char lead = b(0);
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        return cont(1) ? 2 : 0;
    }
    if (lead >= 0xE0 && lead <= 0xEF) {
        if (!cont(1) || !cont(2)) {
            return 0;
        }
        const bool overlong = lead == 0xE0 && b(1) < 0xA0;
        const bool surrogate = lead == 0xED && b(1) >= 0xA0;
        return (overlong || surrogate) ? 0 : 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3)) {
            return 0;
        }
        const bool overlong = lead == 0xF0 && b(1) < 0x90;
        const bool too_big = lead == 0xF4 && b(1) >= 0x90;
        return (overlong || too_big) ? 0 : 4;
    }
    return 0;
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

bool is_control(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
}

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_non_ascii(char c) {
    return static_cast<unsigned char>(c) >= 0x80;
}

// RFC 5321 atext (plus '.', which separates atoms), or UTF-8 (RFC 6531).
bool is_local_char(char c) {
    constexpr std::string_view kSpecials = "!#$%&'*+-/=?^_`{|}~.";
    return is_alnum(c) || is_non_ascii(c) || kSpecials.find(c) != std::string_view::npos;
}

bool is_domain_char(char c) {
    return is_alnum(c) || is_non_ascii(c) || c == '-' || c == '.' || c == '_';
}

// --- addresses ---------------------------------------------------------------------------

// Position of the first unquoted `target` in s (quotes and backslash escapes inside
// quotes are honoured), npos if none, or nullopt if a quote is left open.
std::optional<std::size_t> find_unquoted(std::string_view s, char target) {
    bool quoted = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (quoted && c == '\\') {
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (!quoted && c == target) {
            return i;
        }
    }
    if (quoted) {
        return std::nullopt;
    }
    return std::string_view::npos;
}

// Local part: atext/dots/UTF-8 outside quotes; anything but controls inside quotes.
bool valid_local_part(std::string_view local) {
    if (local.empty()) {
        return false;
    }
    bool quoted = false;
    for (std::size_t i = 0; i < local.size(); ++i) {
        const char c = local[i];
        if (c == '"') {
            quoted = !quoted;
        } else if (quoted && c == '\\') {
            if (++i == local.size()) {
                return false;
            }
        } else if (!quoted && !is_local_char(c)) {
            return false;
        }
    }
    return !quoted;
}

// A domain name, or an address literal "[...]" (RFC 5321 4.1.3).
bool valid_domain(std::string_view domain) {
    if (domain.empty()) {
        return false;
    }
    if (domain.front() == '[') {
        if (domain.size() < 3 || domain.back() != ']') {
            return false;
        }
        const auto inner = domain.substr(1, domain.size() - 2);
        return std::none_of(inner.begin(), inner.end(), [](char c) {
            return c == '[' || c == ']' || c == '\\' || c == ' ' || is_non_ascii(c);
        });
    }
    return std::all_of(domain.begin(), domain.end(), is_domain_char);
}

bool valid_mailbox(std::string_view address) {
    if (address.empty() || address.size() > kMaxAddress) {
        return false;
    }
    if (std::any_of(address.begin(), address.end(), is_control) || !valid_utf8(address)) {
        return false;
    }
    const auto at = find_unquoted(address, '@');
    if (!at || *at == std::string_view::npos) {
        return false;
    }
    const auto local = address.substr(0, *at);
    const auto domain = address.substr(*at + 1);
    return valid_local_part(local) && valid_domain(domain);
}

// "@a,@b:" at the front of a path: each element "@" domain, separated by ",".
bool valid_source_route(std::string_view route) {
    while (!route.empty()) {
        if (route.front() != '@') {
            return false;
        }
        const auto comma = route.find(',');
        const auto domain =
            route.substr(1, comma == std::string_view::npos ? route.npos : comma - 1);
        if (domain.empty() || domain.front() == '[' || !valid_domain(domain)) {
            return false;
        }
        route = comma == std::string_view::npos ? std::string_view{} : route.substr(comma + 1);
    }
    return true;
}

// Drops a source route ("@a,@b:"); nullopt if the route is malformed.
std::optional<std::string_view> strip_source_route(std::string_view path) {
    if (path.empty() || path.front() != '@') {
        return path;
    }
    const auto colon = path.find(':');
    if (colon == std::string_view::npos || !valid_source_route(path.substr(0, colon))) {
        return std::nullopt;
    }
    return path.substr(colon + 1);
}

// --- parameters --------------------------------------------------------------------------

bool valid_keyword(std::string_view k) {
    return !k.empty() && is_alnum(k.front()) &&
           std::all_of(k.begin(), k.end(), [](char c) { return is_alnum(c) || c == '-'; });
}

// RFC 5321 esmtp-value: 1*(%d33-60 / %d62-126).
bool valid_value(std::string_view v) {
    return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 33 && u <= 126 && c != '=';
    });
}

std::optional<Parameter> parse_parameter(std::string_view text) {
    const auto eq = text.find('=');
    const auto keyword = text.substr(0, eq);
    if (!valid_keyword(keyword)) {
        return std::nullopt;
    }
    Parameter p;
    p.keyword.reserve(keyword.size());
    std::transform(keyword.begin(), keyword.end(), std::back_inserter(p.keyword), to_upper);
    if (eq != std::string_view::npos) {
        const auto value = text.substr(eq + 1);
        if (!valid_value(value)) {
            return std::nullopt;
        }
        p.value = std::string(value);
    }
    return p;
}

// Space-separated parameters (runs of spaces tolerated).
std::optional<std::vector<Parameter>> parse_parameters(std::string_view text) {
    std::vector<Parameter> out;
    while (!text.empty()) {
        const auto start = text.find_first_not_of(' ');
        if (start == std::string_view::npos) {
            break;
        }
        text.remove_prefix(start);
        const auto end = text.find(' ');
        auto p = parse_parameter(text.substr(0, end));
        if (!p) {
            return std::nullopt;
        }
        out.push_back(std::move(*p));
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end);
    }
    return out;
}

// --- paths -------------------------------------------------------------------------------

enum class PathKind { mail, rcpt };

PathResult fail(PathError e) {
    return PathResult{std::nullopt, e};
}

bool acceptable_address(std::string_view path, std::string_view address, PathKind kind) {
    if (path.empty()) {
        return kind == PathKind::mail;  // the null path "<>"
    }
    if (kind == PathKind::rcpt && iequals(address, "postmaster")) {
        return true;
    }
    return valid_mailbox(address);
}

PathResult parse_path_argument(std::string_view argument, std::string_view prefix, PathKind kind) {
    if (!istarts_with(argument, prefix)) {
        return fail(PathError::syntax);
    }
    argument.remove_prefix(prefix.size());
    if (!argument.empty() && argument.front() == ' ') {
        argument.remove_prefix(1);  // "FROM: <a>", tolerated as Postfix does
    }
    if (argument.empty() || argument.front() != '<') {
        return fail(PathError::syntax);
    }
    argument.remove_prefix(1);
    const auto close = find_unquoted(argument, '>');
    if (!close || *close == std::string_view::npos) {
        return fail(PathError::syntax);
    }
    const auto path = argument.substr(0, *close);
    const auto rest = argument.substr(*close + 1);
    if (!rest.empty() && rest.front() != ' ') {
        return fail(PathError::syntax);
    }
    const auto address = strip_source_route(path);
    if (!address || !acceptable_address(path, *address, kind)) {
        return fail(PathError::bad_address);
    }
    auto parameters = parse_parameters(rest);
    if (!parameters) {
        return fail(PathError::bad_parameter);
    }
    return PathResult{PathArgument{std::string(*address), std::move(*parameters)},
                      PathError::syntax};
}

}  // namespace

Command parse_command(std::string_view line) {
    const auto space = line.find(' ');
    Command c;
    c.verb = lookup_verb(line.substr(0, space));
    if (space != std::string_view::npos) {
        c.argument = trim_trailing_spaces(line.substr(space + 1));
    }
    // A verb with an 8-bit byte is no MAIL or RCPT, so those have it in the argument.
    const bool path_command = c.verb == Verb::mail || c.verb == Verb::rcpt;
    for (const char ch : line) {
        if (is_control(ch) && ch != '\t') {
            c.bad_bytes = BadBytes::control;
            break;
        }
        if (is_non_ascii(ch) && !path_command) {
            c.bad_bytes = BadBytes::non_ascii;  // keep looking for a control
        }
    }
    return c;
}

PathResult parse_mail_from(std::string_view argument) {
    return parse_path_argument(argument, "FROM:", PathKind::mail);
}

PathResult parse_rcpt_to(std::string_view argument) {
    return parse_path_argument(argument, "TO:", PathKind::rcpt);
}

}  // namespace portcullis::smtp
