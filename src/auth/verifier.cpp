#include "auth/verifier.hpp"

#include <atomic>
#include <vector>

#include "auth/password.hpp"

namespace portcullis::auth {

// One session's wait for a result. Lives from start() until libuv closed its async
// handle; `matched` is written by the pool thread before uv_async_send, everything
// else is touched on the loop thread.
struct PendingVerification::Job {
    uv_async_t async{};
    std::atomic<bool> matched{false};
    Verifier::Done done;
    PendingVerification* owner = nullptr;  // nullptr once detached

    static void free_job(uv_handle_t* handle) { delete static_cast<Job*>(handle->data); }
    void close() { uv_close(reinterpret_cast<uv_handle_t*>(&async), free_job); }
    static void on_result(uv_async_t* handle) {
        auto* job = static_cast<Job*>(handle->data);
        if (job->owner == nullptr) {
            job->close();  // detached: the session is gone
            return;
        }
        job->owner->job_ = nullptr;
        auto finish = std::move(job->done);
        const bool matched = job->matched.load();
        job->close();
        finish(matched);  // may destroy the session
    }
};

// One Argon2id run and every job waiting for it (guarded by Verifier::mutex_).
struct Verifier::Flight {
    std::string hash;
    SecureString password;
    std::vector<PendingVerification::Job*> jobs;
    bool keyed = false;
    Key key{};
};

Verifier::Verifier(unsigned threads) : pool_(threads) {}

std::unique_ptr<PendingVerification> Verifier::start(uv_loop_t* loop, std::size_t max_pending,
                                                     std::string phc_hash, SecureString password,
                                                     const Key* key, bool urgent, Done done) {
    auto* job = new PendingVerification::Job;
    job->done = std::move(done);
    job->async.data = job;
    uv_async_init(loop, &job->async, &PendingVerification::Job::on_result);
    {
        std::lock_guard lock(mutex_);
        if (key != nullptr) {
            if (auto it = flights_.find(*key); it != flights_.end()) {
                it->second->jobs.push_back(job);  // the same credentials are being checked
                password.wipe();
                auto pending = std::make_unique<PendingVerification>(job);
                job->owner = pending.get();
                return pending;
            }
        }
        auto flight = std::make_unique<Flight>();
        flight->hash = std::move(phc_hash);
        flight->password = std::move(password);
        flight->jobs.push_back(job);
        flight->keyed = key != nullptr;
        if (key != nullptr) {
            flight->key = *key;
        }
        Flight* raw = flight.get();
        // Submitted under the lock, so nobody joins a flight that never runs.
        if (!pool_.submit([this, raw] { run(raw); }, max_pending, urgent)) {
            job->close();
            return nullptr;
        }
        if (raw->keyed) {
            flights_.emplace(raw->key, raw);
        }
        flight.release();  // run() owns it now
    }
    auto pending = std::make_unique<PendingVerification>(job);
    job->owner = pending.get();
    return pending;
}

void Verifier::run(Flight* flight) {
    const std::unique_ptr<Flight> owned(flight);
    const bool matched = verify_password(flight->hash, flight->password.view());
    flight->password.wipe();
    std::vector<PendingVerification::Job*> jobs;
    {
        std::lock_guard lock(mutex_);
        if (flight->keyed) {
            flights_.erase(flight->key);
        }
        jobs.swap(flight->jobs);
    }
    for (auto* job : jobs) {
        job->matched.store(matched);
        uv_async_send(&job->async);
    }
}

// Runs on the loop thread, as does the async callback, so no lock is needed.
PendingVerification::~PendingVerification() {
    if (job_ != nullptr) {
        job_->owner = nullptr;
    }
}

}  // namespace portcullis::auth
