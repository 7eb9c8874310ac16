#include "net/stream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cstring>

namespace portcullis::net {
namespace {

// One read buffer per event-loop thread: reads are handled synchronously, so an idle
// connection holds no read buffer of its own. 32 KiB, not more: what the kernel writes
// here is decrypted and scanned right after, and it must still be in the L1 cache then.
// Measured on 1 MiB messages over TLS (docs/performance.md): 64 KiB reads cost 1.0 ms
// of CPU per MB, 56 KiB 0.8, 48 and 32 KiB 0.63, 16 KiB 0.7 (more system calls).
constexpr std::size_t kReadBufferSize = 32 * 1024;
thread_local std::array<char, kReadBufferSize> t_read_buffer;

template <class State>
void close_and_free(uv_handle_t* handle) {
    uv_close(handle,
             [](uv_handle_t* h) { std::unique_ptr<State> owned(static_cast<State*>(h->data)); });
}

}  // namespace

struct TcpStream::State {
    uv_tcp_t tcp{};
    uv_connect_t connect_req{};
    uv_shutdown_t shutdown_req{};
    TcpStream* owner = nullptr;
    std::size_t queued = 0;
};

namespace {
struct WriteRequest {
    uv_write_t req{};
    std::string bytes;
};
}  // namespace

TcpStream::TcpStream(uv_loop_t* loop) : state_(std::make_unique<State>().release()) {
    state_->owner = this;
    uv_tcp_init(loop, &state_->tcp);
    state_->tcp.data = state_;
}

TcpStream::~TcpStream() {
    state_->owner = nullptr;
    close_and_free<State>(reinterpret_cast<uv_handle_t*>(&state_->tcp));
}

bool TcpStream::accept_from(uv_stream_t* server) {
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&state_->tcp)) != 0) {
        return false;
    }
    uv_tcp_nodelay(&state_->tcp, 1);
    return true;
}

void TcpStream::connect(const sockaddr* address, std::function<void(int)> done) {
    connect_done_ = std::move(done);
    state_->connect_req.data = state_;
    const int rc = uv_tcp_connect(&state_->connect_req, &state_->tcp, address, on_connect);
    if (rc != 0) {
        // Report asynchronously-equivalent: the caller expects the callback exactly once.
        auto done_now = std::move(connect_done_);
        done_now(rc);
    }
}

void TcpStream::on_connect(uv_connect_t* req, int status) {
    auto* state = static_cast<State*>(req->data);
    if (state->owner == nullptr) {
        return;
    }
    if (status == 0) {
        uv_tcp_nodelay(&state->tcp, 1);
    }
    auto done = std::move(state->owner->connect_done_);
    if (done) {
        done(status);
    }
}

void TcpStream::start_reading() {
    if (reading_) {
        return;
    }
    const int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&state_->tcp), on_alloc, on_read);
    reading_ = rc == 0;
}

void TcpStream::stop_reading() {
    if (!reading_) {
        return;
    }
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&state_->tcp));
    reading_ = false;
}

void TcpStream::on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf) {
    buf->base = t_read_buffer.data();
    buf->len = t_read_buffer.size();
}

void TcpStream::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* state = static_cast<State*>(stream->data);
    TcpStream* self = state->owner;
    if (self == nullptr || self->handler_ == nullptr) {
        return;
    }
    if (nread > 0) {
        self->handler_->on_stream_data(
            std::string_view(buf->base, static_cast<std::size_t>(nread)));
    } else if (nread < 0) {
        self->fail(static_cast<int>(nread));
    }
}

void TcpStream::fail(int status) {
    stop_reading();
    if (handler_ != nullptr) {
        handler_->on_stream_end(status);
    }
}

void TcpStream::write(std::string bytes) {
    const std::size_t written = write_now(bytes);
    if (written == kFailed || written == bytes.size()) {
        return;
    }
    bytes.erase(0, written);
    queue(std::move(bytes));
}

void TcpStream::write(std::string_view bytes) {
    const std::size_t written = write_now(bytes);
    if (written == kFailed || written == bytes.size()) {
        return;
    }
    queue(std::string(bytes.substr(written)));  // kept only for what the socket did not take
}

