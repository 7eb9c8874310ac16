// Typed values used in config files: durations ("500ms", "30s", "5m", "1h", "1d"),
// sizes ("512", "64KiB", "50MiB", "1GiB") and rates ("200/1h").
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portcullis::config {

using Duration = std::chrono::milliseconds;

enum class TlsVersion { tls1_2, tls1_3 };

struct Rate {
    std::uint64_t count = 0;  // 0 = unlimited
    Duration per{};
    bool unlimited() const { return count == 0; }
    bool operator==(const Rate&) const = default;
};

// Each returns the value, or nullopt with `error` set to a human-readable reason.
std::optional<Duration> parse_duration(std::string_view text, std::string& error);
std::optional<std::uint64_t> parse_size(std::string_view text, std::string& error);
std::optional<Rate> parse_rate(std::string_view text, std::string& error);
// A rate whose count is a size: "500MiB/1d".
std::optional<Rate> parse_size_rate(std::string_view text, std::string& error);

std::string format_duration(Duration d);  // shortest exact form: "2s", "1500ms", "15m"

}  // namespace portcullis::config
