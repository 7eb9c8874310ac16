#include "config/toml_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace portcullis::config::detail {
namespace {

constexpr std::size_t max_file_size = 16 * 1024 * 1024;

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions),
// ignoring ASCII case.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) {
        d[i][0] = i;
    }
    for (std::size_t j = 0; j <= b.size(); ++j) {
        d[0][j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1])) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() &&
           edit_distance(text.substr(0, prefix.size()), prefix) == 0;
}

std::string in_quotes(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

std::string join_quoted(std::initializer_list<std::string_view> items) {
    std::string out;
    for (std::string_view item : items) {
        out += (out.empty() ? "" : ", ") + in_quotes(item);
    }
    return out;
}

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

[[noreturn]] void throw_io_error(const std::filesystem::path& file, std::string message) {
    throw ConfigError({Diagnostic{file.string(), 0, 0, std::move(message)}});
}

}  // namespace

void Diagnostics::error(const toml::source_region& where, std::string message) {
    error(where.begin.line, where.begin.column, std::move(message));
}

void Diagnostics::error(std::uint32_t line, std::uint32_t column, std::string message) {
    list_.push_back(Diagnostic{file_, line, column, std::move(message)});
}

void Diagnostics::throw_if_any() {
    if (!list_.empty()) {
        throw_all();
    }
}

void Diagnostics::throw_all() {
    std::stable_sort(list_.begin(), list_.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    throw ConfigError(std::move(list_));
}

std::optional<toml::table> parse_toml(std::string_view text, Diagnostics& diags) {
    try {
        return toml::parse(text, std::string_view{});
    } catch (const toml::parse_error& e) {
        diags.error(e.source(), "TOML syntax error: " + std::string(e.description()));
        return std::nullopt;
    }
}

std::string read_file(const std::filesystem::path& file) {
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(file.c_str(), "rb"));
    if (!f) {
        throw_io_error(file, std::string("cannot open: ") + std::strerror(errno));
    }
    std::string text;
    char buffer[8192];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, f.get())) > 0) {
        text.append(buffer, n);
        if (text.size() > max_file_size) {
            throw_io_error(file, "cannot read: the file is larger than 16 MiB");
        }
    }
    if (std::ferror(f.get()) != 0) {
        throw_io_error(file, std::string("cannot read: ") + std::strerror(errno));
    }
    return text;
}

std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates) {
    const bool has_letter = std::any_of(word.begin(), word.end(),
                                        [](char c) { return lower(c) >= 'a' && lower(c) <= 'z'; });
    if (!has_letter) {
        return {};  // "1.1" is no typo of "1.2"
    }
    std::string_view best;
    std::size_t best_distance = 0;
    for (std::string_view candidate : candidates) {
        const std::size_t limit = std::clamp<std::size_t>(candidate.size() / 3, 1, 3);
        std::size_t distance = edit_distance(word, candidate);
        const bool abbreviation = word.size() >= 4 && starts_with_ignoring_case(candidate, word);
        const bool extension = candidate.size() >= 4 && starts_with_ignoring_case(word, candidate);
        if (distance > limit && (abbreviation || extension)) {
            distance = limit;  // "cert" for "certificate", "warning" for "warn"
        }
        if (distance <= limit && (best.empty() || distance < best_distance)) {
            best = candidate;
            best_distance = distance;
        }
    }
    return best.empty() ? std::string() : " (did you mean '" + std::string(best) + "'?)";
}

std::string_view type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a float";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

TableReader::TableReader(const toml::table& table, std::string path, std::string title,
                         Diagnostics& diags)
    : table_(table), path_(std::move(path)), title_(std::move(title)), diags_(diags) {}

std::string TableReader::key_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

const toml::node* TableReader::get(std::string_view key) {
    if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
        known_.emplace_back(key);
    }
    return table_.get(key);
}

void TableReader::error(const toml::node& node, std::string_view key, std::string_view message) {
    diags_.error(node.source(), key_path(key) + ": " + std::string(message));
}

void TableReader::expected(const toml::node& node, std::string_view key, std::string_view what) {
    error(node, key, "expected " + std::string(what) + ", got " + std::string(type_name(node)));
}

std::optional<std::string> TableReader::string(std::string_view key) {
    const toml::node* node = get(key);
    if (node == nullptr) {
        return std::nullopt;
    }
    const auto* s = node->as_string();
    if (s == nullptr) {
        expected(*node, key, "a string");
        return std::nullopt;
    }
    if (s->get().find('\0') != std::string::npos) {
        error(*node, key, "must not contain a NUL character");
        return std::nullopt;
    }
    return s->get();
}

std::optional<std::string> TableReader::nonempty_string(std::string_view key) {
    auto value = string(key);
    if (value && value->empty()) {
        error(*get(key), key, "must not be empty");
        return std::nullopt;
    }
    return value;
}

