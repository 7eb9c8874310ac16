#include <catch2/catch.hpp>

#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>

#include "config/config.hpp"

using namespace portcullis::config;
using namespace std::chrono_literals;
using Errors = std::vector<std::string>;

namespace {

// The smallest valid configuration, in pieces, so that a test can put its own section
// first (its lines then start at 1) or replace one piece.
const std::string listener_plain = "[[listener]]\naddress = \"127.0.0.1:2525\"\ntls = \"none\"\n";
const std::string backend_min = "[backend]\naddress = \"127.0.0.1:25\"\n";
const std::string auth_min = "[auth]\nusers_file = \"users.toml\"\n";

std::string before_base(std::string_view first) {
    return std::string(first) + "\n" + listener_plain + backend_min + auth_min;
}

Errors errors(std::string_view text) {
    try {
        (void)parse_config(text, "test.toml");
    } catch (const ConfigError& e) {
        Errors out;
        for (const Diagnostic& d : e.diagnostics()) {
            out.push_back(d.text());
        }
        return out;
    }
    return {};
}

std::shared_ptr<const Config> parse(std::string_view text,
                                    const std::filesystem::path& file = "/srv/pc/portcullis.toml") {
    try {
        return parse_config(text, file);
    } catch (const ConfigError& e) {
        FAIL("unexpected errors:\n" << e.what());
    }
    return nullptr;
}

const std::string design_example = R"(# DESIGN.md's example, without the keys not supported yet
[server]
hostname = "mail.example.com"       # greeting and EHLO name
workers = 0                          # event-loop threads, 0 = one per CPU
max_connections = 10000
max_connections_per_ip = 50

[[listener]]
address = "0.0.0.0:587"
tls = "starttls"                     # "starttls" | "implicit" | "none" (tests only)
proxy_protocol = false               # accept PROXY v1/v2 from a trusted load balancer

[[listener]]
address = "0.0.0.0:465"
tls = "implicit"

[tls]
certificate = "/etc/portcullis/tls/fullchain.pem"
private_key = "/etc/portcullis/tls/privkey.pem"
min_version = "1.2"

[backend]
address = "10.0.0.5:25"              # the unmodified MTA
identity = "none"
tls = "none"                         # "none" | "starttls" | "starttls-verify"
connect_timeout = "10s"

[auth]
users_file = "users.toml"            # relative to this file
mechanisms = ["PLAIN", "LOGIN"]
failure_delay = "2s"

[limits]
message_size = "50MiB"
recipients_per_message = 100
command_timeout = "5m"
bare_line_endings = "reject"         # "reject" | "normalize"

[log]
format = "json"                      # "json" | "text"
level = "info"
)";

}  // namespace

// ---- valid configurations ----

TEST_CASE("DESIGN.md's example config is accepted", "[config]") {
    const auto c = parse(design_example, "/etc/portcullis/portcullis.toml");
    CHECK(c->file == "/etc/portcullis/portcullis.toml");
    CHECK(c->server.hostname == "mail.example.com");
    CHECK(c->server.workers == 0);
    CHECK(c->server.max_connections == 10000);
    CHECK(c->server.max_connections_per_ip == 50);
    REQUIRE(c->listeners.size() == 2);
    CHECK(c->listeners[0].address.host == "0.0.0.0");
    CHECK(c->listeners[0].address.port == 587);
    CHECK(c->listeners[0].tls == ListenerTls::starttls);
    CHECK_FALSE(c->listeners[0].proxy_protocol);
    CHECK(c->listeners[1].address.text() == "0.0.0.0:465");
    CHECK(c->listeners[1].tls == ListenerTls::implicit);
    REQUIRE(c->tls.certificates.size() == 1);
    CHECK(c->tls.certificates[0].certificate == "/etc/portcullis/tls/fullchain.pem");
    CHECK(c->tls.certificates[0].private_key == "/etc/portcullis/tls/privkey.pem");
    CHECK(c->tls.min_version == TlsVersion::tls1_2);
    CHECK(c->backend.address.text() == "10.0.0.5:25");
    CHECK(c->backend.identity == BackendIdentity::none);
    CHECK(c->backend.tls == BackendTls::none);
    CHECK(c->backend.connect_timeout == 10s);
    CHECK(c->auth.users_file == "/etc/portcullis/users.toml");
    CHECK(c->auth.mechanism_plain);
    CHECK(c->auth.mechanism_login);
    CHECK(c->auth.failure_delay == 2s);
    CHECK(c->limits.message_size == 50ull * 1024 * 1024);
    CHECK(c->limits.recipients_per_message == 100);
    CHECK(c->limits.command_timeout == 5min);
    CHECK(c->limits.bare_line_endings == BareLineEndings::reject);
    CHECK(c->log.format == LogFormat::json);
    CHECK(c->log.level == LogLevel::info);
}

TEST_CASE("a minimal config gets the documented defaults", "[config]") {
    const auto c = parse(listener_plain + backend_min + auth_min);
    std::array<char, 256> host{};
    REQUIRE(::gethostname(host.data(), host.size() - 1) == 0);
    CHECK(c->server.hostname == host.data());
    CHECK(c->server.workers == 0);
    CHECK(c->server.max_connections == 10000);
    CHECK(c->server.max_connections_per_ip == 50);
    CHECK(c->tls.certificates.empty());
    CHECK(c->tls.min_version == TlsVersion::tls1_2);
    CHECK(c->tls.session_tickets);
    CHECK(c->tls.ticket_key_rotation == 12h);
    CHECK(c->tls.signing_threads == 0u);  // the event loops sign
    CHECK(c->backend.connect_timeout == 10s);
    CHECK(c->backend.reply_timeout == 5min);
    CHECK(c->backend.data_reply_timeout == 10min);
    CHECK_FALSE(c->backend.pipelining);
    CHECK(c->auth.mechanism_plain);
    CHECK(c->auth.mechanism_login);
    CHECK(c->auth.failure_delay == 2s);
    CHECK(c->auth.hashing.opslimit == 3);
    CHECK(c->auth.hashing.memlimit == 64ull * 1024 * 1024);
    CHECK(c->auth.min_password_score == 3);
    CHECK(c->limits.message_size == 50ull * 1024 * 1024);
    CHECK(c->limits.recipients_per_message == 100);
    CHECK(c->limits.command_timeout == 5min);
    CHECK(c->limits.bare_line_endings == BareLineEndings::reject);
    CHECK(c->log.format == LogFormat::json);
    CHECK(c->log.level == LogLevel::info);
}