// With nothing queued, writes straight away: that usually takes it all and saves the
// write request and the epoll registration a queued write costs. Returns the bytes
// written (0 when a write is queued or the socket is full), or kFailed.
std::size_t TcpStream::write_now(std::string_view bytes) {
    if (bytes.empty() || state_->queued != 0) {
        return 0;
    }
    uv_buf_t direct =
        uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
    const int written = uv_try_write(reinterpret_cast<uv_stream_t*>(&state_->tcp), &direct, 1);
    if (written >= 0) {
        return static_cast<std::size_t>(written);
    }
    if (written == UV_EAGAIN || written == UV_ENOSYS) {
        return 0;
    }
    fail(written);
    return kFailed;
}

void TcpStream::queue(std::string bytes) {
    auto request = std::make_unique<WriteRequest>();
    request->bytes = std::move(bytes);
    uv_buf_t buf = uv_buf_init(request->bytes.data(), static_cast<unsigned>(request->bytes.size()));
    request->req.data = request.get();
    const std::size_t size = request->bytes.size();
    const int rc =
        uv_write(&request->req, reinterpret_cast<uv_stream_t*>(&state_->tcp), &buf, 1, on_write);
    if (rc != 0) {
        fail(rc);
        return;
    }
    state_->queued += size;
    request.release();  // libuv owns it until on_write
}

void TcpStream::on_write(uv_write_t* req, int status) {
    std::unique_ptr<WriteRequest> request(static_cast<WriteRequest*>(req->data));
    auto* state = static_cast<State*>(req->handle->data);
    state->queued -= request->bytes.size();
    TcpStream* self = state->owner;
    if (self == nullptr) {
        return;
    }
    if (status < 0) {
        self->fail(status);
    } else if (state->queued == 0 && self->handler_ != nullptr) {
        self->handler_->on_stream_drained();
    }
}

std::size_t TcpStream::queued_bytes() const {
    return state_->queued;
}

void TcpStream::shutdown_after_writes() {
    stop_reading();
    uv_shutdown(&state_->shutdown_req, reinterpret_cast<uv_stream_t*>(&state_->tcp),
                [](uv_shutdown_t*, int) {});
}

namespace {
std::string ip_of(const sockaddr_storage& ss) {
    return sockaddr_ip(reinterpret_cast<const sockaddr*>(&ss));
}
std::uint16_t port_of(const sockaddr_storage& ss) {
    if (ss.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    }
    return 0;
}
}  // namespace

std::string TcpStream::peer_ip() const {
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&state_->tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return {};
    }
    return ip_of(ss);
}

std::uint16_t TcpStream::peer_port() const {
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&state_->tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return 0;
    }
    return port_of(ss);
}

std::string TcpStream::local_ip() const {
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&state_->tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return {};
    }
    return ip_of(ss);
}

std::uint16_t TcpStream::local_port() const {
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&state_->tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return 0;
    }
    return port_of(ss);
}

struct Timer::State {
    uv_timer_t timer{};
    std::function<void()> fire;
};

Timer::Timer(uv_loop_t* loop) : state_(std::make_unique<State>().release()) {
    uv_timer_init(loop, &state_->timer);
    state_->timer.data = state_;
}

Timer::~Timer() {
    uv_timer_stop(&state_->timer);
    close_and_free<State>(reinterpret_cast<uv_handle_t*>(&state_->timer));
}

void Timer::start(std::uint64_t timeout_ms, std::function<void()> fire) {
    state_->fire = std::move(fire);
    uv_timer_start(
        &state_->timer,
        [](uv_timer_t* t) {
            auto* state = static_cast<State*>(t->data);
            // Copy: the callback may destroy this Timer and with it `fire`.
            auto fire_copy = state->fire;
            fire_copy();
        },
        timeout_ms, 0);
}

void Timer::stop() {
    uv_timer_stop(&state_->timer);
}

bool Timer::active() const {
    return uv_is_active(reinterpret_cast<const uv_handle_t*>(&state_->timer)) != 0;
}

void Timer::keep_loop_alive(bool keep) {
    auto* handle = reinterpret_cast<uv_handle_t*>(&state_->timer);
    if (keep) {
        uv_ref(handle);
    } else {
        uv_unref(handle);
    }
}

