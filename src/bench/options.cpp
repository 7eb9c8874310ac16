#include "bench/options.hpp"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "smtp/data_codec.hpp"

namespace portcullis::bench {
namespace {

constexpr const char* kPasswordEnv = "PORTCULLIS_BENCH_PASSWORD";

// "64KiB", "1MiB", "1024": the same size syntax as the gateway's config.
std::uint64_t parse_size(const std::string& text) {
    static const std::map<std::string, std::uint64_t> units{
        {"", 1}, {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"k", 1000}, {"M", 1000000}};
    std::size_t end = 0;
    const unsigned long long value = std::stoull(text, &end);
    const auto unit = units.find(text.substr(end));
    if (unit == units.end()) {
        throw CLI::ValidationError("--size", "unknown unit in '" + text + "' (B, KiB, MiB)");
    }
    return value * unit->second;
}

std::string read_first_line(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        throw CLI::ValidationError("--password-file", "cannot read " + path);
    }
    std::string line;
    std::getline(in, line);
    if (!line.empty() && line.back() == '\r') {
        line.pop_back();
    }
    return line;
}

void split_target(const std::string& target, Options& out) {
    const auto colon = target.rfind(':');
    if (colon == std::string::npos || colon + 1 == target.size()) {
        throw CLI::ValidationError("--target", "expected HOST:PORT, got '" + target + "'");
    }
    std::string host = target.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    out.host = host;
    const unsigned long port = std::stoul(target.substr(colon + 1));
    if (port == 0 || port > 65535) {
        throw CLI::ValidationError("--target", "port out of range in '" + target + "'");
    }
    out.port = static_cast<std::uint16_t>(port);
}

void validate(Options& o) {
    if (o.codec) {
        o.auth = AuthMech::none;  // no server is involved
        if (o.codec_chunk < smtp::kHeldLineMax) {
            throw CLI::ValidationError("--codec-chunk",
                                       "must be at least " + std::to_string(smtp::kHeldLineMax) +
                                           " bytes (the longest unfinished line held back)");
        }
    }
    if (o.auth != AuthMech::none && o.idle == 0 && (o.user.empty() || o.password.empty())) {
        throw CLI::ValidationError("--auth", std::string("needs --user and a password (--password, "
                                                         "--password-file or $") +
                                                 kPasswordEnv + ")");
    }
    if (o.from.empty()) {
        o.from = o.user.empty() ? "bench@example.com" : o.user;
    }
    if (o.clients == 0 || o.messages_per_connection == 0) {
        throw CLI::ValidationError("--clients/--messages-per-connection", "must be at least 1");
    }
    if (o.message_size < 2) {
        throw CLI::ValidationError("--size", "must be at least 2 bytes (one CRLF line)");
    }
    if (o.duration_s <= 0 || o.duration_s > 3600) {
        throw CLI::ValidationError("--duration", "must be in (0, 3600] seconds");
    }
    if (o.idle > 0 && o.idle_tls && o.mode != Mode::starttls) {
        throw CLI::ValidationError("--idle-tls", "applies to --mode starttls only");
    }
}

}  // namespace

const char* mode_name(Mode mode) {
    switch (mode) {
        case Mode::plain:
            return "plain";
        case Mode::starttls:
            return "starttls";
        case Mode::implicit:
            return "implicit";
    }
    return "?";
}

const char* auth_name(AuthMech mech) {
    switch (mech) {
        case AuthMech::none:
            return "none";
        case AuthMech::plain:
            return "PLAIN";
        case AuthMech::login:
            return "LOGIN";
    }
    return "?";
}