TEST_CASE("every key can be set to a non-default value", "[config]") {
    const auto c = parse(R"(
[server]
hostname = "gw-1.example.net"
workers = 256
max_connections = 1
max_connections_per_ip = 7

[[listener]]
address = "[::1]:2587"
tls = "starttls"
proxy_protocol = false

[tls]
certificate = ["tls/ecdsa.pem", "/abs/rsa.pem"]
private_key = ["tls/ecdsa.key", "../keys/rsa.key"]
min_version = "1.3"
session_tickets = false
ticket_key_rotation = "90m"
signing_threads = 3

[backend]
address = "mta.internal:2525"
connect_timeout = "1500ms"
reply_timeout = "1m"
data_reply_timeout = "1h"
pipelining = true

[auth]
users_file = "/var/lib/portcullis/users.toml"
mechanisms = ["login"]
failure_delay = "0s"
hash_iterations = 4
hash_memory = "19MiB"
min_password_score = 0

[limits]
message_size = 1024
recipients_per_message = 1
command_timeout = "30s"
bare_line_endings = "normalize"

[log]
format = "text"
level = "debug"
)");
    CHECK(c->server.hostname == "gw-1.example.net");
    CHECK(c->server.workers == 256);
    CHECK(c->server.max_connections == 1);
    CHECK(c->server.max_connections_per_ip == 7);
    REQUIRE(c->listeners.size() == 1);
    CHECK(c->listeners[0].address.host == "::1");
    CHECK(c->listeners[0].address.port == 2587);
    CHECK(c->listeners[0].address.text() == "[::1]:2587");
    REQUIRE(c->tls.certificates.size() == 2);
    CHECK(c->tls.certificates[0].certificate == "/srv/pc/tls/ecdsa.pem");
    CHECK(c->tls.certificates[0].private_key == "/srv/pc/tls/ecdsa.key");
    CHECK(c->tls.certificates[1].certificate == "/abs/rsa.pem");
    CHECK(c->tls.certificates[1].private_key == "/srv/keys/rsa.key");
    CHECK(c->tls.min_version == TlsVersion::tls1_3);
    CHECK_FALSE(c->tls.session_tickets);
    CHECK(c->tls.ticket_key_rotation == 90min);
    CHECK(c->tls.signing_threads == 3u);
    CHECK(c->backend.address.host == "mta.internal");
    CHECK(c->backend.address.port == 2525);
    CHECK(c->backend.connect_timeout == 1500ms);
    CHECK(c->backend.reply_timeout == 1min);
    CHECK(c->backend.data_reply_timeout == 1h);
    CHECK(c->backend.pipelining);
    CHECK(c->auth.users_file == "/var/lib/portcullis/users.toml");
    CHECK_FALSE(c->auth.mechanism_plain);
    CHECK(c->auth.mechanism_login);
    CHECK(c->auth.failure_delay == 0ms);
    CHECK(c->auth.hashing.opslimit == 4);
    CHECK(c->auth.hashing.memlimit == 19ull * 1024 * 1024);
    CHECK(c->auth.min_password_score == 0);
    CHECK(c->limits.message_size == 1024);
    CHECK(c->limits.recipients_per_message == 1);
    CHECK(c->limits.command_timeout == 30s);
    CHECK(c->limits.bare_line_endings == BareLineEndings::normalize);
    CHECK(c->log.format == LogFormat::text);
    CHECK(c->log.level == LogLevel::debug);
}

TEST_CASE("relative paths are resolved against the config file's folder", "[config]") {
    const auto cwd = std::filesystem::current_path();
    const auto c = parse(listener_plain + backend_min + auth_min, "conf/portcullis.toml");
    CHECK(c->file == (cwd / "conf/portcullis.toml").lexically_normal());
    CHECK(c->auth.users_file == (cwd / "conf/users.toml").lexically_normal());
}

TEST_CASE("certificates are dropped when no listener uses TLS", "[config]") {
    const auto c = parse(before_base("[tls]\ncertificate = \"a.pem\"\nprivate_key = \"a.key\""));
    CHECK(c->tls.certificates.empty());
}

TEST_CASE("a single certificate string pairs with a one-element key array", "[config]") {
    const auto c = parse(
        "[[listener]]\naddress = \"0.0.0.0:465\"\ntls = \"implicit\"\n"
        "[tls]\ncertificate = \"a.pem\"\nprivate_key = [\"a.key\"]\n" +
        backend_min + auth_min);
    REQUIRE(c->tls.certificates.size() == 1);
    CHECK(c->tls.certificates[0].certificate == "/srv/pc/a.pem");
    CHECK(c->tls.certificates[0].private_key == "/srv/pc/a.key");
}

TEST_CASE("mechanism names ignore case", "[config]") {
    const auto c = parse(listener_plain + backend_min +
                         "[auth]\nusers_file = \"u.toml\"\nmechanisms = [\"Plain\", \"plain\"]\n");
    CHECK(c->auth.mechanism_plain);
    CHECK_FALSE(c->auth.mechanism_login);
}

TEST_CASE("log levels and formats map to their enums", "[config]") {
    CHECK(parse(before_base("[log]\nlevel = \"warn\""))->log.level == LogLevel::warn);
    CHECK(parse(before_base("[log]\nlevel = \"error\""))->log.level == LogLevel::error);
    CHECK(parse(before_base("[log]\nlevel = \"info\""))->log.level == LogLevel::info);
}

// ---- syntax, unknown keys and sections ----

TEST_CASE("a TOML syntax error names its position", "[config]") {
    const Errors e = errors("[server]\nworkers = \n");
    REQUIRE(e.size() == 1);
    CHECK_THAT(e[0], Catch::StartsWith("test.toml:2:11: TOML syntax error: "));
}

TEST_CASE("a duplicate key is a syntax error", "[config]") {
    const Errors e = errors("[server]\nworkers = 1\nworkers = 2\n");
    REQUIRE(e.size() == 1);
    CHECK_THAT(e[0], Catch::StartsWith("test.toml:3:") && Catch::Contains("workers"));
}

TEST_CASE("unknown keys are errors, with a hint when close to a known key", "[config]") {
    CHECK(errors(before_base("[server]\nhostnam = \"mx.example.com\"")) ==
          Errors{"test.toml:2:1: unknown key 'hostnam' in [server] (did you mean 'hostname'?)"});
    CHECK(errors(before_base("[server]\nfrobnicate = 1")) ==
          Errors{"test.toml:2:1: unknown key 'frobnicate' in [server]"});
    CHECK(errors(before_base("[limits]\n  max_message_size = 1")) ==
          Errors{"test.toml:2:3: unknown key 'max_message_size' in [limits]"});
    CHECK(errors(before_base("[limits]\nmesage_size = \"1MiB\"")) ==
          Errors{"test.toml:2:1: unknown key 'mesage_size' in [limits] (did you mean "
                 "'message_size'?)"});
    CHECK(errors(before_base("[tls]\ncert = \"a.pem\"\nprivate_key = \"a.key\"")) ==
          Errors{"test.toml:2:1: unknown key 'cert' in [tls] (did you mean 'certificate'?)",
                 "test.toml:3:15: tls.private_key is given without tls.certificate"});
    CHECK(errors(before_base("[log]\nLevel = \"info\"")) ==
          Errors{"test.toml:2:1: unknown key 'Level' in [log] (did you mean 'level'?)"});
    CHECK(errors(before_base("[backend.extra]\nx = 1")) ==
          Errors{"test.toml:1:10: unknown key 'extra' in [backend]"});
}

