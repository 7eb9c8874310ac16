// bench::StampedStream: bytes in both directions, and each read stamped with the time
// its bytes reached the socket, not the time the loop got round to reading them.
#include "bench/stamped_stream.hpp"

#include <netinet/in.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "net/stream.hpp"

namespace {

using portcullis::bench::ReceiveTimestampsOn;
using portcullis::bench::StampedStream;
using portcullis::net::StreamHandler;
using portcullis::net::TcpStream;
using portcullis::net::Timer;

void busy_wait(std::chrono::milliseconds how_long) {
    const auto until = std::chrono::steady_clock::now() + how_long;
    while (std::chrono::steady_clock::now() < until) {
    }
}

struct Collect final : StreamHandler {
    std::string data;
    int end_status = 0;
    std::uint64_t read_at_ns = 0;  // when the last on_stream_data ran
    void on_stream_data(std::string_view bytes) override {
        data.append(bytes);
        read_at_ns = uv_hrtime();
    }
    void on_stream_end(int status) override { end_status = status; }
};

// A loopback listener whose accepted connection is kept in `accepted`.
struct Listener {
    uv_tcp_t tcp{};
    std::unique_ptr<TcpStream> accepted;
    Collect received;
    std::uint16_t port = 0;

    explicit Listener(uv_loop_t* loop) {
        REQUIRE(uv_tcp_init(loop, &tcp) == 0);
        tcp.data = this;
        sockaddr_in any{};
        REQUIRE(uv_ip4_addr("127.0.0.1", 0, &any) == 0);
        REQUIRE(uv_tcp_bind(&tcp, reinterpret_cast<const sockaddr*>(&any), 0) == 0);
        REQUIRE(
            uv_listen(reinterpret_cast<uv_stream_t*>(&tcp), 8, [](uv_stream_t* server, int status) {
                auto* self = static_cast<Listener*>(server->data);
                REQUIRE(status == 0);
                self->accepted = std::make_unique<TcpStream>(server->loop);
                REQUIRE(self->accepted->accept_from(server));
                self->accepted->set_handler(&self->received);
                self->accepted->start_reading();
            }) == 0);
        sockaddr_storage bound{};
        int length = sizeof(bound);
        REQUIRE(uv_tcp_getsockname(&tcp, reinterpret_cast<sockaddr*>(&bound), &length) == 0);
        port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    }
    void close() { uv_close(reinterpret_cast<uv_handle_t*>(&tcp), nullptr); }
    sockaddr_in address() const {
        sockaddr_in a{};
        uv_ip4_addr("127.0.0.1", port, &a);
        return a;
    }
};

}  // namespace

TEST_CASE("bytes go both ways once connected, and reading starts when asked") {
    uv_loop_t loop{};
    REQUIRE(uv_loop_init(&loop) == 0);
    const ReceiveTimestampsOn timestamps_on;
    Listener listener(&loop);
    Collect client_side;
    int connect_status = 1;
    {
        auto stream = std::make_unique<StampedStream>(&loop);
        stream->set_handler(&client_side);
        const sockaddr_in to = listener.address();
        stream->connect(reinterpret_cast<const sockaddr*>(&to), [&](int status) {
            connect_status = status;
            stream->write("EHLO bench\r\n");
        });
        Timer server_writes(&loop);
        Timer done(&loop);
        // Written before the client reads: it waits in the socket until start_reading().
        server_writes.start(30, [&] {
            REQUIRE(listener.accepted);
            listener.accepted->write(std::string("250 ok\r\n"));
            CHECK(client_side.data.empty());
            stream->start_reading();
        });
        done.start(150, [&] {
            stream.reset();
            listener.accepted.reset();
            listener.close();
        });
        uv_run(&loop, UV_RUN_DEFAULT);
        REQUIRE(connect_status == 0);
        CHECK(listener.received.data == "EHLO bench\r\n");
        REQUIRE(client_side.data == "250 ok\r\n");
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(uv_loop_close(&loop) == 0);
}

TEST_CASE("the stamp leaves out the time the reply waited for the reader") {
    uv_loop_t loop{};
    REQUIRE(uv_loop_init(&loop) == 0);
    const ReceiveTimestampsOn timestamps_on;
    Listener listener(&loop);
    Collect client_side;
    std::uint64_t written_ns = 0;
    std::uint64_t stamp_ns = 0;
    std::uint64_t reads = 0;
    std::uint64_t stamped = 0;
    {
        auto stream = std::make_unique<StampedStream>(&loop);
        stream->set_handler(&client_side);
        const sockaddr_in to = listener.address();
        stream->connect(reinterpret_cast<const sockaddr*>(&to), [&](int status) {
            REQUIRE(status == 0);
            stream->start_reading();
        });
        Timer server_writes(&loop);
        Timer done(&loop);
        server_writes.start(30, [&] {
            REQUIRE(listener.accepted);
            written_ns = uv_hrtime();
            listener.accepted->write(std::string("250 ok\r\n"));
            // The same loop runs the client: its read waits until this callback returns.
            busy_wait(std::chrono::milliseconds(40));
        });
        done.start(120, [&] {
            stamp_ns = stream->last_receive_ns();
            reads = stream->reads();
            stamped = stream->stamped_reads();
            stream.reset();
            listener.accepted.reset();
            listener.close();
        });
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(uv_loop_close(&loop) == 0);

    REQUIRE(client_side.data == "250 ok\r\n");
    CHECK(reads == 1);
    CHECK(stamped == 1);
    // Read 40 ms after the write, stamped within a few ms of it.
    CHECK(client_side.read_at_ns >= written_ns + 40'000'000);
    CHECK(stamp_ns + 2'000'000 >= written_ns);
    CHECK(stamp_ns <= written_ns + 10'000'000);
}

TEST_CASE("a refused connection is reported on a later loop turn") {
    uv_loop_t loop{};
    REQUIRE(uv_loop_init(&loop) == 0);
    std::uint16_t closed_port = 0;
    {
        Listener gone(&loop);  // a port that was just free and is closed again
        closed_port = gone.port;
        gone.close();
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    Collect handler;
    int status = 1;
    bool called_inside_connect = false;
    {
        StampedStream stream(&loop);
        stream.set_handler(&handler);
        sockaddr_in to{};
        uv_ip4_addr("127.0.0.1", closed_port, &to);
        bool connecting = true;
        stream.connect(reinterpret_cast<const sockaddr*>(&to), [&](int s) {
            status = s;
            called_inside_connect = connecting;
        });
        connecting = false;
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(uv_loop_close(&loop) == 0);
    CHECK(status == UV_ECONNREFUSED);
    CHECK_FALSE(called_inside_connect);
}
