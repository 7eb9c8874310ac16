// The load generator's TCP connection. Like net::TcpStream, but it reads with recvmsg
// and asks the kernel for software receive timestamps (SO_TIMESTAMPING), so each read
// knows when its bytes reached the socket, not only when the bench got round to
// reading them. On 2 shared cores the bench's own TLS handshakes can keep its loop busy
// for milliseconds while a server's reply waits in the socket; the socket time is what
// the server did, the read time includes the load generator's own delay. The gateway
// itself keeps libuv's uv_tcp_t streams (net/stream.hpp).
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "net/stream.hpp"

namespace portcullis::bench {

// Linux turns receive timestamping on for the whole stack when the first socket asks
// for it, from a work queue, so the first segments after that can arrive unstamped.
// Held for a run, this socket keeps it on from before the first connection to the last.
class ReceiveTimestampsOn {
  public:
    ReceiveTimestampsOn();
    ~ReceiveTimestampsOn();
    ReceiveTimestampsOn(const ReceiveTimestampsOn&) = delete;
    ReceiveTimestampsOn& operator=(const ReceiveTimestampsOn&) = delete;

  private:
    int fd_ = -1;
};

class StampedStream {
  public:
    explicit StampedStream(uv_loop_t* loop);
    ~StampedStream();
    StampedStream(const StampedStream&) = delete;
    StampedStream& operator=(const StampedStream&) = delete;

    void set_handler(net::StreamHandler* handler) { handler_ = handler; }
    // Connects to `address`; `done(status)` runs once, on a later loop turn (0 = connected,
    // else a negative libuv error code).
    void connect(const sockaddr* address, std::function<void(int)> done);
    void start_reading();
    void stop_reading();
    // Writes what the socket takes now and queues the rest, in order.
    void write(std::string bytes);

    // When the bytes of the latest read reached the socket (uv_hrtime's clock): the
    // kernel's timestamp of the last segment in that read, so never earlier than any of
    // its bytes arrived; the time of the read itself when the kernel gave none.
    std::uint64_t last_receive_ns() const { return last_receive_ns_; }
    // Reads so far, and those that carried a kernel timestamp.
    std::uint64_t reads() const { return reads_; }
    std::uint64_t stamped_reads() const { return stamped_reads_; }

  private:
    struct Poll;
    void on_events(int status, int events);
    void finish_connect();
    void read_once();
    void flush();
    void fail(int status);
    void update_poll();

    uv_loop_t* loop_;
    Poll* poll_ = nullptr;  // owned; freed by its close callback after uv_close
    int fd_ = -1;
    bool connecting_ = false;
    bool reading_ = false;
    bool failed_ = false;
    std::deque<std::string> queue_;
    std::size_t queue_offset_ = 0;  // bytes of queue_.front() already written
    std::function<void(int)> connect_done_;
    net::Timer connect_failure_;
    net::StreamHandler* handler_ = nullptr;
    std::uint64_t last_receive_ns_ = 0;
    std::uint64_t reads_ = 0;
    std::uint64_t stamped_reads_ = 0;
};

}  // namespace portcullis::bench