TEST_CASE("unknown keys in [[listener]] and [auth]", "[config]") {
    CHECK(errors("[[listener]]\naddress = \"127.0.0.1:25\"\ntls = \"none\"\nadress = \"x\"\n" +
                 backend_min + auth_min) ==
          Errors{"test.toml:4:1: unknown key 'adress' in [[listener]] (did you mean 'address'?)"});
    CHECK(errors(listener_plain + backend_min + "[auth]\nusers_file = \"u\"\nmechanism = []\n") ==
          Errors{"test.toml:8:1: unknown key 'mechanism' in [auth] (did you mean 'mechanisms'?)"});
}

TEST_CASE("unknown sections and top-level keys are errors", "[config]") {
    CHECK(errors(before_base("[servr]\nhostname = \"x\"")) ==
          Errors{"test.toml:1:2: unknown section [servr] (did you mean 'server'?)"});
    CHECK(errors(before_base("[database]\nurl = \"x\"")) ==
          Errors{"test.toml:1:2: unknown section [database]"});
    CHECK(errors(before_base("[[listeners]]\naddress = \"x\"")) ==
          Errors{"test.toml:1:3: unknown key 'listeners' at the top level (outside a section) "
                 "(did you mean 'listener'?)"});
    CHECK(errors(before_base("hostname = \"mx.example.com\"")) ==
          Errors{"test.toml:1:1: unknown key 'hostname' at the top level (outside a section)"});
}

// ---- [metrics] and drain ----

TEST_CASE("[metrics] address: off by default, \"\" = off, numeric address", "[config]") {
    CHECK_FALSE(parse(listener_plain + backend_min + auth_min)->metrics.address);
    CHECK_FALSE(parse(before_base("[metrics]\naddress = \"\""))->metrics.address);
    CHECK_FALSE(parse(before_base("[metrics]"))->metrics.address);
    const auto c = parse(before_base("[metrics]\naddress = \"127.0.0.1:9587\""));
    REQUIRE(c->metrics.address);
    CHECK(c->metrics.address->text() == "127.0.0.1:9587");
    CHECK(parse(before_base("[metrics]\naddress = \"[::1]:9587\""))->metrics.address->text() ==
          "[::1]:9587");
}

TEST_CASE("[metrics] errors name file, line and column", "[config]") {
    CHECK(errors(before_base("[metrics]\naddress = \"localhost:9587\"")) ==
          Errors{"test.toml:2:11: metrics.address: invalid address \"localhost:9587\": "
                 "\"localhost\" is not a numeric IP address (host names are not allowed here)"});
    CHECK(errors(before_base("[metrics]\naddress = \"127.0.0.1\"")) ==
          Errors{"test.toml:2:11: metrics.address: invalid address \"127.0.0.1\": missing port, "
                 "expected HOST:PORT"});
    CHECK(errors(before_base("[metrics]\naddress = \"127.0.0.1:70000\"")) ==
          Errors{"test.toml:2:11: metrics.address: invalid address \"127.0.0.1:70000\": the "
                 "port must be a number from 1 to 65535"});
    CHECK(errors(before_base("[metrics]\naddress = 9587")) ==
          Errors{"test.toml:2:11: metrics.address: expected a string, got an integer"});
    CHECK(errors(before_base("[metrics]\nadress = \"127.0.0.1:9587\"")) ==
          Errors{"test.toml:2:1: unknown key 'adress' in [metrics] (did you mean 'address'?)"});
    CHECK(errors(before_base("[metrics]\naddress = \"127.0.0.1:2525\"")) ==
          Errors{"test.toml:2:11: metrics.address: 127.0.0.1:2525 is already the address of a "
                 "[[listener]]"});
}

TEST_CASE("[server] drain_timeout", "[config]") {
    CHECK(parse(listener_plain + backend_min + auth_min)->server.drain_timeout == 30s);
    CHECK(parse(before_base("[server]\ndrain_timeout = \"2m\""))->server.drain_timeout == 2min);
    CHECK(parse(before_base("[server]\ndrain_timeout = \"0s\""))->server.drain_timeout == 0s);
    CHECK(errors(before_base("[server]\ndrain_timeout = \"soon\"")).size() == 1);
    CHECK(
        errors(before_base("[server]\ndrain_timeout = 30")).front().rfind("test.toml:2:17: ", 0) ==
        0);
}

TEST_CASE("[server] cpu_affinity", "[config]") {
    CHECK_FALSE(parse(listener_plain + backend_min + auth_min)->server.cpu_affinity);
    CHECK(parse(before_base("[server]\ncpu_affinity = \"auto\""))->server.cpu_affinity);
    CHECK_FALSE(parse(before_base("[server]\ncpu_affinity = \"none\""))->server.cpu_affinity);
    CHECK(errors(before_base("[server]\ncpu_affinity = \"autp\"")) ==
          Errors{"test.toml:2:16: server.cpu_affinity: expected one of \"none\", \"auto\", got "
                 "\"autp\" (did you mean 'auto'?)"});
}

// ---- abuse control ----

TEST_CASE("abuse-control defaults", "[config][abuse]") {
    const auto c = parse(listener_plain + backend_min + auth_min);
    CHECK(c->auth.max_failures == Rate{10, 10min});
    CHECK(c->auth.lockout == 15min);
    CHECK(c->auth.spray_max_users == Rate{20, 1h});
    CHECK(c->auth.spray_lockout == 1h);
    CHECK(c->auth.spray_exemption == 24h);
    CHECK(c->auth.cache_ttl == 5min);
    CHECK(c->auth.max_pending_verifications == 16);
    CHECK(c->auth.hash_threads == 0);
    CHECK(c->limits.preauth_timeout == 30s);
    CHECK(c->limits.data_timeout == 15min);
    CHECK(c->limits.max_bad_commands == 20);
    CHECK(c->rate_limits.messages.unlimited());
    CHECK(c->rate_limits.recipients.unlimited());
    CHECK(c->rate_limits.bytes.unlimited());
    CHECK(c->policy.header_from == HeaderFrom::off);
}

TEST_CASE("abuse-control keys are read", "[config][abuse]") {
    const auto c = parse(listener_plain + backend_min + auth_min + R"(max_failures = "5/1m"
lockout = "1h"
spray_max_users = "unlimited"
spray_lockout = "2h"
spray_exemption = "0s"
cache_ttl = "0s"
max_pending_verifications = 4
hash_threads = 2

[limits]
preauth_timeout = "10s"
data_timeout = "1m"
max_bad_commands = 3

[rate_limits]
messages = "200/1h"
recipients = "1000/1d"
bytes = "500MiB/1d"

[policy]
header_from = "senders"
)");
    CHECK(c->auth.max_failures == Rate{5, 1min});
    CHECK(c->auth.lockout == 1h);
    CHECK(c->auth.spray_max_users.unlimited());
    CHECK(c->auth.spray_lockout == 2h);
    CHECK(c->auth.spray_exemption == 0s);
    CHECK(c->auth.cache_ttl == 0s);
    CHECK(c->auth.max_pending_verifications == 4);
    CHECK(c->auth.hash_threads == 2);
    CHECK(c->limits.preauth_timeout == 10s);
    CHECK(c->limits.data_timeout == 1min);
    CHECK(c->limits.max_bad_commands == 3);
    CHECK(c->rate_limits.messages == Rate{200, 1h});
    CHECK(c->rate_limits.recipients == Rate{1000, 24h});
    CHECK(c->rate_limits.bytes == Rate{500ull * 1024 * 1024, 24h});
    CHECK(c->policy.header_from == HeaderFrom::senders);
    CHECK(parse(listener_plain + backend_min + auth_min + "[policy]\nheader_from = \"envelope\"\n")
              ->policy.header_from == HeaderFrom::envelope);
    CHECK(parse(listener_plain + backend_min + auth_min + "max_failures = \"unlimited\"\n")
              ->auth.max_failures.unlimited());
}

