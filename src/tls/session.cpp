#include "tls/session.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>

namespace portcullis::tls {

TlsSession::TlsSession(SSL_CTX* ctx, Role role, const std::string& server_name)
    : ssl_(SSL_new(ctx)) {
    network_in_ = BIO_new(BIO_s_mem());
    network_out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, network_in_, network_out_);
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

void TlsSession::drain(std::string& to_peer) {
    const std::size_t pending = BIO_pending(network_out_);
    if (pending == 0) {
        return;
    }
    const std::size_t old = to_peer.size();
    to_peer.resize(old + pending);
    const int n = BIO_read(network_out_, to_peer.data() + old, static_cast<int>(pending));
    to_peer.resize(old + (n > 0 ? static_cast<std::size_t>(n) : 0));
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
    const int rc = SSL_do_handshake(ssl_);
    if (rc != 1 && SSL_get_error(ssl_, rc) != SSL_ERROR_WANT_READ) {
        const Status status = fail(rc);
        drain(to_peer);
        return status;
    }
    established_ = rc == 1;
    drain(to_peer);
    return Status::ok;
}

TlsSession::Status TlsSession::advance(std::string& plain, std::string& to_peer) {
    if (!established_) {
        const int rc = SSL_do_handshake(ssl_);
        if (rc != 1) {
            const int code = SSL_get_error(ssl_, rc);
            if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
                return Status::ok;
            }
            return fail(rc);
        }
        established_ = true;
        if (const Status s = flush_pending(to_peer); s != Status::ok) {
            return s;
        }
    }
    std::array<char, 16 * 1024> chunk;
    for (;;) {
        const int n = SSL_read(ssl_, chunk.data(), static_cast<int>(chunk.size()));
        if (n > 0) {
            plain.append(chunk.data(), static_cast<std::size_t>(n));
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
    if (!ciphertext.empty() &&
        BIO_write(network_in_, ciphertext.data(), static_cast<int>(ciphertext.size())) <= 0) {
        error_ = "cannot buffer TLS input";
        return Status::failed;
    }
    const Status status = advance(plain, to_peer);
    drain(to_peer);
    return status;
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
    while (!plain.empty()) {
        const int n = SSL_write(ssl_, plain.data(), static_cast<int>(plain.size()));
        if (n <= 0) {
            const Status status = fail(n);
            drain(to_peer);
            return status;
        }
        plain.remove_prefix(static_cast<std::size_t>(n));
        drain(to_peer);
    }
    return Status::ok;
}

void TlsSession::close_notify(std::string& to_peer) {
    if (established_) {
        SSL_shutdown(ssl_);
        drain(to_peer);
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
