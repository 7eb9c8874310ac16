// Structured logging: one JSON object (or one human-readable line) per event, on
// stdout. The one place that formats log lines; never given a password.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

#include "config/config.hpp"

namespace portcullis::ops {

using LogValue = std::variant<std::string_view, std::int64_t, std::uint64_t, bool, double>;

struct LogField {
    std::string_view key;
    LogValue value;
    LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
    LogField(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
    LogField(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
    LogField(std::string_view k, bool v) : key(k), value(v) {}
    LogField(std::string_view k, double v) : key(k), value(v) {}
    LogField(std::string_view k, int v) : key(k), value(std::int64_t{v}) {}
    LogField(std::string_view k, long v) : key(k), value(std::int64_t{v}) {}
    LogField(std::string_view k, long long v) : key(k), value(std::int64_t{v}) {}
    LogField(std::string_view k, unsigned v) : key(k), value(std::uint64_t{v}) {}
    LogField(std::string_view k, unsigned long v) : key(k), value(std::uint64_t{v}) {}
    LogField(std::string_view k, unsigned long long v) : key(k), value(std::uint64_t{v}) {}
};

using config::LogLevel;

// Set once at start (and on reload); safe to call from any thread.
void configure_logging(const config::LogConfig& cfg);
bool log_enabled(LogLevel level);

// Writes one line: {"ts":"2026-11-28T17:00:00.123Z","level":"info","event":EVENT,...}
void log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields);

// A JSON string literal (quotes included) with every control character escaped; the one
// JSON string encoder, also used by portcullis-bench's --json output.
std::string json_quote(std::string_view s);

// Exposed for tests: the JSON / text rendering of one line (without the newline).
std::string render_json(std::string_view ts, LogLevel level, std::string_view event,
                        std::initializer_list<LogField> fields);
std::string render_text(std::string_view ts, LogLevel level, std::string_view event,
                        std::initializer_list<LogField> fields);

}  // namespace portcullis::ops