TEST_CASE("abuse-control keys: bad values name file, line and column", "[config][abuse]") {
    const std::string head = listener_plain + backend_min + auth_min;  // [auth] ends on line 7
    CHECK(errors(head + "max_failures = \"10\"\n") ==
          Errors{"test.toml:8:16: auth.max_failures: invalid rate \"10\": expected "
                 "COUNT/DURATION, e.g. \"200/1h\""});
    CHECK(errors(head + "max_failures = 10\n") ==
          Errors{"test.toml:8:16: auth.max_failures: expected a rate string such as \"200/1h\" "
                 "or \"unlimited\", got an integer"});
    CHECK(errors(head + "lockout = \"0s\"\n") ==
          Errors{"test.toml:8:11: auth.lockout: must be longer than 0"});
    CHECK(errors(head + "cache_ttl = \"5 m\"\n") ==
          Errors{"test.toml:8:13: auth.cache_ttl: invalid duration \"5 m\": spaces are not "
                 "allowed (use ms, s, m, h or d)"});
    CHECK(errors(head + "max_pending_verifications = 0\n") ==
          Errors{"test.toml:8:29: auth.max_pending_verifications: must be between 1 and "
                 "1000000, got 0"});
    CHECK(errors(head + "spray_max_users = \"0/1h\"\n") ==
          Errors{"test.toml:8:19: auth.spray_max_users: invalid rate \"0/1h\": the count must "
                 "be a whole number of at least 1"});
    CHECK(errors("[rate_limits]\nbytes = \"lots/1d\"\nmessage = \"1/1h\"\n" + head) ==
          Errors{"test.toml:2:9: rate_limits.bytes: invalid rate \"lots/1d\": invalid size "
                 "\"lots\": it must start with a number",
                 "test.toml:3:1: unknown key 'message' in [rate_limits] (did you mean "
                 "'messages'?)"});
    CHECK(errors("[policy]\nheader_from = \"on\"\n" + head) ==
          Errors{"test.toml:2:15: policy.header_from: expected one of \"off\", \"envelope\", "
                 "\"senders\", got \"on\""});
    CHECK(errors("[limits]\nmax_bad_commands = 0\ndata_timeout = \"0s\"\n" + head) ==
          Errors{"test.toml:2:20: limits.max_bad_commands: must be between 1 and "
                 "9223372036854775807, got 0",
                 "test.toml:3:16: limits.data_timeout: must be longer than 0"});
}

TEST_CASE("listener proxy_protocol needs trusted_proxies", "[config]") {
    const std::string head = "[[listener]]\naddress = \"127.0.0.1:25\"\ntls = \"none\"\n";
    const std::string tail = backend_min + auth_min;
    const auto c = parse(head +
                         "proxy_protocol = true\ntrusted_proxies = [\"10.0.0.0/8\", "
                         "\"192.0.2.7\", \"2001:db8::/32\", \"::1\"]\n" +
                         tail);
    REQUIRE(c->listeners[0].proxy_protocol);
    const auto& trusted = c->listeners[0].trusted_proxies;
    REQUIRE(trusted.size() == 4);
    CHECK(trusted[0].text() == "10.0.0.0/8");
    CHECK(trusted[1].text() == "192.0.2.7/32");
    CHECK(trusted[2].text() == "2001:db8::/32");
    CHECK(trusted[3].text() == "::1/128");
    CHECK(errors(head + "proxy_protocol = true\n" + tail) ==
          Errors{"test.toml:4:18: listener.proxy_protocol: true needs trusted_proxies, the load "
                 "balancers' networks (e.g. [\"10.0.0.0/8\"]); a PROXY header from anyone else "
                 "is refused"});
    CHECK(errors(head + "trusted_proxies = [\"10.0.0.0/8\"]\n" + tail) ==
          Errors{"test.toml:4:19: listener.trusted_proxies: is only used with proxy_protocol = "
                 "true"});
    CHECK(errors(head + "proxy_protocol = true\ntrusted_proxies = []\n" + tail) ==
          Errors{"test.toml:5:19: listener.trusted_proxies: must list at least one network"});
    CHECK(errors(head +
                 "proxy_protocol = true\ntrusted_proxies = [\"10.0.0.1/8\", "
                 "\"10.0.0.0/33\", \"lb.example\", 7]\n" +
                 tail) ==
          Errors{"test.toml:5:20: listener.trusted_proxies[0]: \"10.0.0.1/8\" has host bits "
                 "set; did you mean \"10.0.0.0/8\"?",
                 "test.toml:5:34: listener.trusted_proxies[1]: \"10.0.0.0/33\": the prefix "
                 "length must be a number from 0 to 32",
                 "test.toml:5:49: listener.trusted_proxies[2]: \"lb.example\" is not a network "
                 "such as \"10.0.0.0/8\" or \"2001:db8::/32\"",
                 "test.toml:5:63: listener.trusted_proxies[3]: expected a string, got an integer"});
    CHECK(errors(head + "proxy_protocol = false\n" + tail).empty());
    CHECK(errors(head + "proxy_protocol = 1\n" + tail) ==
          Errors{"test.toml:4:18: listener.proxy_protocol: expected a boolean (true or false), "
                 "got an integer"});
}

TEST_CASE("CIDR matching", "[config]") {
    std::string why;
    const auto v4 = parse_cidr("10.1.0.0/16", why);
    REQUIRE(v4);
    CHECK(v4->contains("10.1.2.3"));
    CHECK(v4->contains("::ffff:10.1.2.3"));
    CHECK_FALSE(v4->contains("10.2.0.1"));
    CHECK_FALSE(v4->contains("::1"));
    CHECK_FALSE(v4->contains("not an ip"));
    CHECK_FALSE(v4->contains(""));
    const auto odd = parse_cidr("192.0.2.128/25", why);
    REQUIRE(odd);
    CHECK(odd->contains("192.0.2.200"));
    CHECK_FALSE(odd->contains("192.0.2.127"));
    const auto v6 = parse_cidr("2001:db8:abc::/48", why);
    REQUIRE(v6);
    CHECK(v6->contains("2001:db8:abc:1::5"));
    CHECK_FALSE(v6->contains("2001:db8:abd::5"));
    CHECK_FALSE(v6->contains("10.0.0.1"));
    const auto all = parse_cidr("0.0.0.0/0", why);
    REQUIRE(all);
    CHECK(all->contains("203.0.113.9"));
    CHECK_FALSE(all->contains("2001:db8::1"));
    CHECK_FALSE(parse_cidr("::ffff:10.0.0.0/104", why));
    CHECK_FALSE(parse_cidr("10.0.0.0/", why));
    CHECK_FALSE(parse_cidr("10.0.0.0/+8", why));
    CHECK_FALSE(parse_cidr("2001:db8::1/64", why));
    CHECK(why == "\"2001:db8::1/64\" has host bits set; did you mean \"2001:db8::/64\"?");
}

