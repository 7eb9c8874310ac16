#include "ops/log.hpp"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace portcullis::ops {
namespace {

std::atomic<config::LogFormat> g_format{config::LogFormat::json};
std::atomic<LogLevel> g_level{LogLevel::info};
std::mutex g_write_mutex;

std::string_view level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warn:
            return "warn";
        case LogLevel::error:
            return "error";
    }
    return "info";
}

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (unsigned char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += fmt::format("\\u{:04x}", c);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
    }
    out.push_back('"');
}

void append_value(std::string& out, const LogValue& value, bool quote_strings) {
    std::visit(
        [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string_view>) {
                if (quote_strings) {
                    append_json_string(out, v);
                } else {
                    out += v;
                }
            } else if constexpr (std::is_same_v<T, bool>) {
                out += v ? "true" : "false";
            } else {
                out += fmt::format("{}", v);
            }
        },
        value);
}

// Text values with spaces or quotes are quoted so that a line stays machine-splittable.
bool needs_quotes(const LogValue& value) {
    const auto* s = std::get_if<std::string_view>(&value);
    if (s == nullptr) {
        return false;
    }
    if (s->empty()) {
        return true;
    }
    for (unsigned char c : *s) {
        if (c <= ' ' || c == '"' || c == '=' || c == 0x7f) {
            return true;
        }
    }
    return false;
}

std::string timestamp_now() {
    const auto now = std::chrono::system_clock::now();
    const auto secs = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

}  // namespace

std::string json_quote(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    append_json_string(out, s);
    return out;
}

void configure_logging(const config::LogConfig& cfg) {
    g_format.store(cfg.format);
    g_level.store(cfg.level);
}

bool log_enabled(LogLevel level) {
    return static_cast<int>(level) >= static_cast<int>(g_level.load(std::memory_order_relaxed));
}

std::string render_json(std::string_view ts, LogLevel level, std::string_view event,
                        std::initializer_list<LogField> fields) {
    std::string out;
    out.reserve(160);
    out += "{\"ts\":";
    append_json_string(out, ts);
    out += ",\"level\":";
    append_json_string(out, level_name(level));
    out += ",\"event\":";
    append_json_string(out, event);
    for (const auto& field : fields) {
        out.push_back(',');
        append_json_string(out, field.key);
        out.push_back(':');
        append_value(out, field.value, true);
    }
    out.push_back('}');
    return out;
}

std::string render_text(std::string_view ts, LogLevel level, std::string_view event,
                        std::initializer_list<LogField> fields) {
    std::string out = fmt::format("{} {:<5} {}", ts, level_name(level), event);
    for (const auto& field : fields) {
        out.push_back(' ');
        out += field.key;
        out.push_back('=');
        append_value(out, field.value, needs_quotes(field.value));
    }
    return out;
}

void log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
    if (!log_enabled(level)) {
        return;
    }
    const std::string ts = timestamp_now();
    std::string line = g_format.load(std::memory_order_relaxed) == config::LogFormat::json
                           ? render_json(ts, level, event, fields)
                           : render_text(ts, level, event, fields);
    line.push_back('\n');
    std::lock_guard lock(g_write_mutex);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

}  // namespace portcullis::ops