std::optional<std::int64_t> TableReader::integer(std::string_view key, std::int64_t min,
                                                 std::int64_t max) {
    const toml::node* node = get(key);
    if (node == nullptr) {
        return std::nullopt;
    }
    const auto* i = node->as_integer();
    if (i == nullptr) {
        expected(*node, key, "an integer");
        return std::nullopt;
    }
    const std::int64_t value = i->get();
    if (value < min || value > max) {
        error(*node, key,
              "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                  std::to_string(value));
        return std::nullopt;
    }
    return value;
}

std::optional<bool> TableReader::boolean(std::string_view key) {
    const toml::node* node = get(key);
    if (node == nullptr) {
        return std::nullopt;
    }
    if (const auto* b = node->as_boolean()) {
        return b->get();
    }
    expected(*node, key, "a boolean (true or false)");
    return std::nullopt;
}

std::optional<Duration> TableReader::duration(std::string_view key, bool allow_zero) {
    const toml::node* node = get(key);
    if (node == nullptr) {
        return std::nullopt;
    }
    const auto* s = node->as_string();
    if (s == nullptr) {
        expected(*node, key, "a duration string such as \"30s\"");
        return std::nullopt;
    }
    std::string why;
    auto value = parse_duration(s->get(), why);
    if (!value) {
        error(*node, key, why);
        return std::nullopt;
    }
    if (!allow_zero && value->count() == 0) {
        error(*node, key, "must be longer than 0");
        return std::nullopt;
    }
    return value;
}

std::optional<std::uint64_t> TableReader::size(std::string_view key, std::uint64_t min) {
    const toml::node* node = get(key);
    if (node == nullptr) {
        return std::nullopt;
    }
    std::optional<std::uint64_t> value;
    if (const auto* i = node->as_integer()) {
        if (i->get() < 0) {
            error(*node, key, "must not be negative");
            return std::nullopt;
        }
        value = static_cast<std::uint64_t>(i->get());
    } else if (const auto* s = node->as_string()) {
        std::string why;
        value = parse_size(s->get(), why);
        if (!value) {
            error(*node, key, why);
            return std::nullopt;
        }
    } else {
        expected(*node, key, "a size such as \"50MiB\" or an integer");
        return std::nullopt;
    }
    if (*value < min) {
        error(*node, key, "must be at least " + std::to_string(min) + " bytes");
        return std::nullopt;
    }
    return value;
}

std::optional<Rate> TableReader::rate(std::string_view key, bool sizes) {
    const toml::node* node = get(key);
    if (node == nullptr) {
        return std::nullopt;
    }
    const auto* s = node->as_string();
    if (s == nullptr) {
        expected(*node, key,
                 sizes ? "a rate string such as \"500MiB/1d\" or \"unlimited\""
                       : "a rate string such as \"200/1h\" or \"unlimited\"");
        return std::nullopt;
    }
    if (s->get() == "unlimited") {
        return Rate{};
    }
    std::string why;
    auto value = sizes ? parse_size_rate(s->get(), why) : parse_rate(s->get(), why);
    if (!value) {
        error(*node, key, why);
        return std::nullopt;
    }
    return value;
}

std::optional<std::string> TableReader::one_of(std::string_view key,
                                               std::initializer_list<std::string_view> allowed) {
    auto value = string(key);
    if (!value) {
        return std::nullopt;
    }
    if (std::find(allowed.begin(), allowed.end(), *value) != allowed.end()) {
        return value;
    }
    const std::vector<std::string_view> candidates(allowed);
    error(*get(key), key,
          "expected one of " + join_quoted(allowed) + ", got " + in_quotes(*value) +
              did_you_mean(*value, candidates));
    return std::nullopt;
}

std::optional<std::vector<std::string>> TableReader::string_list(std::string_view key) {
    const toml::node* node = get(key);
    if (node == nullptr) {
        return std::nullopt;
    }
    if (node->is_string()) {
        auto single = nonempty_string(key);
        return single ? std::optional(std::vector<std::string>{std::move(*single)}) : std::nullopt;
    }
    const auto* array = node->as_array();
    if (array == nullptr) {
        expected(*node, key, "a string or an array of strings");
        return std::nullopt;
    }
    if (array->empty()) {
        error(*node, key, "must not be empty");
        return std::nullopt;
    }
    std::vector<std::string> out;
    bool ok = true;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        const std::string element_key = std::string(key) + "[" + std::to_string(i) + "]";
        if (!element.is_string()) {
            expected(element, element_key, "a string");
            ok = false;
        } else if (element.as_string()->get().empty()) {
            error(element, element_key, "must not be empty");
            ok = false;
        } else if (element.as_string()->get().find('\0') != std::string::npos) {
            error(element, element_key, "must not contain a NUL character");
            ok = false;
        } else {
            out.push_back(element.as_string()->get());
        }
    }
    return ok ? std::optional(std::move(out)) : std::nullopt;
}

void TableReader::unsupported(std::string_view key) {
    if (const toml::node* node = get(key)) {
        diags_.error(node->source(), key_path(key) + " is not supported yet");
    }
}

void TableReader::finish() {
    std::vector<std::string_view> candidates(known_.begin(), known_.end());
    for (auto&& [key, value] : table_) {
        if (std::find(known_.begin(), known_.end(), key.str()) != known_.end()) {
            continue;
        }
        diags_.error(key.source(), "unknown key '" + std::string(key.str()) + "' in " + title_ +
                                       did_you_mean(key.str(), candidates));
    }
}

}  // namespace portcullis::config::detail
