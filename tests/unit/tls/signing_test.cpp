// Handshake signatures made off the event loop: make_signature() itself, and a server
// TlsSession whose signer answers later (or never, or with a failure).
#include <catch2/catch.hpp>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "tls/context.hpp"
#include "tls/session.hpp"
#include "tls/signing.hpp"

using namespace portcullis;

namespace {

bssl::UniquePtr<EVP_PKEY> ec_key() {
    bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
    REQUIRE(EC_KEY_generate_key(ec.get()) == 1);
    bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
    REQUIRE(EVP_PKEY_assign_EC_KEY(key.get(), ec.release()) == 1);
    return key;
}

bssl::UniquePtr<EVP_PKEY> rsa_key() {
    bssl::UniquePtr<RSA> rsa(RSA_new());
    bssl::UniquePtr<BIGNUM> e(BN_new());
    REQUIRE(BN_set_word(e.get(), RSA_F4) == 1);
    REQUIRE(RSA_generate_key_ex(rsa.get(), 2048, e.get(), nullptr) == 1);
    bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
    REQUIRE(EVP_PKEY_assign_RSA(key.get(), rsa.release()) == 1);
    return key;
}

bool verifies(EVP_PKEY* key, std::uint16_t algorithm, const std::vector<std::uint8_t>& input,
              const std::vector<std::uint8_t>& signature) {
    bssl::ScopedEVP_MD_CTX context;
    EVP_PKEY_CTX* key_context = nullptr;
    if (EVP_DigestVerifyInit(context.get(), &key_context,
                             SSL_get_signature_algorithm_digest(algorithm), nullptr, key) != 1) {
        return false;
    }
    if (SSL_is_signature_algorithm_rsa_pss(algorithm)) {
        EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(key_context, -1);
    }
    return EVP_DigestVerify(context.get(), signature.data(), signature.size(), input.data(),
                            input.size()) == 1;
}

tls::SignatureRequest request_for(EVP_PKEY* key, std::uint16_t algorithm) {
    return {bssl::UpRef(key), algorithm, std::vector<std::uint8_t>(130, 0x5a)};
}

// A self-signed certificate and its key in PEM files of a fresh directory.
class CertificateFiles {
  public:
    CertificateFiles()
        : dir_(std::filesystem::temp_directory_path() /
               ("portcullis-signing-" + std::to_string(::getpid()))) {
        std::filesystem::create_directories(dir_);
        auto key = ec_key();
        bssl::UniquePtr<X509> cert(X509_new());
        REQUIRE(X509_set_version(cert.get(), X509_VERSION_3) == 1);
        ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
        X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
        X509_NAME* name = X509_get_subject_name(cert.get());
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
        REQUIRE(X509_set_issuer_name(cert.get(), name) == 1);
        REQUIRE(X509_set_pubkey(cert.get(), key.get()) == 1);
        REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);
        write(pair_.certificate = dir_ / "cert.pem",
              [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
        write(pair_.private_key = dir_ / "key.pem", [&](FILE* f) {
            return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
        });
    }
    ~CertificateFiles() { std::filesystem::remove_all(dir_); }
    config::TlsConfig tls_config() const {
        config::TlsConfig tls;
        tls.certificates = {pair_};
        return tls;
    }

  private:
    template <class Write>
    static void write(const std::filesystem::path& path, Write&& write_pem) {
        FILE* f = std::fopen(path.c_str(), "w");
        REQUIRE(f != nullptr);
        const int ok = write_pem(f);
        std::fclose(f);
        REQUIRE(ok == 1);
    }
    std::filesystem::path dir_;
    config::CertificatePair pair_;
};

// Keeps every request until the test answers it.
class DeferredSigner final : public tls::Signer {
  public:
    void start(tls::SignatureRequest request, Done done) override {
        waiting.emplace_back(std::move(request), std::move(done));
    }
    void answer_all(bool fail = false) {
        auto batch = std::move(waiting);
        waiting.clear();
        for (auto& [request, done] : batch) {
            done(fail ? std::vector<std::uint8_t>{} : tls::make_signature(request));
        }
    }
    std::vector<std::pair<tls::SignatureRequest, Done>> waiting;
};

struct Handshake {
    tls::SslCtxPtr server_ctx;
    tls::SslCtxPtr client_ctx = tls::make_client_context();
    std::unique_ptr<tls::TlsSession> server;
    tls::TlsSession client;
    std::string to_server, to_client, server_plain, client_plain;
    int ready_calls = 0;

