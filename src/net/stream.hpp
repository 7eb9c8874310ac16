// net/: thin libuv wrappers. Each libuv handle is owned by exactly one object whose
// destructor closes it; the handle's memory is freed in libuv's close callback, after
// every pending write callback has run, so no callback ever sees freed memory.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace portcullis::net {

// Receives what happens on a TcpStream. Callbacks run on the stream's loop thread.
class StreamHandler {
  public:
    virtual ~StreamHandler() = default;
    virtual void on_stream_data(std::string_view data) = 0;
    // EOF (UV_EOF) or a read/write error; the stream is unusable afterwards.
    virtual void on_stream_end(int status) = 0;
    // The write queue fell to zero bytes after having been non-empty.
    virtual void on_stream_drained() {}
};

class TcpStream {
  public:
    explicit TcpStream(uv_loop_t* loop);
    ~TcpStream();
    TcpStream(const TcpStream&) = delete;
    TcpStream& operator=(const TcpStream&) = delete;

    // Accepts one pending connection from `server`; false when none could be taken.
    bool accept_from(uv_stream_t* server);

    // Connects to `address`; `done(status)` runs once (0 = connected).
    void connect(const sockaddr* address, std::function<void(int)> done);

    void set_handler(StreamHandler* handler) { handler_ = handler; }
    void start_reading();
    void stop_reading();
    bool reading() const { return reading_; }

    // Writes `bytes`, in order after anything queued. The string overload moves the
    // buffer in; the view overload copies only what the socket cannot take at once, so
    // a caller may pass a view of its own buffer.
    void write(std::string bytes);
    void write(std::string_view bytes);
    std::size_t queued_bytes() const;

    // Half-closes after the queued writes (used for a polite QUIT); reading stops.
    void shutdown_after_writes();

    // Peer address as text ("127.0.0.1", "::1") and port; empty/0 when unknown.
    std::string peer_ip() const;
    std::uint16_t peer_port() const;
    std::string local_ip() const;
    std::uint16_t local_port() const;

  private:
    struct State;
    static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void on_write(uv_write_t* req, int status);
    static void on_connect(uv_connect_t* req, int status);
    void fail(int status);
    static constexpr std::size_t kFailed = static_cast<std::size_t>(-1);
    std::size_t write_now(std::string_view bytes);
    void queue(std::string bytes);

    State* state_;  // owned; freed by the close callback after uv_close
    StreamHandler* handler_ = nullptr;
    bool reading_ = false;
    std::function<void(int)> connect_done_;
};

// A one-shot or repeating timer owned by one object.
class Timer {
  public:
    explicit Timer(uv_loop_t* loop);
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    void start(std::uint64_t timeout_ms, std::function<void()> fire);
    void stop();
    bool active() const;
    // false: a started timer does not by itself keep the loop running (uv_unref).
    void keep_loop_alive(bool keep);

  private:
    struct State;
    State* state_;
};

// A timeout that is pushed back far more often than it expires: an idle or reply
// timeout re-armed for every command. Arming for a later moment than the libuv timer is
// due only records the new deadline; when the timer fires early it sleeps again for the
// rest. So the common case costs no timer-heap operation (nginx's lazy timers do the
// same); `fire` still runs at the deadline of the last arm(), never before it.
class Deadline {
  public:
    explicit Deadline(uv_loop_t* loop) : loop_(loop), timer_(loop) {}
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;

    // `fire` runs once, timeout_ms after this call (loop time), unless armed again or
    // disarmed before; it replaces any earlier arm.
    void arm(std::uint64_t timeout_ms, std::function<void()> fire);
    void disarm();
    bool armed() const { return armed_; }

  private:
    void start_timer(std::uint64_t in_ms);
    void on_timer();

    uv_loop_t* loop_;
    Timer timer_;
    std::function<void()> fire_;
    std::uint64_t deadline_ms_ = 0;  // loop time at which `fire_` is due
    std::uint64_t due_ms_ = 0;       // loop time at which timer_ fires
    bool armed_ = false;
};

// Cross-thread wake-up: `fire` runs on the loop thread after notify() from any thread.
class Async {
  public:
    Async(uv_loop_t* loop, std::function<void()> fire);
    ~Async();
    Async(const Async&) = delete;
    Async& operator=(const Async&) = delete;
    void notify();

  private:
    struct State;
    State* state_;
};

// Measures how long each turn of a loop keeps it busy: the time between two polls
// minus the time the poll slept, i.e. every callback of one turn together. A long turn
// delays everything else on the loop, so this is the number behind a latency tail.
// The loop must be configured with UV_METRICS_IDLE_TIME before it first runs
// (enable_turn_metrics); `on_turn` runs on the loop thread once per turn.
class LoopTurnMonitor {
  public:
    LoopTurnMonitor(uv_loop_t* loop, std::function<void(std::uint64_t busy_ns)> on_turn);
    ~LoopTurnMonitor();
    LoopTurnMonitor(const LoopTurnMonitor&) = delete;
    LoopTurnMonitor& operator=(const LoopTurnMonitor&) = delete;

  private:
    struct State;
    State* state_;
};

// Turns on libuv's idle-time accounting for `loop`; false if libuv refused.
bool enable_turn_metrics(uv_loop_t* loop);

// Parses "1.2.3.4" / "::1" plus a port into a sockaddr_storage; false if not numeric.
bool make_sockaddr(const std::string& ip, std::uint16_t port, sockaddr_storage& out);
std::string sockaddr_ip(const sockaddr* address);

}  // namespace portcullis::net
