// The server's handshake signature (TLS 1.3 CertificateVerify, TLS 1.2
// ServerKeyExchange), the costliest step of a full handshake, made away from the event
// loop: BoringSSL asks our private-key method for it, the session hands it to a Signer
// and the handshake resumes when the signature is back. Messages of sessions that are
// already established never wait behind another client's handshake signature.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace portcullis::tls {

struct SignatureRequest {
    bssl::UniquePtr<EVP_PKEY> key;
    std::uint16_t algorithm = 0;  // SSL_SIGN_*, as BoringSSL chose it for the peer
    std::vector<std::uint8_t> input;
};

// Thread-safe: only reads the key. Empty when the key cannot make this signature.
std::vector<std::uint8_t> make_signature(const SignatureRequest& request);

// Where server sessions send their signatures (TlsSession::sign_with).
class Signer {
  public:
    // The signature, empty when it failed (the handshake then fails).
    using Done = std::function<void(std::vector<std::uint8_t> signature)>;
    virtual ~Signer() = default;
    // `done` runs later on the thread that called start(), never inside start().
    virtual void start(SignatureRequest request, Done done) = 0;
};

}  // namespace portcullis::tls