TEST_CASE("backend identity and tls modes", "[config]") {
    const std::string head = "[backend]\naddress = \"10.0.0.5:25\"\n";
    const std::string tail = listener_plain + auth_min;
    CHECK(parse(head + "identity = \"xclient\"\n" + tail)->backend.identity ==
          BackendIdentity::xclient);
    CHECK(parse(head + "identity = \"proxy-v1\"\n" + tail)->backend.identity ==
          BackendIdentity::proxy_v1);
    CHECK(parse(head + "identity = \"proxy-v2\"\n" + tail)->backend.identity ==
          BackendIdentity::proxy_v2);
    CHECK(parse(head + "tls = \"starttls\"\n" + tail)->backend.tls == BackendTls::starttls);
    const auto verify = parse(head +
                              "tls = \"starttls-verify\"\nca_file = \"ca.pem\"\n"
                              "tls_name = \"mta.example.com\"\n" +
                              tail);
    CHECK(verify->backend.tls == BackendTls::starttls_verify);
    CHECK(verify->backend.ca_file == "/srv/pc/ca.pem");
    CHECK(verify->backend.tls_name == "mta.example.com");
    const auto defaults = parse(head + "tls = \"starttls-verify\"\n" + tail);
    CHECK(defaults->backend.ca_file == "/etc/ssl/certs/ca-certificates.crt");
    CHECK(defaults->backend.tls_name.empty());
    CHECK(errors(head + "identity = \"XCLIENT\"\n" + tail) ==
          Errors{"test.toml:3:12: backend.identity: expected one of \"none\", \"xclient\", "
                 "\"proxy-v1\", \"proxy-v2\", got \"XCLIENT\" (did you mean 'xclient'?)"});
    CHECK(errors(head + "tls = \"starttls\"\nca_file = \"ca.pem\"\ntls_name = \"x\"\n" + tail) ==
          Errors{"test.toml:4:11: backend.ca_file: is only used with tls = \"starttls-verify\"",
                 "test.toml:5:12: backend.tls_name: is only used with tls = \"starttls-verify\""});
    CHECK(errors(head + "tls = \"starttls-verify\"\ntls_name = \"bad name\"\n" + tail) ==
          Errors{"test.toml:4:12: backend.tls_name: \"bad name\" is not a host name or an IP "
                 "address"});
    CHECK(errors(head + "identity = \"none\"\ntls = \"none\"\n" + tail).empty());
}

TEST_CASE("several backends, probing and health keys", "[config]") {
    const std::string tail = listener_plain + auth_min;
    const auto c = parse(
        "[backend]\naddresses = [\"10.0.0.5:25\", \"mta2.internal:2525\", "
        "\"[::1]:25\"]\nprobe_interval = \"0s\"\nunhealthy_time = \"2m\"\n" +
        tail);
    REQUIRE(c->backend.addresses.size() == 3);
    CHECK(c->backend.addresses[1].text() == "mta2.internal:2525");
    CHECK(c->backend.addresses[2].text() == "[::1]:25");
    CHECK(c->backend.address.text() == "10.0.0.5:25");
    CHECK(c->backend.probe_interval == 0s);
    CHECK(c->backend.unhealthy_time == 2min);
    const auto one = parse(backend_min + tail);
    REQUIRE(one->backend.addresses.size() == 1);
    CHECK(one->backend.addresses[0].text() == "127.0.0.1:25");
    CHECK(one->backend.probe_interval == 1min);
    CHECK(one->backend.unhealthy_time == 30s);
    CHECK(errors("[backend]\naddress = \"10.0.0.5:25\"\naddresses = [\"10.0.0.6:25\"]\n" + tail) ==
          Errors{"test.toml:3:13: backend.addresses: give either backend.address or "
                 "backend.addresses, not both"});
    CHECK(errors("[backend]\naddresses = []\n" + tail) ==
          Errors{"test.toml:2:13: backend.addresses: must list at least one backend"});
    CHECK(errors("[backend]\naddresses = \"10.0.0.5:25\"\n" + tail) ==
          Errors{"test.toml:2:13: backend.addresses: expected an array such as "
                 "[\"10.0.0.5:25\", \"10.0.0.6:25\"], got a string"});
    CHECK(errors("[backend]\naddresses = [\"10.0.0.5:25\", \"10.0.0.5:25\", \"x\"]\n" + tail) ==
          Errors{"test.toml:2:29: backend.addresses[1]: 10.0.0.5:25 is listed twice",
                 "test.toml:2:44: backend.addresses[2]: invalid address \"x\": missing port, "
                 "expected HOST:PORT"});
}

// ---- types and values ----

TEST_CASE("wrong types name the expected type", "[config]") {
    CHECK(errors(before_base("[server]\nworkers = \"4\"")) ==
          Errors{"test.toml:2:11: server.workers: expected an integer, got a string"});
    CHECK(errors(before_base("[server]\nhostname = 5")) ==
          Errors{"test.toml:2:12: server.hostname: expected a string, got an integer"});
    CHECK(errors(before_base("[server]\nmax_connections = 1.5")) ==
          Errors{"test.toml:2:19: server.max_connections: expected an integer, got a float"});
    CHECK(errors(before_base("[limits]\ncommand_timeout = 300")) ==
          Errors{"test.toml:2:19: limits.command_timeout: expected a duration string such as "
                 "\"30s\", got an integer"});
    CHECK(errors(before_base("[limits]\nmessage_size = true")) ==
          Errors{"test.toml:2:16: limits.message_size: expected a size such as \"50MiB\" or an "
                 "integer, got a boolean"});
    CHECK(errors(before_base("[log]\nformat = [\"json\"]")) ==
          Errors{"test.toml:2:10: log.format: expected a string, got an array"});
    CHECK(errors(before_base("[tls]\nmin_version = 1.2")) ==
          Errors{"test.toml:2:15: tls.min_version: expected a string such as \"1.2\" (in quotes), "
                 "got a float"});
    CHECK(errors(before_base("server = 5")) ==
          Errors{"test.toml:1:10: [server] must be a table, got an integer"});
    CHECK(errors(before_base("[limits]\ncommand_timeout = 1979-05-27")) ==
          Errors{"test.toml:2:19: limits.command_timeout: expected a duration string such as "
                 "\"30s\", got a date"});
}

