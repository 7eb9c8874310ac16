// CPU time and resident memory of other processes (the servers under test), from /proc.
#pragma once

#include <cstdint>
#include <vector>

namespace portcullis::bench {

struct ProcUsage {
    double cpu_s = 0;           // utime + stime of all threads, summed over processes
    std::uint64_t rss_kib = 0;  // VmRSS summed over processes
    unsigned alive = 0;         // processes that could be read
};

ProcUsage sample_processes(const std::vector<int>& pids);
double self_cpu_seconds();
std::uint64_t self_rss_kib();

}  // namespace portcullis::bench
