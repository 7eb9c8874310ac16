// One TLS connection over an in-memory transport: ciphertext in from the socket,
// plaintext out to the protocol, and the reverse. It never touches a socket itself.
// BoringSSL reads the caller's ciphertext in place and writes records straight into
// the caller's output string (a BIO of our own): no copy into and out of a memory BIO,
// whose reads move the whole unread rest to the front each time.
#pragma once

#include <openssl/ssl.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "tls/signing.hpp"

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

    // Server role, before the handshake: make the handshake signature with `signer`
    // (null = in the call that needs it). While it is away the handshake waits
    // (awaiting_signature()); `ready` runs when it is back (on the signer's thread, the
    // owner's own), and the owner then calls receive() with no new ciphertext.
    void sign_with(Signer* signer, std::function<void()> ready);
    bool awaiting_signature() const { return pending_signature_ != nullptr; }

    // Server contexts: BoringSSL asks this session's signer for handshake signatures
    // (see sign_with()); sessions without one sign with the context's key in the call.
    static void install_key_method(SSL_CTX* ctx);

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
    // The handshake resumed an earlier session (a session ticket was accepted).
    bool resumed() const;

    // Client role: keep the sessions (tickets) servers issue on connections made with
    // `ctx`, for take_issued_session(). Once per context, before its first session.
    static void keep_issued_sessions(SSL_CTX* ctx);
    // Client role, before start(): offer `session` to the server for resumption.
    void offer_session(SSL_SESSION* session);
    // Client role: the newest session the server issued on this connection (null when
    // none arrived); the caller owns it.
    bssl::UniquePtr<SSL_SESSION> take_issued_session() { return std::move(issued_); }
    std::string_view version() const;
    std::string_view cipher() const;
    const std::string& error() const { return error_; }

  private:
    class Transport;
    class OutputScope;
    Status advance(std::string& plain, std::string& to_peer);
    Status flush_pending(std::string& to_peer);
    Status fail(int ssl_result);
    // BIO callbacks: hand BoringSSL the unread ciphertext; take its records.
    int read_ciphertext(char* out, int length);
    int write_ciphertext(const char* data, int length);
    void keep_unread_input();
    static int on_new_session(SSL* ssl, SSL_SESSION* session);
    // BoringSSL's private-key method (install_key_method).
    struct PendingSignature;
    static ssl_private_key_result_t sign(SSL* ssl, std::uint8_t* out, std::size_t* out_length,
                                         std::size_t max_out, std::uint16_t algorithm,
                                         const std::uint8_t* in, std::size_t in_length);
    static ssl_private_key_result_t decrypt(SSL* ssl, std::uint8_t* out, std::size_t* out_length,
                                            std::size_t max_out, const std::uint8_t* in,
                                            std::size_t in_length);
    static ssl_private_key_result_t complete(SSL* ssl, std::uint8_t* out, std::size_t* out_length,
                                             std::size_t max_out);

    SSL* ssl_ = nullptr;
    bssl::UniquePtr<SSL_SESSION> issued_;  // client role, keep_issued_sessions()
    Signer* signer_ = nullptr;
    std::function<void()> signature_ready_;
    // The signature on its way; the signer's callback holds only a weak reference, so
    // a session closed meanwhile simply never hears of it.
    std::shared_ptr<PendingSignature> pending_signature_;
    // Ciphertext not yet read by BoringSSL: a view of the caller's buffer during
    // receive(), and whatever was left of it (normally nothing) in held_input_.
    std::string_view input_;
    std::string held_input_;
    // Where BoringSSL's records go during a call; records written outside one (none
    // are expected) wait in held_output_ for the next call.
    std::string* output_ = nullptr;
    std::string held_output_;
    bool established_ = false;
    std::string pending_plain_;
    std::string error_;
};

}  // namespace portcullis::tls