TEST_CASE("[server] values are range-checked", "[config]") {
    CHECK(errors(before_base("[server]\nworkers = 257")) ==
          Errors{"test.toml:2:11: server.workers: must be between 0 and 256, got 257"});
    CHECK(errors(before_base("[server]\nworkers = -1")) ==
          Errors{"test.toml:2:11: server.workers: must be between 0 and 256, got -1"});
    CHECK(errors(before_base("[server]\nmax_connections = 0")) ==
          Errors{"test.toml:2:19: server.max_connections: must be between 1 and "
                 "9223372036854775807, got 0"});
    CHECK(errors(before_base("[server]\nmax_connections_per_ip = 0")) ==
          Errors{"test.toml:2:26: server.max_connections_per_ip: must be between 1 and "
                 "9223372036854775807, got 0"});
    CHECK(errors(before_base("[server]\nhostname = \"\"")) ==
          Errors{"test.toml:2:12: server.hostname: must not be empty"});
    CHECK(errors(before_base("[server]\nhostname = \"mail example.com\"")) ==
          Errors{"test.toml:2:12: server.hostname: \"mail example.com\" is not a valid host name "
                 "(letters, digits, '-' and '.')"});
    CHECK(errors(before_base("[server]\nhostname = \"-mail.example.com\"")).size() == 1);
    CHECK(errors(before_base("[server]\nhostname = \"mail..example.com\"")).size() == 1);
}

TEST_CASE("[limits] values are validated", "[config]") {
    CHECK(errors(before_base("[limits]\nmessage_size = \"1023\"")) ==
          Errors{"test.toml:2:16: limits.message_size: must be at least 1024 bytes"});
    CHECK(errors(before_base("[limits]\nmessage_size = 512")) ==
          Errors{"test.toml:2:16: limits.message_size: must be at least 1024 bytes"});
    CHECK(errors(before_base("[limits]\nmessage_size = -5")) ==
          Errors{"test.toml:2:16: limits.message_size: must not be negative"});
    CHECK(errors(before_base("[limits]\nmessage_size = \"50MB\"")) ==
          Errors{"test.toml:2:16: limits.message_size: invalid size \"50MB\": unknown unit "
                 "\"MB\" (use B, KiB, MiB or GiB)"});
    CHECK(errors(before_base("[limits]\nrecipients_per_message = 0")) ==
          Errors{"test.toml:2:26: limits.recipients_per_message: must be between 1 and "
                 "9223372036854775807, got 0"});
    CHECK(errors(before_base("[limits]\ncommand_timeout = \"0s\"")) ==
          Errors{"test.toml:2:19: limits.command_timeout: must be longer than 0"});
    CHECK(errors(before_base("[limits]\ncommand_timeout = \"5 m\"")) ==
          Errors{"test.toml:2:19: limits.command_timeout: invalid duration \"5 m\": spaces are "
                 "not allowed (use ms, s, m, h or d)"});
    CHECK(errors(before_base("[limits]\nbare_line_endings = \"fix\"")) ==
          Errors{"test.toml:2:21: limits.bare_line_endings: expected one of \"reject\", "
                 "\"normalize\", got \"fix\""});
}

TEST_CASE("[log] values are validated, with a hint for near misses", "[config]") {
    CHECK(errors(before_base("[log]\nlevel = \"verbose\"")) ==
          Errors{"test.toml:2:9: log.level: expected one of \"debug\", \"info\", \"warn\", "
                 "\"error\", got \"verbose\""});
    CHECK(errors(before_base("[log]\nlevel = \"Info\"")) ==
          Errors{"test.toml:2:9: log.level: expected one of \"debug\", \"info\", \"warn\", "
                 "\"error\", got \"Info\" (did you mean 'info'?)"});
    CHECK(errors(before_base("[log]\nlevel = \"warning\"")) ==
          Errors{"test.toml:2:9: log.level: expected one of \"debug\", \"info\", \"warn\", "
                 "\"error\", got \"warning\" (did you mean 'warn'?)"});
    CHECK(errors(before_base("[log]\nformat = \"xml\"")) ==
          Errors{"test.toml:2:10: log.format: expected one of \"json\", \"text\", got \"xml\""});
}

// ---- listeners ----

TEST_CASE("at least one listener is required", "[config]") {
    CHECK(errors(backend_min + auth_min) ==
          Errors{"test.toml:1:1: at least one [[listener]] is required"});
    CHECK(errors("listener = []\n" + backend_min + auth_min) ==
          Errors{"test.toml:1:12: at least one [[listener]] is required"});
    CHECK(errors("[listener]\naddress = \"127.0.0.1:25\"\n" + backend_min + auth_min) ==
          Errors{"test.toml:1:1: listener: expected an array of tables ([[listener]]), got a "
                 "table"});
    CHECK(errors("listener = [1]\n" + backend_min + auth_min) ==
          Errors{"test.toml:1:12: listener: expected an array of tables ([[listener]]), got an "
                 "array"});
}

TEST_CASE("listener addresses must be numeric IP:PORT", "[config]") {
    const auto listener_error = [](std::string_view address) {
        return errors("[[listener]]\naddress = \"" + std::string(address) + "\"\ntls = \"none\"\n" +
                      backend_min + auth_min);
    };
    CHECK(listener_error("0.0.0.0:587").empty());
    CHECK(listener_error("[::]:587").empty());
    CHECK(listener_error("[2001:db8::1]:65535").empty());
    CHECK(listener_error("localhost:587") ==
          Errors{"test.toml:2:11: listener.address: invalid address \"localhost:587\": "
                 "\"localhost\" is not a numeric IP address (host names are not allowed here)"});
    CHECK(listener_error("::1:587") ==
          Errors{"test.toml:2:11: listener.address: invalid address \"::1:587\": an IPv6 address "
                 "needs brackets, e.g. \"[::1]:587\""});
    CHECK(listener_error("0.0.0.0") ==
          Errors{"test.toml:2:11: listener.address: invalid address \"0.0.0.0\": missing port, "
                 "expected HOST:PORT"});
    CHECK(listener_error("[::1]587") ==
          Errors{"test.toml:2:11: listener.address: invalid address \"[::1]587\": expected "
                 "[IPv6]:PORT, e.g. \"[::1]:587\""});
    CHECK(listener_error("[127.0.0.1]:587") ==
          Errors{"test.toml:2:11: listener.address: invalid address \"[127.0.0.1]:587\": "
                 "\"127.0.0.1\" is not an IPv6 address"});
    const std::string bad_port = "the port must be a number from 1 to 65535";
    for (const std::string address :
         {"0.0.0.0:0", "0.0.0.0:65536", "0.0.0.0:", "0.0.0.0:+25", "0.0.0.0:25x", "[::]:0"}) {
        CHECK(listener_error(address) ==
              Errors{"test.toml:2:11: listener.address: invalid address \"" + address +
                     "\": " + bad_port});
    }
    CHECK(listener_error("127.0.0.1\\u0000x:25") ==
          Errors{"test.toml:2:11: listener.address: must not contain a NUL character"});
    CHECK(listener_error("256.0.0.1:25").size() == 1);
    CHECK(listener_error("10.0.5:25").size() == 1);
}

