// [state]: the shared limit state's configuration (issue 8).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.hpp"

using namespace portcullis::config;
using namespace std::chrono_literals;

namespace {

const std::string base =
    "[[listener]]\naddress = \"127.0.0.1:2525\"\ntls = \"none\"\n"
    "[backend]\naddress = \"127.0.0.1:25\"\n"
    "[auth]\nusers_file = \"users.toml\"\n";

// The errors of `state_section` put first in the file, so its lines start at 1.
std::vector<std::string> errors(const std::string& state_section,
                                const std::filesystem::path& file = "test.toml") {
    try {
        (void)parse_config(state_section + "\n" + base, file);
    } catch (const ConfigError& e) {
        std::vector<std::string> out;
        for (const auto& d : e.diagnostics()) {
            out.push_back(d.text());
        }
        return out;
    }
    return {};
}

StateConfig state_of(const std::string& state_section,
                     const std::filesystem::path& file = "/srv/pc/portcullis.toml") {
    return parse_config(state_section + "\n" + base, file)->state;
}

}  // namespace

TEST_CASE("[state] defaults to memory with the documented settings") {
    const StateConfig s = parse_config(base, "/srv/pc/portcullis.toml")->state;
    CHECK(s.backend == StateBackend::memory);
    CHECK(s.timeout == 50ms);
    CHECK(s.on_error == StateErrorMode::local);
    CHECK(s.key_prefix == "portcullis:");
    CHECK(s.password.empty());
}

TEST_CASE("[state] redis addresses") {
    StateConfig s = state_of(
        "[state]\nbackend = \"redis\"\naddress = \"redis://10.0.0.9:6380\"\n"
        "timeout = \"20ms\"\non_state_error = \"fail-closed\"\n"
        "key_prefix = \"gw1:\"\n");
    CHECK(s.backend == StateBackend::redis);
    CHECK(s.host == "10.0.0.9");
    CHECK(s.port == 6380);
    CHECK(s.timeout == 20ms);
    CHECK(s.on_error == StateErrorMode::fail_closed);
    CHECK(s.key_prefix == "gw1:");

    s = state_of("[state]\nbackend = \"redis\"\naddress = \"redis://redis.svc\"\n");
    CHECK(s.host == "redis.svc");
    CHECK(s.port == 6379);

    s = state_of("[state]\nbackend = \"redis\"\naddress = \"redis://[::1]:7000/\"\n");
    CHECK(s.host == "::1");
    CHECK(s.port == 7000);

    s = state_of("[state]\nbackend = \"redis\"\naddress = \"unix:/run/redis/redis.sock\"\n");
    CHECK(s.unix_socket == "/run/redis/redis.sock");
    CHECK(s.host.empty());
}

TEST_CASE("[state] errors name the file, line and cause") {
    CHECK(errors("[state]\nbackend = \"redis\"\n") ==
          std::vector<std::string>{"test.toml:1:1: state.address: backend = \"redis\" needs an "
                                   "address (\"redis://host:6379\" or \"unix:/path\")"});
    auto e = errors("[state]\nbackend = \"redis\"\naddress = \"redis://h:99999\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].starts_with("test.toml:3:11: state.address: invalid Redis address"));
    CHECK(e[0].find("invalid port \"99999\"") != std::string::npos);
    e = errors("[state]\nbackend = \"redis\"\naddress = \"rediss://h:6379\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].find("rediss:// is not supported") != std::string::npos);
    e = errors("[state]\nbackend = \"redis\"\naddress = \"redis://:pw@h:6379\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].find("use password_file") != std::string::npos);
    e = errors("[state]\nbackend = \"redis\"\naddress = \"unix:relative.sock\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].find("unix:/absolute/path") != std::string::npos);
    e = errors("[state]\nbackend = \"redis\"\naddress = \"redis://h\"\ntls = true\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].starts_with("test.toml:4:7: state.tls: TLS to Redis is not supported"));
    CHECK(errors("[state]\nbackend = \"redis\"\naddress = \"redis://h\"\ntls = false\n").empty());
    e = errors("[state]\nbackend = \"valkey\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].starts_with("test.toml:2:11: state.backend"));
    e = errors("[state]\non_state_error = \"open\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].starts_with("test.toml:2:18: state.on_state_error"));
    e = errors("[state]\ntimeout = \"0s\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].starts_with("test.toml:2:11: state.timeout"));
    e = errors("[state]\nbakend = \"redis\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].find("bakend") != std::string::npos);
}

TEST_CASE("[state] password_file is read at load, relative to the config file") {
    const auto dir =
        std::filesystem::temp_directory_path() / ("portcullis-state-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    {
        std::ofstream(dir / "redis.pass") << "s3cret\n";
        std::ofstream(dir / "empty.pass") << "\n";
    }
    const std::string head = "[state]\nbackend = \"redis\"\naddress = \"redis://h\"\n";
    const StateConfig s = state_of(head + "password_file = \"redis.pass\"\n", dir / "p.toml");
    CHECK(s.password == "s3cret");
    CHECK(s.password_file == dir / "redis.pass");

    auto e = errors(head + "password_file = \"missing.pass\"\n", dir / "p.toml");
    REQUIRE(e.size() == 1);
    CHECK(e[0].find("p.toml:4:17: state.password_file: cannot read") != std::string::npos);
    CHECK(e[0].find("missing.pass") != std::string::npos);
    e = errors(head + "password_file = \"empty.pass\"\n", dir / "p.toml");
    REQUIRE(e.size() == 1);
    CHECK(e[0].find("empty.pass is empty") != std::string::npos);
    std::filesystem::remove_all(dir);
}
