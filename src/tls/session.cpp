#include "tls/session.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace portcullis::tls {
namespace {
constexpr std::size_t kMaxRecordPlaintext = 16 * 1024;  // TLS's limit per record

// Where an SSL's TlsSession is found from BoringSSL's callbacks.
int session_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}
}  // namespace

// The BIO BoringSSL reads ciphertext from and writes records to; its state is the
// TlsSession itself (BIO_get_data).
class TlsSession::Transport {
  public:
    static const BIO_METHOD* method() {
        static BIO_METHOD* const shared = make();  // one table for every session
        return shared;
    }

  private:
    static BIO_METHOD* make() {
        BIO_METHOD* m =
            BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "portcullis transport");
        BIO_meth_set_read(m, read);
        BIO_meth_set_write(m, write);
        BIO_meth_set_ctrl(m, ctrl);
        return m;
    }
    static TlsSession& session(BIO* bio) { return *static_cast<TlsSession*>(BIO_get_data(bio)); }
    static int read(BIO* bio, char* out, int length) {
        BIO_clear_retry_flags(bio);
        const int n = session(bio).read_ciphertext(out, length);
        if (n == 0) {
            BIO_set_retry_read(bio);  // nothing more yet: SSL_ERROR_WANT_READ
            return -1;
        }
        return n;
    }
    static int write(BIO* bio, const char* data, int length) {
        BIO_clear_retry_flags(bio);
        return session(bio).write_ciphertext(data, length);
    }
    static long ctrl(BIO*, int command, long, void*) {
        return command == BIO_CTRL_FLUSH ? 1 : 0;  // writes are never buffered here
    }
};

// Routes BoringSSL's records into `to_peer` for the length of one call (calls nest:
// send() runs inside receive() when the handshake completes).
class TlsSession::OutputScope {
  public:
    OutputScope(TlsSession& session, std::string& to_peer)
        : session_(session), previous_(session.output_) {
        session_.output_ = &to_peer;
        if (!session_.held_output_.empty()) {
            to_peer.append(session_.held_output_);
            session_.held_output_.clear();
        }
    }
    ~OutputScope() { session_.output_ = previous_; }
    OutputScope(const OutputScope&) = delete;
    OutputScope& operator=(const OutputScope&) = delete;

  private:
    TlsSession& session_;
    std::string* previous_;
};

TlsSession::TlsSession(SSL_CTX* ctx, Role role, const std::string& server_name)
    : ssl_(SSL_new(ctx)) {
    BIO* transport = BIO_new(Transport::method());
    BIO_set_data(transport, this);
    BIO_set_init(transport, 1);
    SSL_set_bio(ssl_, transport, transport);  // one reference, owned by ssl_
    SSL_set_ex_data(ssl_, session_index(), this);
    if (role == Role::server) {
        SSL_set_accept_state(ssl_);
    } else {
        SSL_set_connect_state(ssl_);
        if (!server_name.empty()) {
            SSL_set_tlsext_host_name(ssl_, server_name.c_str());
        }
    }
}

TlsSession::~TlsSession() {
    SSL_free(ssl_);
}

int TlsSession::read_ciphertext(char* out, int length) {
    const std::size_t n = std::min(input_.size(), static_cast<std::size_t>(length));
    if (n == 0) {
        return 0;  // also when input_ has no buffer at all (memcpy from null is UB)
    }
    std::memcpy(out, input_.data(), n);
    input_.remove_prefix(n);
    return static_cast<int>(n);
}

int TlsSession::write_ciphertext(const char* data, int length) {
    std::string& sink = output_ != nullptr ? *output_ : held_output_;
    sink.append(data, static_cast<std::size_t>(length));
    return length;
}

// BoringSSL reads until it has a whole record and returns WANT_READ only when the
// input is used up, so normally nothing is left; if something is, it is kept (copied:
// the caller's buffer is gone after the call).
void TlsSession::keep_unread_input() {
    if (input_.empty()) {
        held_input_.clear();
    } else {
        held_input_ = std::string(input_);  // input_ may point into held_input_
    }
    input_ = {};
}