TEST_CASE("listener fields: address required, tls mode, duplicates", "[config]") {
    const std::string tail = backend_min + auth_min;
    CHECK(errors("[[listener]]\ntls = \"none\"\n" + tail) ==
          Errors{"test.toml:1:1: listener.address is required"});
    CHECK(errors("[[listener]]\naddress = \"127.0.0.1:25\"\ntls = \"ssl\"\n" + tail) ==
          Errors{"test.toml:3:7: listener.tls: expected one of \"starttls\", \"implicit\", "
                 "\"none\", got \"ssl\""});
    CHECK(errors(listener_plain + listener_plain + tail) ==
          Errors{"test.toml:5:11: listener.address: 127.0.0.1:2525 is used by two listeners"});
}

// ---- TLS ----

TEST_CASE("a TLS listener requires certificate and private_key", "[config]") {
    const std::string tail = backend_min + auth_min;
    CHECK(errors("[[listener]]\naddress = \"0.0.0.0:587\"\ntls = \"starttls\"\n" + tail) ==
          Errors{"test.toml:3:7: this listener uses TLS, so [tls] certificate and private_key "
                 "are required"});
    // tls defaults to starttls: the listener table itself is named.
    CHECK(errors(listener_plain + "[[listener]]\naddress = \"0.0.0.0:587\"\n" + tail) ==
          Errors{"test.toml:4:1: this listener uses TLS, so [tls] certificate and private_key "
                 "are required"});
    CHECK(errors("[tls]\nmin_version = \"1.3\"\n[[listener]]\naddress = \"0.0.0.0:465\"\n"
                 "tls = \"implicit\"\n" +
                 tail) ==
          Errors{"test.toml:5:7: this listener uses TLS, so [tls] certificate and private_key "
                 "are required"});
}

TEST_CASE("[tls] certificate and key lists are checked", "[config]") {
    const std::string tail =
        "[[listener]]\naddress = \"0.0.0.0:465\"\ntls = \"implicit\"\n" + backend_min + auth_min;
    CHECK(errors("[tls]\ncertificate = [\"a.pem\", \"b.pem\"]\nprivate_key = \"a.key\"\n" + tail) ==
          Errors{"test.toml:3:15: tls.private_key lists 1 file(s) but tls.certificate lists 2; "
                 "they pair up by position"});
    CHECK(errors("[tls]\ncertificate = \"a.pem\"\n" + tail) ==
          Errors{"test.toml:2:15: tls.certificate is given without tls.private_key"});
    CHECK(errors("[tls]\ncertificate = []\nprivate_key = []\n" + tail) ==
          Errors{"test.toml:2:15: tls.certificate: must not be empty",
                 "test.toml:3:15: tls.private_key: must not be empty"});
    CHECK(errors("[tls]\ncertificate = [\"a.pem\", 7]\nprivate_key = [\"a.key\", \"\"]\n" + tail) ==
          Errors{"test.toml:2:25: tls.certificate[1]: expected a string, got an integer",
                 "test.toml:3:25: tls.private_key[1]: must not be empty"});
    CHECK(errors("[tls]\ncertificate = [\"a\\u0000b\"]\nprivate_key = [\"k\"]\n" + tail) ==
          Errors{"test.toml:2:16: tls.certificate[0]: must not contain a NUL character"});
    CHECK(errors("[tls]\ncertificate = \"\"\nprivate_key = \"k\"\n" + tail) ==
          Errors{"test.toml:2:15: tls.certificate: must not be empty"});
    CHECK(errors("[tls]\ncertificate = 1\nprivate_key = \"k\"\n" + tail) ==
          Errors{"test.toml:2:15: tls.certificate: expected a string or an array of strings, got "
                 "an integer"});
    CHECK(
        errors("[tls]\ncertificate = \"c\"\nprivate_key = \"k\"\nmin_version = \"1.1\"\n" + tail) ==
        Errors{"test.toml:4:15: tls.min_version: expected one of \"1.2\", \"1.3\", got \"1.1\""});
}

// ---- backend ----

TEST_CASE("[backend] is required, with an address that may be a host name", "[config]") {
    CHECK(errors(listener_plain + auth_min) ==
          Errors{"test.toml:1:1: missing required section [backend]"});
    CHECK(errors(listener_plain + "[backend]\nconnect_timeout = \"5s\"\n" + auth_min) ==
          Errors{"test.toml:4:1: backend.address is required"});
    const auto backend_error = [](std::string_view address) {
        return errors(listener_plain + "[backend]\naddress = \"" + std::string(address) + "\"\n" +
                      auth_min);
    };
    CHECK(backend_error("mta:25").empty());
    CHECK(backend_error("mta.example.com:25").empty());
    CHECK(backend_error("[fd00::5]:25").empty());
    CHECK(backend_error("mta_1:25") ==
          Errors{"test.toml:5:11: backend.address: invalid address \"mta_1:25\": \"mta_1\" is not "
                 "an IP address or a host name"});
    CHECK(backend_error("10.0.5:25") ==
          Errors{"test.toml:5:11: backend.address: invalid address \"10.0.5:25\": \"10.0.5\" is "
                 "not an IP address or a host name"});
    CHECK(backend_error("mta") ==
          Errors{"test.toml:5:11: backend.address: invalid address \"mta\": missing port, "
                 "expected HOST:PORT"});
}

TEST_CASE("[backend] timeouts must be positive durations", "[config]") {
    const std::string head = "[backend]\naddress = \"10.0.0.5:25\"\n";
    const std::string tail = listener_plain + auth_min;
    for (const std::string key : {"connect_timeout", "reply_timeout", "data_reply_timeout"}) {
        const std::string column = std::to_string(key.size() + 4);
        CHECK(errors(head + key + " = \"0s\"\n" + tail) ==
              Errors{"test.toml:3:" + column + ": backend." + key + ": must be longer than 0"});
        CHECK(errors(head + key + " = \"10\"\n" + tail) ==
              Errors{"test.toml:3:" + column + ": backend." + key +
                     ": invalid duration \"10\": missing unit (use ms, s, m, h or d)"});
    }
}

// ---- auth ----

TEST_CASE("[auth] users_file is required", "[config]") {
    CHECK(errors(listener_plain + backend_min) ==
          Errors{"test.toml:1:1: missing required section [auth]"});
    CHECK(errors(listener_plain + backend_min + "[auth]\nfailure_delay = \"1s\"\n") ==
          Errors{"test.toml:6:1: auth.users_file is required"});
    CHECK(errors(listener_plain + backend_min + "[auth]\nusers_file = \"\"\n") ==
          Errors{"test.toml:7:14: auth.users_file: must not be empty"});
}

TEST_CASE("[auth] mechanisms are PLAIN and LOGIN only", "[config]") {
    const std::string head = listener_plain + backend_min + auth_min;  // ends on line 7
    CHECK(errors(head + "mechanisms = []\n") ==
          Errors{"test.toml:8:14: auth.mechanisms: must list at least one mechanism"});
    CHECK(errors(head + "mechanisms = \"PLAIN\"\n") ==
          Errors{"test.toml:8:14: auth.mechanisms: expected an array such as [\"PLAIN\", "
                 "\"LOGIN\"], got a string"});
    CHECK(errors(head + "mechanisms = [\"PLAIN\", \"CRAM-MD5\", 5]\n") ==
          Errors{"test.toml:8:24: auth.mechanisms[1]: unknown mechanism \"CRAM-MD5\" (use PLAIN "
                 "or LOGIN)",
                 "test.toml:8:36: auth.mechanisms[2]: expected a string, got an integer"});
}

