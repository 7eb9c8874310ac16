#include "auth/verifier.hpp"

#include "auth/password.hpp"

namespace portcullis::auth {

struct PendingVerification::Job {
    uv_work_t req{};
    std::string hash;
    SecureString password;
    bool matched = false;
    Done done;
    PendingVerification* owner = nullptr;  // nullptr once detached
};

std::unique_ptr<PendingVerification> PendingVerification::start(uv_loop_t* loop,
                                                                std::string phc_hash,
                                                                SecureString password, Done done) {
    auto job = std::make_unique<Job>();
    job->hash = std::move(phc_hash);
    job->password = std::move(password);
    job->done = std::move(done);
    job->req.data = job.get();
    const int rc = uv_queue_work(
        loop, &job->req,
        [](uv_work_t* req) {
            auto* j = static_cast<Job*>(req->data);
            j->matched = verify_password(j->hash, j->password.view());
            j->password.wipe();
        },
        [](uv_work_t* req, int) {
            std::unique_ptr<Job> owned(static_cast<Job*>(req->data));
            if (owned->owner == nullptr) {
                return;  // detached: the session is gone
            }
            owned->owner->job_ = nullptr;
            auto done = std::move(owned->done);
            done(owned->matched);
        });
    if (rc != 0) {
        return nullptr;
    }
    auto pending = std::make_unique<PendingVerification>(job.get());
    job->owner = pending.get();
    job.release();  // libuv owns it until the after-work callback
    return pending;
}

// Runs on the loop thread, as does the after-work callback, so no lock is needed.
PendingVerification::~PendingVerification() {
    if (job_ != nullptr) {
        job_->owner = nullptr;
    }
}

}  // namespace portcullis::auth
