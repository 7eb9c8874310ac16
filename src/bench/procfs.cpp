#include "bench/procfs.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace portcullis::bench {
namespace {

// Fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends the command name
// (which may itself contain spaces and parentheses).
bool read_cpu_ticks(int pid, std::uint64_t& ticks) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(in, text)) {
        return false;
    }
    const auto close = text.rfind(')');
    if (close == std::string::npos) {
        return false;
    }
    std::istringstream fields(text.substr(close + 2));
    std::string skip;
    for (int i = 3; i < 14; ++i) {  // fields 3..13
        fields >> skip;
    }
    std::uint64_t utime = 0;
    std::uint64_t stime = 0;
    if (!(fields >> utime >> stime)) {
        return false;
    }
    ticks = utime + stime;
    return true;
}

bool read_rss_kib(const std::string& status_path, std::uint64_t& kib) {
    std::ifstream in(status_path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            kib = std::stoull(line.substr(6));
            return true;
        }
    }
    return false;
}

double seconds(const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

}  // namespace

ProcUsage sample_processes(const std::vector<int>& pids) {
    static const double ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));
    ProcUsage usage;
    for (const int pid : pids) {
        std::uint64_t ticks = 0;
        std::uint64_t kib = 0;
        if (!read_cpu_ticks(pid, ticks) ||
            !read_rss_kib("/proc/" + std::to_string(pid) + "/status", kib)) {
            continue;
        }
        usage.cpu_s += static_cast<double>(ticks) / ticks_per_second;
        usage.rss_kib += kib;
        ++usage.alive;
    }
    return usage;
}

double self_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return seconds(ru.ru_utime) + seconds(ru.ru_stime);
}

std::uint64_t self_rss_kib() {
    std::uint64_t kib = 0;
    read_rss_kib("/proc/self/status", kib);
    return kib;
}

}  // namespace portcullis::bench
