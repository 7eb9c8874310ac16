// portcullis-bench: command-line options. Parsing and validation live here so the rest
// of the tool only ever sees a consistent Options value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace portcullis::bench {

enum class Mode { plain, starttls, implicit };
enum class AuthMech { none, plain, login };

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 587;
    Mode mode = Mode::starttls;
    AuthMech auth = AuthMech::plain;
    std::string user;
    std::string password;
    std::string from;  // default: the user name
    std::string to = "sink@example.net";
    std::string ehlo_name = "bench.test";
    std::string server_name;  // SNI; none by default

    unsigned clients = 10;
    unsigned messages_per_connection = 1;
    std::uint64_t message_size = 1024;
    double duration_s = 10.0;
    std::uint64_t max_messages = 0;  // 0 = no cap; the run also ends at duration_s
    double warmup_s = 2.0;
    double rate = 0.0;        // messages/s over all clients; 0 = as fast as possible
    bool pipelining = true;   // used only when the server advertises it
    bool stagger = false;     // spread the clients' reconnects evenly (see --stagger)
    bool resume = false;      // offer the last connection's TLS session (ticket) when reconnecting
    double timeout_s = 30.0;  // longest wait for any one reply
    std::uint64_t max_failures = 10000;  // the run stops early past this many

    // --idle N: open N connections, hold them, report the servers' RSS per connection.
    unsigned idle = 0;
    bool idle_tls = false;        // starttls mode: also do EHLO, STARTTLS, handshake, EHLO
    unsigned idle_parallel = 64;  // connections being set up at once
    double settle_s = 2.0;        // wait after the last connection is ready, then sample
    double hold_s = 0.0;          // keep holding after sampling

    // --codec: no network; the gateway's DATA decoder alone on the bench message, cut
    // into pieces of codec_chunk bytes, for --duration seconds.
    bool codec = false;
    std::uint64_t codec_chunk = 32 * 1024;

    std::vector<int> watch_pids;  // server processes: CPU (load) and RSS (idle) from /proc
    bool json = false;
};

// Parses argv; on --help or a usage error prints to stdout/stderr and returns the exit
// code to use (0 or 2) in `exit_code` with false as the result.
bool parse_options(int argc, char** argv, Options& out, int& exit_code);

const char* mode_name(Mode mode);
const char* auth_name(AuthMech mech);

}  // namespace portcullis::bench