    Handshake(const config::TlsConfig& tls, tls::Signer* signer)
        : server_ctx(tls::make_server_context(tls)),
          server(
              std::make_unique<tls::TlsSession>(server_ctx.get(), tls::TlsSession::Role::server)),
          client(client_ctx.get(), tls::TlsSession::Role::client, "localhost") {
        server->sign_with(signer, [this] { ++ready_calls; });
        REQUIRE(client.start(to_server) == tls::TlsSession::Status::ok);
    }
    // Passes what each side has for the other until neither has anything.
    tls::TlsSession::Status exchange() {
        while (!to_server.empty() || !to_client.empty()) {
            const std::string in = std::exchange(to_server, {});
            if (const auto s = server->receive(in, server_plain, to_client);
                s != tls::TlsSession::Status::ok) {
                return s;
            }
            const std::string back = std::exchange(to_client, {});
            if (const auto s = client.receive(back, client_plain, to_server);
                s != tls::TlsSession::Status::ok) {
                return s;
            }
        }
        return tls::TlsSession::Status::ok;
    }
    // The owner's part once the signature is back: go on with no new ciphertext.
    tls::TlsSession::Status resume() {
        if (const auto s = server->receive({}, server_plain, to_client);
            s != tls::TlsSession::Status::ok) {
            return s;
        }
        return exchange();
    }
};

}  // namespace

TEST_CASE("make_signature signs with ECDSA and RSA as BoringSSL asks", "[tls][signing]") {
    auto ec = ec_key();
    for (const std::uint16_t algorithm : {SSL_SIGN_ECDSA_SECP256R1_SHA256, SSL_SIGN_ECDSA_SHA1}) {
        const auto request = request_for(ec.get(), algorithm);
        const auto signature = tls::make_signature(request);
        REQUIRE_FALSE(signature.empty());
        CHECK(verifies(ec.get(), algorithm, request.input, signature));
    }
    auto rsa = rsa_key();
    for (const std::uint16_t algorithm :
         {SSL_SIGN_RSA_PSS_RSAE_SHA256, SSL_SIGN_RSA_PKCS1_SHA256}) {
        const auto request = request_for(rsa.get(), algorithm);
        const auto signature = tls::make_signature(request);
        REQUIRE(signature.size() == 256);
        CHECK(verifies(rsa.get(), algorithm, request.input, signature));
        CHECK_FALSE(
            verifies(rsa.get(), algorithm, std::vector<std::uint8_t>(130, 0x5b), signature));
    }
}

TEST_CASE("make_signature refuses a key that does not fit the algorithm", "[tls][signing]") {
    auto ec = ec_key();
    CHECK(tls::make_signature(request_for(ec.get(), SSL_SIGN_RSA_PSS_RSAE_SHA256)).empty());
    CHECK(tls::make_signature(request_for(ec.get(), SSL_SIGN_ED25519)).empty());
    CHECK(tls::make_signature({nullptr, SSL_SIGN_ECDSA_SECP256R1_SHA256, {1, 2, 3}}).empty());
}

TEST_CASE("a server handshake waits for its signer and completes when it answers",
          "[tls][signing]") {
    const CertificateFiles files;
    DeferredSigner signer;
    Handshake h(files.tls_config(), &signer);
    REQUIRE(h.exchange() == tls::TlsSession::Status::ok);
    // ClientHello in, nothing out: the server's flight needs the signature.
    REQUIRE(signer.waiting.size() == 1);
    CHECK(h.server->awaiting_signature());
    CHECK_FALSE(h.server->established());
    CHECK_FALSE(h.client.established());
    CHECK(h.to_client.empty());
    // Woken early (nothing back yet): still waiting, no second signature asked for.
    REQUIRE(h.resume() == tls::TlsSession::Status::ok);
    CHECK(signer.waiting.size() == 1);
    CHECK(h.to_client.empty());

    signer.answer_all();
    CHECK(h.ready_calls == 1);
    REQUIRE(h.resume() == tls::TlsSession::Status::ok);
    CHECK_FALSE(h.server->awaiting_signature());
    CHECK(h.server->established());
    CHECK(h.client.established());
    CHECK(signer.waiting.empty());

    REQUIRE(h.client.send("EHLO client.example\r\n", h.to_server) == tls::TlsSession::Status::ok);
    REQUIRE(h.exchange() == tls::TlsSession::Status::ok);
    CHECK(h.server_plain == "EHLO client.example\r\n");
}

TEST_CASE("a failed signature fails the handshake", "[tls][signing]") {
    const CertificateFiles files;
    DeferredSigner signer;
    Handshake h(files.tls_config(), &signer);
    REQUIRE(h.exchange() == tls::TlsSession::Status::ok);
    REQUIRE(signer.waiting.size() == 1);
    signer.answer_all(true);
    CHECK(h.resume() == tls::TlsSession::Status::failed);
    CHECK_FALSE(h.server->established());
    CHECK_FALSE(h.server->error().empty());
}

TEST_CASE("a signature that comes back after its session closed is dropped", "[tls][signing]") {
    const CertificateFiles files;
    DeferredSigner signer;
    Handshake h(files.tls_config(), &signer);
    REQUIRE(h.exchange() == tls::TlsSession::Status::ok);
    REQUIRE(signer.waiting.size() == 1);
    h.server.reset();  // the client went away mid-handshake
    signer.answer_all();
    CHECK(h.ready_calls == 0);
}

TEST_CASE("without a signer the server signs in the call", "[tls][signing]") {
    const CertificateFiles files;
    Handshake h(files.tls_config(), nullptr);
    REQUIRE(h.exchange() == tls::TlsSession::Status::ok);
    CHECK(h.server->established());
    CHECK(h.client.established());
    CHECK(h.ready_calls == 0);
}
