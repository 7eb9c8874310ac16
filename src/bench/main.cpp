// portcullis-bench: SMTP submission load generator for Portcullis and its peers.
// Exit codes: 0 run completed without failures, 1 failures (or nothing measured),
// 2 usage or set-up error.
#include <openssl/ssl.h>
#include <uv.h>

#include <csignal>
#include <iostream>
#include <memory>

#include "bench/client.hpp"
#include "bench/codec.hpp"
#include "bench/message.hpp"
#include "bench/options.hpp"
#include "bench/report.hpp"
#include "net/stream.hpp"
#include "tls/session.hpp"
#include "bench/runner.hpp"

namespace {

using namespace portcullis::bench;

struct SslCtxDeleter {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

// No certificate verification: the bench measures, it does not authenticate servers.
std::unique_ptr<SSL_CTX, SslCtxDeleter> make_tls_context() {
    std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx(SSL_CTX_new(TLS_method()));
    if (ctx) {
        SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
        SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
        portcullis::tls::TlsSession::keep_issued_sessions(ctx.get());
    }
    return ctx;
}

class Loop {
  public:
    Loop() {
        uv_loop_init(&loop_);
        // The report's "bench loop" line needs libuv's idle time; without it a turn's
        // time would include the poll's sleep.
        if (!portcullis::net::enable_turn_metrics(&loop_)) {
            std::cerr << "portcullis-bench: this libuv cannot measure its idle time; the "
                         "\"bench loop\" figures include the time it slept\n";
        }
    }
    ~Loop() {
        uv_run(&loop_, UV_RUN_DEFAULT);
        uv_loop_close(&loop_);
    }
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;
    uv_loop_t* get() { return &loop_; }

  private:
    uv_loop_t loop_{};
};

int run_load(uv_loop_t* loop, const Options& options, const ClientSetup& setup) {
    LoadRun run(loop, setup);
    const LoadReport report = run.run();
    if (options.json) {
        print_load_json(options, report, std::cout);
    } else {
        print_load_text(options, report, std::cout);
    }
    return report.failures == 0 && report.messages > 0 && !report.stopped_early ? 0 : 1;
}

int run_idle(uv_loop_t* loop, const Options& options, const ClientSetup& setup) {
    IdleRun run(loop, setup);
    const IdleReport report = run.run();
    if (options.json) {
        print_idle_json(options, report, std::cout);
    } else {
        print_idle_text(options, report, std::cout);
    }
    return report.ready == report.requested ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    int exit_code = 0;
    if (!parse_options(argc, argv, options, exit_code)) {
        return exit_code;
    }
    if (options.codec) {
        const Script script = make_script(options);
        const CodecResult results[2] = {
            run_codec(options, script.body, script.message_size, false, options.duration_s / 2),
            run_codec(options, script.body, script.message_size, true, options.duration_s / 2)};
        print_codec(options, results, std::cout);
        return results[0].correct && results[1].correct ? 0 : 1;
    }
    std::signal(SIGPIPE, SIG_IGN);

    ClientSetup setup;
    if (!portcullis::net::make_sockaddr(options.host, options.port, setup.address)) {
        std::cerr << "portcullis-bench: --target needs a numeric IP address, got '" << options.host
                  << "'\n";
        return 2;
    }
    const auto tls = make_tls_context();
    if (!tls) {
        std::cerr << "portcullis-bench: cannot create a TLS context\n";
        return 2;
    }
    const Script script = make_script(options);
    setup.options = &options;
    setup.script = &script;
    setup.tls = tls.get();
    setup.idle = options.idle > 0;

    Loop loop;
    return setup.idle ? run_idle(loop.get(), options, setup) : run_load(loop.get(), options, setup);
}
