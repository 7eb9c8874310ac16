// One TLS connection over memory BIOs: ciphertext in from the socket, plaintext out to
// the protocol, and the reverse. It never touches a socket itself.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

namespace portcullis::tls {

class TlsSession {
  public:
    enum class Role { server, client };
    enum class Status {
        ok,      // keep going
        closed,  // the peer sent close_notify
        failed,  // handshake or record error; see error()
    };

    TlsSession(SSL_CTX* ctx, Role role, const std::string& server_name = {});
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    // Ciphertext from the peer. Decrypted application data is appended to `plain`;
    // bytes that must go to the peer (handshake, alerts) are appended to `to_peer`.
    Status receive(std::string_view ciphertext, std::string& plain, std::string& to_peer);

    // Encrypts application data. Before the handshake is done the data is held and
    // sent once it completes.
    Status send(std::string_view plain, std::string& to_peer);

    // Starts a client handshake (ClientHello into `to_peer`).
    Status start(std::string& to_peer);

    void close_notify(std::string& to_peer);

    // Client role, before start(): the peer's certificate must name `name` (a DNS name,
    // or an IP address matched against the certificate's IP entries). Only enforced
    // when the context verifies peers. False when the name cannot be set.
    bool expect_peer_name(const std::string& name);
    // Why certificate verification failed ("" when it did not fail or did not run).
    std::string verify_error() const;

    bool established() const { return established_; }
    std::string_view version() const;
    std::string_view cipher() const;
    const std::string& error() const { return error_; }

  private:
    Status advance(std::string& plain, std::string& to_peer);
    Status flush_pending(std::string& to_peer);
    void drain(std::string& to_peer);
    Status fail(int ssl_result);

    SSL* ssl_ = nullptr;
    BIO* network_in_ = nullptr;   // owned by ssl_
    BIO* network_out_ = nullptr;  // owned by ssl_
    bool established_ = false;
    std::string pending_plain_;
    std::string error_;
};

}  // namespace portcullis::tls