void Deadline::arm(std::uint64_t timeout_ms, std::function<void()> fire) {
    fire_ = std::move(fire);
    deadline_ms_ = uv_now(loop_) + timeout_ms;
    armed_ = true;
    timer_.keep_loop_alive(true);
    if (!timer_.active() || due_ms_ > deadline_ms_) {
        start_timer(timeout_ms);
    }
}

void Deadline::disarm() {
    // The timer may stay due; it finds nothing armed and stops. Meanwhile it does not
    // keep the loop running (a worker's loop ends when nothing referenced is active).
    armed_ = false;
    timer_.keep_loop_alive(false);
}

void Deadline::start_timer(std::uint64_t in_ms) {
    due_ms_ = uv_now(loop_) + in_ms;
    timer_.start(in_ms, [this] { on_timer(); });
}

void Deadline::on_timer() {
    if (!armed_) {
        return;
    }
    const std::uint64_t now = uv_now(loop_);
    if (now < deadline_ms_) {
        start_timer(deadline_ms_ - now);  // armed again later since the timer started
        return;
    }
    armed_ = false;
    // Copy: the callback may destroy this Deadline and with it `fire_`.
    auto fire_copy = fire_;
    fire_copy();
}

struct LoopTurnMonitor::State {
    uv_prepare_t prepare{};
    std::function<void(std::uint64_t)> on_turn;
    std::uint64_t last_ns = 0;
    std::uint64_t last_idle_ns = 0;
};

LoopTurnMonitor::LoopTurnMonitor(uv_loop_t* loop, std::function<void(std::uint64_t)> on_turn)
    : state_(std::make_unique<State>().release()) {
    state_->on_turn = std::move(on_turn);
    uv_prepare_init(loop, &state_->prepare);
    state_->prepare.data = state_;
    // Prepare callbacks run once per turn, right before the poll: the time since the
    // last one, less what the poll slept, is what the turn's callbacks took.
    uv_prepare_start(&state_->prepare, [](uv_prepare_t* p) {
        auto* state = static_cast<State*>(p->data);
        const std::uint64_t now = uv_hrtime();
        const std::uint64_t idle = uv_metrics_idle_time(p->loop);
        if (state->last_ns != 0) {
            const std::uint64_t elapsed = now - state->last_ns;
            const std::uint64_t slept = idle - state->last_idle_ns;
            state->on_turn(elapsed > slept ? elapsed - slept : 0);
        }
        state->last_ns = now;
        state->last_idle_ns = idle;
    });
}

LoopTurnMonitor::~LoopTurnMonitor() {
    uv_prepare_stop(&state_->prepare);
    close_and_free<State>(reinterpret_cast<uv_handle_t*>(&state_->prepare));
}

bool enable_turn_metrics(uv_loop_t* loop) {
    return uv_loop_configure(loop, UV_METRICS_IDLE_TIME) == 0;
}

struct Async::State {
    uv_async_t async{};
    std::function<void()> fire;
};

Async::Async(uv_loop_t* loop, std::function<void()> fire)
    : state_(std::make_unique<State>().release()) {
    state_->fire = std::move(fire);
    uv_async_init(loop, &state_->async, [](uv_async_t* a) {
        auto* state = static_cast<State*>(a->data);
        auto fire_copy = state->fire;
        fire_copy();
    });
    state_->async.data = state_;
}

Async::~Async() {
    close_and_free<State>(reinterpret_cast<uv_handle_t*>(&state_->async));
}

void Async::notify() {
    uv_async_send(&state_->async);
}

bool make_sockaddr(const std::string& ip, std::uint16_t port, sockaddr_storage& out) {
    std::memset(&out, 0, sizeof(out));
    if (uv_ip4_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in*>(&out)) == 0) {
        return true;
    }
    return uv_ip6_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(&out)) == 0;
}

std::string sockaddr_ip(const sockaddr* address) {
    char text[INET6_ADDRSTRLEN] = {};
    if (address->sa_family == AF_INET) {
        uv_ip4_name(reinterpret_cast<const sockaddr_in*>(address), text, sizeof(text));
    } else if (address->sa_family == AF_INET6) {
        uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(address), text, sizeof(text));
    }
    return text;
}

}  // namespace portcullis::net
