// tls/: BoringSSL contexts and a TLS stream over an in-memory transport. No sockets here: the
// stream is plugged between a net/ connection and the protocol code.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "config/config.hpp"
#include "tls/ticket_keys.hpp"

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
// configured certificate/key pair loaded (ECDSA preferred when both kinds exist),
// session tickets sealed with `ticket_keys` (the gateway's one set, shared by every
// context it loads; a private set when null). Throws TlsError naming the file and the
// cause (missing, unreadable, not PEM, key does not match certificate).
SslCtxPtr make_server_context(const config::TlsConfig& tls,
                              std::shared_ptr<TicketKeys> ticket_keys = nullptr);

// Client context for tests and the bench tool: verification off unless a CA is given.
SslCtxPtr make_client_context(const std::string& ca_file = {});

// Client context for STARTTLS to the backend (tls = "starttls" or "starttls-verify"):
// TLS 1.2+, BoringSSL's default cipher suites (legacy MTAs rarely offer only AEAD
// suites); with "starttls-verify" the chain must verify against backend.ca_file (the
// expected name is set per connection). Throws TlsError naming the CA file.
SslCtxPtr make_backend_context(const config::BackendConfig& backend);

}  // namespace portcullis::tls