TEST_CASE("[auth] hashing and password policy values", "[config]") {
    const std::string head = listener_plain + backend_min + auth_min;
    CHECK(errors(head + "hash_iterations = 1\n") ==
          Errors{"test.toml:8:19: auth.hash_iterations: must be between 2 and 4294967295, got 1"});
    CHECK(errors(head + "hash_memory = \"18MiB\"\n") ==
          Errors{"test.toml:8:15: auth.hash_memory: must be at least 19922944 bytes"});
    CHECK(errors(head + "hash_memory = 19922945\n") ==
          Errors{"test.toml:8:15: auth.hash_memory: must be a whole number of KiB"});
    CHECK(errors(head + "hash_memory = \"8GiB\"\n").empty());
    CHECK(errors(head + "min_password_score = 5\n") ==
          Errors{"test.toml:8:22: auth.min_password_score: must be between 0 and 4, got 5"});
    CHECK(errors(head + "failure_delay = \"2\"\n") ==
          Errors{"test.toml:8:17: auth.failure_delay: invalid duration \"2\": missing unit (use "
                 "ms, s, m, h or d)"});
}

// ---- all problems at once ----

TEST_CASE("every problem is reported, ordered by position", "[config]") {
    const std::string text = R"([server]
workers = 1000
hostnme = "x"

[[listener]]
address = "localhost:25"
tls = "none"

[backend]
address = "10.0.0.5:25"
tls_name = "mta"

[auth]
users_file = "users.toml"
lockout = "0s"

[metrics]
address = "localhost:9587"
)";
    const Errors expected{
        "test.toml:2:11: server.workers: must be between 0 and 256, got 1000",
        "test.toml:3:1: unknown key 'hostnme' in [server] (did you mean 'hostname'?)",
        "test.toml:6:11: listener.address: invalid address \"localhost:25\": \"localhost\" is not "
        "a numeric IP address (host names are not allowed here)",
        "test.toml:11:12: backend.tls_name: is only used with tls = \"starttls-verify\"",
        "test.toml:15:11: auth.lockout: must be longer than 0",
        "test.toml:18:11: metrics.address: invalid address \"localhost:9587\": \"localhost\" is "
        "not a numeric IP address (host names are not allowed here)",
    };
    CHECK(errors(text) == expected);
    try {
        (void)parse_config(text, "test.toml");
        FAIL("no ConfigError");
    } catch (const ConfigError& e) {
        std::string joined;
        for (const std::string& line : expected) {
            joined += (joined.empty() ? "" : "\n") + line;
        }
        CHECK(e.what() == joined);
        CHECK(e.diagnostics().size() == expected.size());
    }
}

// ---- files ----

TEST_CASE("load_config reads a file and resolves paths next to it", "[config]") {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("portcullis-config-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto file = dir / "gw.toml";
    std::ofstream(file) << listener_plain << backend_min << auth_min;
    const auto c = load_config(file);
    CHECK(c->file == file);
    CHECK(c->auth.users_file == dir / "users.toml");
    std::filesystem::remove_all(dir);
}

TEST_CASE("load_config reports a missing file with its name", "[config]") {
    const std::filesystem::path missing = "/nonexistent/portcullis.toml";
    try {
        (void)load_config(missing);
        FAIL("no ConfigError");
    } catch (const ConfigError& e) {
        REQUIRE(e.diagnostics().size() == 1);
        CHECK(e.diagnostics()[0].text() ==
              "/nonexistent/portcullis.toml: cannot open: No such file or directory");
    }
}

TEST_CASE("load_config reports errors with the file's name", "[config]") {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("portcullis-config-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto file = dir / "bad.toml";
    std::ofstream(file) << "[server]\nworkers = \"x\"\n"
                        << listener_plain << backend_min << auth_min;
    try {
        (void)load_config(file);
        FAIL("no ConfigError");
    } catch (const ConfigError& e) {
        CHECK_THAT(e.what(), Catch::StartsWith(file.string() + ":2:11: server.workers: "));
    }
    std::filesystem::remove_all(dir);
}

// ---- small types ----

TEST_CASE("Endpoint::text brackets IPv6 only", "[config]") {
    CHECK(Endpoint{"127.0.0.1", 25}.text() == "127.0.0.1:25");
    CHECK(Endpoint{"::1", 587}.text() == "[::1]:587");
    CHECK(Endpoint{"mta.example.com", 2525}.text() == "mta.example.com:2525");
}

TEST_CASE("Diagnostic::text is FILE:LINE:COL: message", "[config]") {
    CHECK(Diagnostic{"a.toml", 3, 7, "bad"}.text() == "a.toml:3:7: bad");
    CHECK(Diagnostic{"a.toml", 0, 0, "cannot open"}.text() == "a.toml: cannot open");
}

TEST_CASE("parse_endpoint is usable on its own", "[config]") {
    std::string error;
    const auto e = parse_endpoint("[fe80::1]:25", false, error);
    REQUIRE(e);
    CHECK(e->host == "fe80::1");
    CHECK(e->port == 25);
    CHECK_FALSE(parse_endpoint("", true, error));
    CHECK(error == "invalid address \"\": missing port, expected HOST:PORT");
    CHECK_FALSE(parse_endpoint("mx:25", false, error));
    CHECK(parse_endpoint("mx:25", true, error));
}

TEST_CASE("ticket_key_rotation must be between 1m and 7d", "[config]") {
    const std::string tls = "[[listener]]\naddress = \"127.0.0.1:465\"\ntls = \"implicit\"\n" +
                            backend_min + auth_min +
                            "[tls]\ncertificate = \"c.pem\"\nprivate_key = \"k.pem\"\n";
    CHECK(errors(tls + "ticket_key_rotation = \"30s\"\n") ==
          Errors{"test.toml:11:23: tls.ticket_key_rotation: must be between 1m and 7d"});
    CHECK(errors(tls + "ticket_key_rotation = \"8d\"\n") ==
          Errors{"test.toml:11:23: tls.ticket_key_rotation: must be between 1m and 7d"});
    CHECK(errors(tls + "ticket_key_rotation = \"7d\"\n").empty());
}

TEST_CASE("signing_threads is a count from 0 to 64", "[config]") {
    const std::string tls = "[[listener]]\naddress = \"127.0.0.1:465\"\ntls = \"implicit\"\n" +
                            backend_min + auth_min +
                            "[tls]\ncertificate = \"c.pem\"\nprivate_key = \"k.pem\"\n";
    CHECK(errors(tls + "signing_threads = 65\n") ==
          Errors{"test.toml:11:19: tls.signing_threads: must be between 0 and 64, got 65"});
    CHECK(errors(tls + "signing_threads = -1\n").size() == 1);
    CHECK(errors(tls + "signing_threads = \"2\"\n").size() == 1);
    CHECK(errors(tls + "signing_threads = 64\n").empty());
}
