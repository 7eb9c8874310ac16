#include "bench/stamped_stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string_view>
#include <utility>

namespace portcullis::bench {

namespace {

std::uint64_t to_ns(const timespec& ts) {
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t clock_ns(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return to_ns(ts);
}

// CLOCK_REALTIME (the clock of kernel receive timestamps) as CLOCK_MONOTONIC
// nanoseconds (the clock of uv_hrtime), by the two clocks' current offset.
std::uint64_t realtime_to_monotonic_ns(std::uint64_t realtime_ns) {
    const std::uint64_t now_mono = clock_ns(CLOCK_MONOTONIC);
    const std::uint64_t now_real = clock_ns(CLOCK_REALTIME);
    // Later than now (another CPU's clock read, or a clock step) is read as now.
    const std::uint64_t age = now_real > realtime_ns ? now_real - realtime_ns : 0;
    return now_mono > age ? now_mono - age : 0;
}

// One read buffer per thread, as net::TcpStream: what a read returns is handed on at
// once, so no connection keeps a buffer of its own.
thread_local std::array<char, 64 * 1024> t_read_buffer;

}  // namespace

ReceiveTimestampsOn::ReceiveTimestampsOn() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    if (fd_ >= 0) {
        const int on = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
    }
}

ReceiveTimestampsOn::~ReceiveTimestampsOn() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

struct StampedStream::Poll {
    uv_poll_t handle{};
    StampedStream* owner = nullptr;
};

StampedStream::StampedStream(uv_loop_t* loop) : loop_(loop), connect_failure_(loop) {}

StampedStream::~StampedStream() {
    if (poll_ != nullptr) {
        poll_->owner = nullptr;
        // uv_close stops the poll at once, so the descriptor can be closed after it.
        uv_close(reinterpret_cast<uv_handle_t*>(&poll_->handle),
                 [](uv_handle_t* h) { std::unique_ptr<Poll> owned(static_cast<Poll*>(h->data)); });
    }
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void StampedStream::connect(const sockaddr* address, std::function<void(int)> done) {
    connect_done_ = std::move(done);
    const socklen_t length =
        address->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    fd_ = ::socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int error = fd_ < 0 ? errno : 0;
    if (error == 0) {
        const int on = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        // Without receive timestamps every read is stamped with its own time, which
        // stamped_reads() shows; the connection works either way.
        ::setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
        if (::connect(fd_, address, length) != 0 && errno != EINPROGRESS) {
            error = errno;
        }
    }
    if (error == 0) {
        auto poll = std::make_unique<Poll>();
        poll->owner = this;
        poll->handle.data = poll.get();
        error = -uv_poll_init_socket(loop_, &poll->handle, fd_);
        if (error == 0) {
            poll_ = poll.release();
        }
    }
    if (error != 0) {
        failed_ = true;
        connect_failure_.start(0, [this, error] {
            if (auto done = std::exchange(connect_done_, nullptr)) {
                done(-error);
            }
        });
        return;
    }
    connecting_ = true;
    update_poll();
}

void StampedStream::update_poll() {
    if (poll_ == nullptr || failed_) {
        return;
    }
    int events = 0;
    if (reading_ && !connecting_) {
        events |= UV_READABLE;
    }
    if (connecting_ || !queue_.empty()) {
        events |= UV_WRITABLE;
    }
    if (events == 0) {
        uv_poll_stop(&poll_->handle);
        return;
    }
    uv_poll_start(&poll_->handle, events, [](uv_poll_t* h, int status, int ev) {
        auto* poll = static_cast<Poll*>(h->data);
        if (poll->owner != nullptr) {
            poll->owner->on_events(status, ev);
        }
    });
}

void StampedStream::on_events(int status, int events) {
    if (connecting_) {
        finish_connect();
        return;
    }
    if (status < 0) {
        fail(status);
        return;
    }
    if ((events & UV_WRITABLE) != 0) {
        flush();
    }
    if ((events & UV_READABLE) != 0 && reading_ && !failed_) {
        read_once();
    }
}

void StampedStream::finish_connect() {
    connecting_ = false;
    int error = 0;
    socklen_t length = sizeof(error);
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
        error = errno;
    }
    if (error != 0) {
        failed_ = true;
        uv_poll_stop(&poll_->handle);
    } else {
        update_poll();
    }
    if (auto done = std::exchange(connect_done_, nullptr)) {
        done(-error);
    }
}

void StampedStream::start_reading() {
    reading_ = true;
    update_poll();
}

void StampedStream::stop_reading() {
    reading_ = false;
    update_poll();
}

void StampedStream::read_once() {
    std::array<char, CMSG_SPACE(sizeof(timespec))> control{};
    iovec iov{t_read_buffer.data(), t_read_buffer.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            fail(-errno);
        }
        return;
    }
    if (n == 0) {
        fail(UV_EOF);
        return;
    }
    last_receive_ns_ = uv_hrtime();
    ++reads_;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            timespec ts{};
            std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
            const std::uint64_t stamp = realtime_to_monotonic_ns(to_ns(ts));
            // The kernel's time, unless clock noise puts it after the read itself.
            last_receive_ns_ = std::min(stamp, last_receive_ns_);
            ++stamped_reads_;
        }
    }
    if (handler_ != nullptr) {
        handler_->on_stream_data(
            std::string_view(t_read_buffer.data(), static_cast<std::size_t>(n)));
    }
}

void StampedStream::write(std::string bytes) {
    if (failed_ || bytes.empty()) {
        return;
    }
    const bool was_idle = queue_.empty();
    queue_.push_back(std::move(bytes));
    if (was_idle && !connecting_) {
        flush();  // updates the poll
    } else {
        update_poll();
    }
}

void StampedStream::flush() {
    while (!queue_.empty() && !failed_) {
        const std::string& front = queue_.front();
        const ssize_t n = ::send(fd_, front.data() + queue_offset_, front.size() - queue_offset_,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                break;
            }
            fail(-errno);
            return;
        }
        queue_offset_ += static_cast<std::size_t>(n);
        if (queue_offset_ == front.size()) {
            queue_.pop_front();
            queue_offset_ = 0;
        }
    }
    update_poll();
}

void StampedStream::fail(int status) {
    if (failed_) {
        return;
    }
    failed_ = true;
    reading_ = false;
    queue_.clear();
    queue_offset_ = 0;
    if (poll_ != nullptr) {
        uv_poll_stop(&poll_->handle);
    }
    if (handler_ != nullptr) {
        handler_->on_stream_end(status);
    }
}

}  // namespace portcullis::bench
