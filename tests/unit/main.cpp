// Catch2 v2 test runner: every unit test file in tests/unit/*/ links into this binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
