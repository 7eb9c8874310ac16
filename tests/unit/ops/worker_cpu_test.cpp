// [server] cpu_affinity = "auto": which CPU each worker gets.
#include <catch2/catch.hpp>
#include <vector>

#include "ops/worker.hpp"

using portcullis::ops::cpu_for_worker;

TEST_CASE("workers take the allowed CPUs in order and wrap around", "[ops][affinity]") {
    const std::vector<int> allowed{2, 3, 6};
    CHECK(cpu_for_worker(allowed, 0) == 2);
    CHECK(cpu_for_worker(allowed, 1) == 3);
    CHECK(cpu_for_worker(allowed, 2) == 6);
    CHECK(cpu_for_worker(allowed, 3) == 2);
    CHECK(cpu_for_worker(allowed, 7) == 3);
}

TEST_CASE("no known CPUs means no pinning", "[ops][affinity]") {
    CHECK_FALSE(cpu_for_worker(std::vector<int>{}, 0).has_value());
}

TEST_CASE("the process's allowed CPUs are listed in ascending order", "[ops][affinity]") {
    const std::vector<int> cpus = portcullis::ops::allowed_cpus();
    REQUIRE_FALSE(cpus.empty());
    for (std::size_t i = 1; i < cpus.size(); ++i) {
        CHECK(cpus[i - 1] < cpus[i]);
    }
}
