// Sender rules: exact addresses, "*@domain" and "<>", compared ignoring ASCII case.
//
// Patterns use dot-atom local parts (RFC 5321 atext, UTF-8 allowed) without '*', so
// "a*@example.com" is refused rather than silently taken literally; quoted local parts
// are not supported in patterns.
#include "policy/sender_rules.hpp"

#include <algorithm>

namespace portcullis::policy {
namespace {

constexpr std::string_view null_sender_pattern = "<>";
constexpr std::string_view wildcard_prefix = "*@";
constexpr std::size_t max_local_part = 64;
constexpr std::size_t max_domain = 255;

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](char x, char y) { return lower(x) == lower(y); });
}

bool is_alnum_or_utf8(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           static_cast<unsigned char>(c) >= 0x80;
}

// Dot-separated non-empty parts, each made only of characters accepted by `ok`.
template <class Pred>
bool dotted(std::string_view text, Pred ok) {
    if (text.empty() || text.front() == '.' || text.back() == '.' ||
        text.find("..") != std::string_view::npos) {
        return false;
    }
    return std::all_of(text.begin(), text.end(), [&ok](char c) { return c == '.' || ok(c); });
}

bool valid_local_part(std::string_view local) {
    constexpr std::string_view specials = "!#$%&'+-/=?^_`{|}~";
    return local.size() <= max_local_part && dotted(local, [&specials](char c) {
               return is_alnum_or_utf8(c) || specials.find(c) != std::string_view::npos;
           });
}

bool valid_domain(std::string_view domain) {
    return domain.size() <= max_domain &&
           dotted(domain, [](char c) { return is_alnum_or_utf8(c) || c == '-'; });
}

// Splits "local@domain" at the last '@'; false when there is none.
bool split_address(std::string_view address, std::string_view& local, std::string_view& domain) {
    const std::size_t at = address.rfind('@');
    if (at == std::string_view::npos) {
        return false;
    }
    local = address.substr(0, at);
    domain = address.substr(at + 1);
    return true;
}

bool valid_address(std::string_view address) {
    std::string_view local;
    std::string_view domain;
    return split_address(address, local, domain) && valid_local_part(local) && valid_domain(domain);
}

bool matches(std::string_view pattern, std::string_view address) {
    if (pattern == null_sender_pattern || address.empty()) {
        return pattern == null_sender_pattern && address.empty();
    }
    if (pattern.starts_with(wildcard_prefix)) {
        std::string_view local;
        std::string_view domain;
        return split_address(address, local, domain) && !local.empty() &&
               iequals(domain, pattern.substr(wildcard_prefix.size()));
    }
    return iequals(pattern, address);
}

}  // namespace

bool sender_allowed(std::string_view login, std::span<const std::string> patterns,
                    std::string_view address) {
    if (patterns.empty()) {
        return !address.empty() && valid_address(login) && iequals(login, address);
    }
    return std::any_of(patterns.begin(), patterns.end(),
                       [address](const std::string& p) { return matches(p, address); });
}

bool same_address(std::string_view a, std::string_view b) {
    return iequals(a, b);
}

bool valid_sender_pattern(std::string_view pattern) {
    if (pattern == null_sender_pattern) {
        return true;
    }
    if (pattern.starts_with(wildcard_prefix)) {
        return valid_domain(pattern.substr(wildcard_prefix.size()));
    }
    return valid_address(pattern);
}

}  // namespace portcullis::policy