namespace {

// Options that are not fields of Options as such: parsed into text, converted later.
struct RawOptions {
    std::string target = "127.0.0.1:587";
    std::string size = "1KiB";
    std::string password_file;
    std::string codec_chunk = "32KiB";
};

void add_connection_options(CLI::App& app, Options& o, RawOptions& raw) {
    app.add_option("--target,-t", raw.target, "server HOST:PORT")->capture_default_str();
    app.add_option("--mode,-m", o.mode, "plain | starttls | implicit")
        ->transform(CLI::CheckedTransformer(
            std::map<std::string, Mode>{
                {"plain", Mode::plain}, {"starttls", Mode::starttls}, {"implicit", Mode::implicit}},
            CLI::ignore_case))
        ->option_text("plain|starttls|implicit (default starttls)");
    app.add_option("--auth,-a", o.auth, "none | plain | login")
        ->transform(CLI::CheckedTransformer(
            std::map<std::string, AuthMech>{
                {"none", AuthMech::none}, {"plain", AuthMech::plain}, {"login", AuthMech::login}},
            CLI::ignore_case))
        ->option_text("none|plain|login (default plain with --user, else none)");
    app.add_option("--user,-u", o.user, "login name");
    app.add_option(
        "--password", o.password,
        std::string("password (visible in ps; prefer --password-file or $") + kPasswordEnv + ")");
    app.add_option("--password-file", raw.password_file, "read the password from this file");
    app.add_option("--from", o.from, "envelope sender (default: the user name)");
    app.add_option("--to", o.to, "envelope recipient")->capture_default_str();
    app.add_option("--ehlo", o.ehlo_name, "EHLO name")->capture_default_str();
    app.add_option("--sni", o.server_name, "TLS server name to send");
    app.add_option("--timeout", o.timeout_s, "longest wait for one reply, seconds")
        ->capture_default_str();
}

void add_load_options(CLI::App& app, Options& o, RawOptions& raw) {
    app.add_option("--clients,-c", o.clients, "concurrent connections")->capture_default_str();
    app.add_option("--messages-per-connection,-n", o.messages_per_connection,
                   "messages per session before QUIT")
        ->capture_default_str();
    app.add_option("--size,-s", raw.size, "message size: 512, 1KiB, 1MiB")->capture_default_str();
    app.add_option("--duration,-d", o.duration_s, "measured seconds")->capture_default_str();
    app.add_option("--messages", o.max_messages,
                   "stop after this many measured messages (0 = only --duration)");
    app.add_option("--warmup,-w", o.warmup_s, "seconds of load before measuring")
        ->capture_default_str();
    app.add_option("--rate,-r", o.rate, "cap on messages/s over all clients (0 = no cap)");
    app.add_flag("--stagger", o.stagger,
                 "spread reconnects: client i's first connection carries n - i*n/clients "
                 "messages, so connections end evenly over time instead of all together");
    app.add_flag("--resume", o.resume,
                 "resume TLS sessions: each client offers the ticket of its last connection, "
                 "as mail clients do");
    app.add_flag("!--no-pipelining", o.pipelining,
                 "send MAIL, RCPT and DATA one at a time even when PIPELINING is offered");
    app.add_option("--max-failures", o.max_failures, "stop the run past this many failures")
        ->capture_default_str();
}

void add_idle_options(CLI::App& app, Options& o) {
    app.add_option("--idle", o.idle,
                   "idle mode: open N connections (TLS done, greeting read), hold them and "
                   "report the watched processes' RSS per connection");
    app.add_flag("--idle-tls", o.idle_tls,
                 "idle mode with --mode starttls: also EHLO, STARTTLS and the TLS handshake");
    app.add_option("--idle-parallel", o.idle_parallel, "idle mode: connections set up at once")
        ->capture_default_str();
    app.add_option("--settle", o.settle_s, "idle mode: seconds between last ready and sampling")
        ->capture_default_str();
    app.add_option("--hold", o.hold_s, "idle mode: seconds to keep holding after sampling")
        ->capture_default_str();
}

void add_codec_options(CLI::App& app, Options& o, RawOptions& raw) {
    app.add_flag("--codec", o.codec,
                 "codec mode: no network; run the gateway's DATA decoder on the --size message "
                 "for --duration seconds and print its cost per MB");
    app.add_option("--codec-chunk", raw.codec_chunk, "codec mode: bytes per decoder call")
        ->capture_default_str();
}

void add_output_options(CLI::App& app, Options& o) {
    app.add_option("--watch-pid", o.watch_pids,
                   "server process to measure (repeatable): CPU time over the measured window, "
                   "or RSS in idle mode, from /proc");
    app.add_flag("--json", o.json, "print one JSON object instead of text");
}

// Turns the parsed text into the final Options; throws CLI::ValidationError.
void finish_options(const CLI::App& app, const RawOptions& raw, Options& o) {
    split_target(raw.target, o);
    o.message_size = parse_size(raw.size);
    o.codec_chunk = parse_size(raw.codec_chunk);
    if (!raw.password_file.empty()) {
        o.password = read_first_line(raw.password_file);
    } else if (o.password.empty()) {
        if (const char* env = std::getenv(kPasswordEnv)) {
            o.password = env;
        }
    }
    if (o.auth == AuthMech::plain && o.user.empty() && o.idle == 0 && app.count("--auth") == 0) {
        o.auth = AuthMech::none;  // no credentials given and none asked for
    }
    validate(o);
}

}  // namespace

bool parse_options(int argc, char** argv, Options& out, int& exit_code) {
    CLI::App app{
        "portcullis-bench: SMTP submission load generator (plain, STARTTLS, implicit TLS; "
        "AUTH PLAIN/LOGIN; pipelined MAIL/RCPT/DATA; every reply checked)",
        "portcullis-bench"};
    Options o;
    RawOptions raw;
    add_connection_options(app, o, raw);
    add_load_options(app, o, raw);
    add_idle_options(app, o);
    add_codec_options(app, o, raw);
    add_output_options(app, o);
    try {
        app.parse(argc, argv);
        finish_options(app, raw, o);
    } catch (const CLI::ParseError& e) {
        exit_code = app.exit(e) == 0 ? 0 : 2;
        return false;
    } catch (const std::exception& e) {
        std::cerr << "portcullis-bench: " << e.what() << "\n";
        exit_code = 2;
        return false;
    }
    out = std::move(o);
    return true;
}

}  // namespace portcullis::bench