TlsSession::Status TlsSession::fail(int ssl_result) {
    const int code = SSL_get_error(ssl_, ssl_result);
    if (code == SSL_ERROR_ZERO_RETURN) {
        return Status::closed;
    }
    const unsigned long err = ERR_get_error();
    ERR_clear_error();
    if (err != 0) {
        std::array<char, 256> text{};
        ERR_error_string_n(err, text.data(), text.size());
        error_ = text.data();
    } else {
        error_ = "TLS error " + std::to_string(code);
    }
    return Status::failed;
}

TlsSession::Status TlsSession::start(std::string& to_peer) {
    OutputScope scope(*this, to_peer);
    const int rc = SSL_do_handshake(ssl_);
    if (rc != 1 && SSL_get_error(ssl_, rc) != SSL_ERROR_WANT_READ) {
        return fail(rc);
    }
    established_ = rc == 1;
    return Status::ok;
}

TlsSession::Status TlsSession::advance(std::string& plain, std::string& to_peer) {
    if (!established_) {
        const int rc = SSL_do_handshake(ssl_);
        if (rc != 1) {
            const int code = SSL_get_error(ssl_, rc);
            if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE ||
                code == SSL_ERROR_WANT_PRIVATE_KEY_OPERATION) {
                return Status::ok;
            }
            return fail(rc);
        }
        established_ = true;
        if (const Status s = flush_pending(to_peer); s != Status::ok) {
            return s;
        }
    }
    for (;;) {
        // Decrypted straight into `plain`: room for what the unread ciphertext and the
        // record BoringSSL holds can yield at most (plaintext is never longer).
        const std::size_t room = std::clamp<std::size_t>(
            input_.size() + static_cast<std::size_t>(SSL_pending(ssl_)), 256, kMaxRecordPlaintext);
        const std::size_t before = plain.size();
        plain.resize(before + room);
        const int n = SSL_read(ssl_, plain.data() + before, static_cast<int>(room));
        plain.resize(before + static_cast<std::size_t>(std::max(n, 0)));
        if (n > 0) {
            continue;
        }
        const int code = SSL_get_error(ssl_, n);
        if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
            return Status::ok;
        }
        return fail(n);
    }
}

TlsSession::Status TlsSession::receive(std::string_view ciphertext, std::string& plain,
                                       std::string& to_peer) {
    OutputScope scope(*this, to_peer);
    if (held_input_.empty()) {
        input_ = ciphertext;  // read in place
    } else {
        held_input_.append(ciphertext);
        input_ = held_input_;
    }
    const Status status = advance(plain, to_peer);
    keep_unread_input();
    return status;
}

bool TlsSession::resumed() const {
    return SSL_session_reused(ssl_) == 1;
}

void TlsSession::keep_issued_sessions(SSL_CTX* ctx) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
}

// BoringSSL hands over a session it got from the server (returning 1 takes ownership).
int TlsSession::on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* self = static_cast<TlsSession*>(SSL_get_ex_data(ssl, session_index()));
    if (self == nullptr) {
        return 0;
    }
    self->issued_.reset(session);
    return 1;
}

// ---------------------------------------------------------------- signatures

struct TlsSession::PendingSignature {
    bool finished = false;
    std::vector<std::uint8_t> signature;  // empty when it failed
    std::function<void()> ready;
};

namespace {

ssl_private_key_result_t copy_signature(const std::vector<std::uint8_t>& signature,
                                        std::uint8_t* out, std::size_t* out_length,
                                        std::size_t max_out) {
    if (signature.empty() || signature.size() > max_out) {
        return ssl_private_key_failure;
    }
    std::memcpy(out, signature.data(), signature.size());
    *out_length = signature.size();
    return ssl_private_key_success;
}

}  // namespace

void TlsSession::install_key_method(SSL_CTX* ctx) {
    static const SSL_PRIVATE_KEY_METHOD method{sign, decrypt, complete};
    SSL_CTX_set_private_key_method(ctx, &method);
}

void TlsSession::sign_with(Signer* signer, std::function<void()> ready) {
    signer_ = signer;
    signature_ready_ = std::move(ready);
}

