// Durations, sizes and rates as written in config and users files.
#include "config/units.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>

namespace portcullis::config {
namespace {

struct Unit {
    std::string_view suffix;
    std::uint64_t factor;
};

// Milliseconds per unit; ordered from the largest so format_duration picks the shortest.
constexpr std::array<Unit, 5> duration_units{{
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

constexpr std::array<Unit, 4> size_units{{
    {"B", 1},
    {"KiB", 1024},
    {"MiB", 1024ull * 1024},
    {"GiB", 1024ull * 1024 * 1024},
}};

std::string in_quotes(std::string_view text) {
    return "\"" + std::string(text) + "\"";
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Splits "123abc" into the leading digits and the rest.
std::pair<std::string_view, std::string_view> split_number(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size() && is_digit(text[i])) {
        ++i;
    }
    return {text.substr(0, i), text.substr(i)};
}

// Parses decimal digits (nothing else) into a uint64; false on overflow.
bool parse_digits(std::string_view digits, std::uint64_t& value) {
    const char* end = digits.data() + digits.size();
    auto [ptr, ec] = std::from_chars(digits.data(), end, value);
    return ec == std::errc{} && ptr == end;
}

// Reasons shared by durations and sizes for text that does not start with a number.
std::string bad_start(std::string_view kind, std::string_view text) {
    if (text.empty()) {
        return "empty " + std::string(kind);
    }
    if (text.front() == '-') {
        return "invalid " + std::string(kind) + " " + in_quotes(text) + ": it must not be negative";
    }
    if (text.find_first_of(" \t") != std::string_view::npos) {
        return "invalid " + std::string(kind) + " " + in_quotes(text) + ": spaces are not allowed";
    }
    return "invalid " + std::string(kind) + " " + in_quotes(text) + ": it must start with a number";
}

std::string bad_unit(std::string_view kind, std::string_view text, std::string_view unit,
                     std::string_view allowed) {
    std::string why;
    if (unit.empty()) {
        why = "missing unit";
    } else if (unit.front() == '.') {
        why = "fractions are not allowed; use a smaller unit";
    } else if (unit.find_first_of(" \t") != std::string_view::npos) {
        why = "spaces are not allowed";
    } else {
        why = "unknown unit " + in_quotes(unit);
    }
    return "invalid " + std::string(kind) + " " + in_quotes(text) + ": " + why + " (use " +
           std::string(allowed) + ")";
}

template <std::size_t N>
const Unit* find_unit(const std::array<Unit, N>& units, std::string_view suffix) {
    for (const Unit& u : units) {
        if (u.suffix == suffix) {
            return &u;
        }
    }
    return nullptr;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text, std::string& error) {
    auto [digits, suffix] = split_number(text);
    if (digits.empty()) {
        error = bad_start("duration", text);
        return std::nullopt;
    }
    const Unit* unit = find_unit(duration_units, suffix);
    if (unit == nullptr) {
        error = bad_unit("duration", text, suffix, "ms, s, m, h or d");
        return std::nullopt;
    }
    constexpr auto max_ms = static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max());
    std::uint64_t count = 0;
    if (!parse_digits(digits, count) || count > max_ms / unit->factor) {
        error = "invalid duration " + in_quotes(text) + ": too large";
        return std::nullopt;
    }
    return Duration(static_cast<Duration::rep>(count * unit->factor));
}

std::optional<std::uint64_t> parse_size(std::string_view text, std::string& error) {
    auto [digits, suffix] = split_number(text);
    if (digits.empty()) {
        error = bad_start("size", text);
        return std::nullopt;
    }
    const Unit* unit = suffix.empty() ? &size_units[0] : find_unit(size_units, suffix);
    if (unit == nullptr) {
        error = bad_unit("size", text, suffix, "B, KiB, MiB or GiB");
        return std::nullopt;
    }
    std::uint64_t count = 0;
    if (!parse_digits(digits, count) ||
        count > std::numeric_limits<std::uint64_t>::max() / unit->factor) {
        error = "invalid size " + in_quotes(text) + ": too large";
        return std::nullopt;
    }
    return count * unit->factor;
}

namespace {

// "COUNT/DURATION" where COUNT is read by `count_of` (digits, or a size).
template <class CountOf>
std::optional<Rate> parse_any_rate(std::string_view text, std::string& error,
                                   std::string_view example, CountOf count_of) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        error = "invalid rate " + in_quotes(text) + ": expected COUNT/DURATION, e.g. \"" +
                std::string(example) + "\"";
        return std::nullopt;
    }
    std::uint64_t count = 0;
    std::string count_error;
    if (!count_of(text.substr(0, slash), count, count_error)) {
        error = "invalid rate " + in_quotes(text) + ": " + count_error;
        return std::nullopt;
    }
    std::string duration_error;
    auto per = parse_duration(text.substr(slash + 1), duration_error);
    if (!per) {
        error = "invalid rate " + in_quotes(text) + ": " + duration_error;
        return std::nullopt;
    }
    if (per->count() == 0) {
        error = "invalid rate " + in_quotes(text) + ": the period must be longer than 0";
        return std::nullopt;
    }
    return Rate{count, *per};
}

}  // namespace

std::optional<Rate> parse_rate(std::string_view text, std::string& error) {
    return parse_any_rate(text, error, "200/1h",
                          [](std::string_view digits, std::uint64_t& count, std::string& why) {
                              if (!parse_digits(digits, count) || count == 0) {
                                  why = "the count must be a whole number of at least 1";
                                  return false;
                              }
                              return true;
                          });
}

std::optional<Rate> parse_size_rate(std::string_view text, std::string& error) {
    return parse_any_rate(text, error, "500MiB/1d",
                          [](std::string_view size, std::uint64_t& count, std::string& why) {
                              auto value = parse_size(size, why);
                              if (!value) {
                                  return false;
                              }
                              if (*value == 0) {
                                  why = "the size must be at least 1 byte";
                                  return false;
                              }
                              count = *value;
                              return true;
                          });
}

std::string format_duration(Duration d) {
    const auto ms = d.count();
    if (ms == 0) {
        return "0s";
    }
    // Negative values never come from parse_duration, but print them faithfully.
    const std::string sign = ms < 0 ? "-" : "";
    const auto magnitude =
        ms < 0 ? 0ull - static_cast<std::uint64_t>(ms) : static_cast<std::uint64_t>(ms);
    for (const Unit& u : duration_units) {
        if (magnitude % u.factor == 0) {
            return sign + std::to_string(magnitude / u.factor) + std::string(u.suffix);
        }
    }
    return sign + std::to_string(magnitude) + "ms";  // unreachable: "ms" divides everything
}

}  // namespace portcullis::config
