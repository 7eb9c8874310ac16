// tls/: BoringSSL contexts and a TLS stream over memory BIOs. No sockets here: the
// stream is plugged between a net/ connection and the protocol code.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "config/config.hpp"

namespace portcullis::tls {

class TlsError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct SslCtxDeleter {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// Server context: TLS 1.2+ (or 1.3+), AEAD suites only, no renegotiation, every
// configured certificate/key pair loaded (ECDSA preferred when both kinds exist).
// Throws TlsError naming the file and the cause (missing, unreadable, not PEM, key
// does not match certificate).
SslCtxPtr make_server_context(const config::TlsConfig& tls);

// Client context for tests and the bench tool: verification off unless a CA is given.
SslCtxPtr make_client_context(const std::string& ca_file = {});

}  // namespace portcullis::tls
