// ops/: process-level concerns: running the gateway, logs, signals, health.
#pragma once

#include <filesystem>

namespace portcullis::ops {

// Runs the gateway until SIGTERM/SIGINT; returns the process exit code.
int serve(const std::filesystem::path& config_file);

// Connects to the first listener and exits 0 when it answers 220 within 5 s.
int healthcheck(const std::filesystem::path& config_file);

}  // namespace portcullis::ops