ssl_private_key_result_t TlsSession::sign(SSL* ssl, std::uint8_t* out, std::size_t* out_length,
                                          std::size_t max_out, std::uint16_t algorithm,
                                          const std::uint8_t* in, std::size_t in_length) {
    auto* self = static_cast<TlsSession*>(SSL_get_ex_data(ssl, session_index()));
    EVP_PKEY* key = SSL_get_privatekey(ssl);  // the certificate's, as select_certificate set it
    if (self == nullptr || key == nullptr) {
        return ssl_private_key_failure;
    }
    SignatureRequest request{bssl::UpRef(key), algorithm, {in, in + in_length}};
    if (self->signer_ == nullptr) {
        return copy_signature(make_signature(request), out, out_length, max_out);
    }
    auto pending = std::make_shared<PendingSignature>();
    pending->ready = self->signature_ready_;
    self->pending_signature_ = pending;
    self->signer_->start(std::move(request),
                         [weak = std::weak_ptr(pending)](std::vector<std::uint8_t> signature) {
                             const auto owner = weak.lock();
                             if (!owner) {
                                 return;  // the session is gone
                             }
                             owner->signature = std::move(signature);
                             owner->finished = true;
                             const auto ready = owner->ready;  // may destroy the session
                             ready();
                         });
    return ssl_private_key_retry;
}

// Only RSA key exchange decrypts, and no suite we offer uses it.
ssl_private_key_result_t TlsSession::decrypt(SSL*, std::uint8_t*, std::size_t*, std::size_t,
                                             const std::uint8_t*, std::size_t) {
    return ssl_private_key_failure;
}

ssl_private_key_result_t TlsSession::complete(SSL* ssl, std::uint8_t* out, std::size_t* out_length,
                                              std::size_t max_out) {
    auto* self = static_cast<TlsSession*>(SSL_get_ex_data(ssl, session_index()));
    if (self == nullptr || self->pending_signature_ == nullptr) {
        return ssl_private_key_failure;
    }
    if (!self->pending_signature_->finished) {
        return ssl_private_key_retry;
    }
    const auto pending = std::move(self->pending_signature_);
    return copy_signature(pending->signature, out, out_length, max_out);
}

void TlsSession::offer_session(SSL_SESSION* session) {
    if (session != nullptr) {
        SSL_set_session(ssl_, session);  // takes its own reference
    }
}

TlsSession::Status TlsSession::flush_pending(std::string& to_peer) {
    if (pending_plain_.empty()) {
        return Status::ok;
    }
    std::string data = std::move(pending_plain_);
    pending_plain_.clear();
    return send(data, to_peer);
}

TlsSession::Status TlsSession::send(std::string_view plain, std::string& to_peer) {
    if (!established_) {
        pending_plain_.append(plain);
        return Status::ok;
    }
    OutputScope scope(*this, to_peer);
    while (!plain.empty()) {
        const int n = SSL_write(ssl_, plain.data(), static_cast<int>(plain.size()));
        if (n <= 0) {
            return fail(n);
        }
        plain.remove_prefix(static_cast<std::size_t>(n));
    }
    return Status::ok;
}

void TlsSession::close_notify(std::string& to_peer) {
    if (established_) {
        OutputScope scope(*this, to_peer);
        SSL_shutdown(ssl_);
    }
}

bool TlsSession::expect_peer_name(const std::string& name) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1) {
        return true;
    }
    ERR_clear_error();
    SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return SSL_set1_host(ssl_, name.c_str()) == 1;
}

std::string TlsSession::verify_error() const {
    const long result = SSL_get_verify_result(ssl_);
    if (result == X509_V_OK || result == X509_V_ERR_INVALID_CALL) {  // INVALID_CALL: not run
        return {};
    }
    return X509_verify_cert_error_string(result);
}

std::string_view TlsSession::version() const {
    return SSL_get_version(ssl_);
}

std::string_view TlsSession::cipher() const {
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
    return c != nullptr ? SSL_CIPHER_get_name(c) : "";
}

}  // namespace portcullis::tls
