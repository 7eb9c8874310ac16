// Internal to config/ and auth/: reading TOML tables with file:line:col diagnostics.
// Every reader method records problems instead of throwing, so that one pass over a
// file reports all of them; Diagnostics::throw_if_any() raises the ConfigError.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/units.hpp"

namespace portcullis::config::detail {

class Diagnostics {
  public:
    explicit Diagnostics(std::string file) : file_(std::move(file)) {}

    void error(const toml::source_region& where, std::string message);
    void error(std::uint32_t line, std::uint32_t column, std::string message);
    bool empty() const { return list_.empty(); }
    // Throws ConfigError with every diagnostic, ordered by position, if there is any.
    void throw_if_any();
    // Throws ConfigError with every diagnostic (there must be at least one).
    [[noreturn]] void throw_all();

  private:
    std::string file_;
    std::vector<Diagnostic> list_;
};

// Parses TOML text. A syntax error is recorded and yields nullopt.
std::optional<toml::table> parse_toml(std::string_view text, Diagnostics& diags);

// Reads a whole file; an I/O error is thrown as a ConfigError naming the file.
std::string read_file(const std::filesystem::path& file);

// " (did you mean 'x'?)" for the candidate closest to `word`, or "" when none is close.
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates);

// "a string", "an integer", ... for messages.
std::string_view type_name(const toml::node& node);

// Reads the keys of one table. Every key asked for becomes known; finish() reports
// the others as unknown, with a hint at the closest known key.
class TableReader {
  public:
    // `path` prefixes key names in messages ("server" -> "server.workers");
    // `title` names the table in unknown-key messages ("[server]", "[[listener]]").
    TableReader(const toml::table& table, std::string path, std::string title, Diagnostics& diags);

    const toml::table& table() const { return table_; }
    Diagnostics& diags() { return diags_; }
    std::string key_path(std::string_view key) const;

    // The value at `key` (marking it known), or nullptr when absent.
    const toml::node* get(std::string_view key);

    std::optional<std::string> string(std::string_view key);
    // A non-empty string; an empty one is an error.
    std::optional<std::string> nonempty_string(std::string_view key);
    std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max);
    std::optional<bool> boolean(std::string_view key);
    // A duration string; zero is an error unless `allow_zero`.
    std::optional<Duration> duration(std::string_view key, bool allow_zero);
    // A size string ("64KiB") or a TOML integer (bytes), at least `min`.
    std::optional<std::uint64_t> size(std::string_view key, std::uint64_t min);
    // A rate "200/1h" ("500MiB/1d" when `sizes`), or "unlimited" (a Rate with count 0).
    std::optional<Rate> rate(std::string_view key, bool sizes);
    // A string equal to one of `allowed` (exact case).
    std::optional<std::string> one_of(std::string_view key,
                                      std::initializer_list<std::string_view> allowed);
    // A string or an array of strings, each non-empty; an empty array is an error.
    std::optional<std::vector<std::string>> string_list(std::string_view key);

    // Reports `key`, when present, as a DESIGN.md key whose feature is not built yet.
    void unsupported(std::string_view key);

    // Reports every key that no method above asked for.
    void finish();

    // Records "PATH: message" at the position of `node`.
    void error(const toml::node& node, std::string_view key, std::string_view message);

  private:
    void expected(const toml::node& node, std::string_view key, std::string_view what);

    const toml::table& table_;
    std::string path_;
    std::string title_;
    Diagnostics& diags_;
    std::vector<std::string> known_;
};

}  // namespace portcullis::config::detail
