#include "tls/context.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "tls/session.hpp"

namespace portcullis::tls {
namespace {

// TLS 1.2 suites: ECDHE + AEAD only. TLS 1.3 suites are all AEAD in BoringSSL.
constexpr const char* kCipherList =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

struct X509Deleter {
    void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct ChainDeleter {
    void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
struct BioDeleter {
    void operator()(BIO* b) const { BIO_free(b); }
};

struct LoadedPair {
    std::unique_ptr<X509, X509Deleter> leaf;
    std::unique_ptr<STACK_OF(X509), ChainDeleter> chain;
    std::unique_ptr<EVP_PKEY, PkeyDeleter> key;
    bool ecdsa = false;
};

struct CertificateStore {
    std::vector<LoadedPair> pairs;  // preferred (ECDSA) first
};

std::string last_ssl_error() {
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) {
        return "unknown error";
    }
    char text[256];
    ERR_error_string_n(code, text, sizeof(text));
    return text;
}

std::unique_ptr<BIO, BioDeleter> open_file(const std::filesystem::path& path,
                                           std::string_view what) {
    std::FILE* probe = std::fopen(path.c_str(), "rb");
    if (probe == nullptr) {
        throw TlsError(
            fmt::format("{}: cannot open {}: {}", path.string(), what, std::strerror(errno)));
    }
    std::fclose(probe);
    std::unique_ptr<BIO, BioDeleter> bio(BIO_new_file(path.c_str(), "rb"));
    if (!bio) {
        throw TlsError(
            fmt::format("{}: cannot open {}: {}", path.string(), what, last_ssl_error()));
    }
    return bio;
}

LoadedPair load_pair(const config::CertificatePair& pair) {
    LoadedPair loaded;
    auto cert_bio = open_file(pair.certificate, "certificate");
    loaded.leaf.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
    if (!loaded.leaf) {
        throw TlsError(fmt::format("{}: no PEM certificate found ({})", pair.certificate.string(),
                                   last_ssl_error()));
    }
    loaded.chain.reset(sk_X509_new_null());
    while (X509* extra = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr)) {
        sk_X509_push(loaded.chain.get(), extra);
    }
    ERR_clear_error();  // the loop ends with a "no start line" error by design

    auto key_bio = open_file(pair.private_key, "private key");
    loaded.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
    if (!loaded.key) {
        throw TlsError(fmt::format("{}: no PEM private key found ({})", pair.private_key.string(),
                                   last_ssl_error()));
    }
    if (X509_check_private_key(loaded.leaf.get(), loaded.key.get()) != 1) {
        ERR_clear_error();
        throw TlsError(fmt::format("{}: private key does not match certificate {}",
                                   pair.private_key.string(), pair.certificate.string()));
    }
    const int type = EVP_PKEY_id(loaded.key.get());
    if (type != EVP_PKEY_EC && type != EVP_PKEY_RSA) {
        throw TlsError(
            fmt::format("{}: only ECDSA and RSA keys are supported", pair.private_key.string()));
    }
    loaded.ecdsa = type == EVP_PKEY_EC;
    return loaded;
}

void store_free(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    std::unique_ptr<CertificateStore> owned(static_cast<CertificateStore*>(ptr));
}

int store_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, store_free);
    return index;
}

// The session-ticket keys of a context (a shared_ptr: the keys outlive any snapshot).
using SharedTicketKeys = std::shared_ptr<TicketKeys>;

void ticket_keys_free(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    std::unique_ptr<SharedTicketKeys> owned(static_cast<SharedTicketKeys*>(ptr));
}

int ticket_keys_index() {
    static const int index =
        SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, ticket_keys_free);
    return index;
}

// BoringSSL's ticket callback: 1 = sealed or opened, 2 = opened with the previous key
// (a new ticket follows), 0 = unknown or expired key (a full handshake), -1 = error.
int ticket_key_callback(SSL* ssl, std::uint8_t* key_name, std::uint8_t* iv, EVP_CIPHER_CTX* cipher,
                        HMAC_CTX* hmac, int encrypt) {
    auto* keys = static_cast<SharedTicketKeys*>(
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_keys_index()));
    if (keys == nullptr || !*keys) {
        return encrypt ? -1 : 0;
    }
    TicketKey key;
    int result = 1;
    if (encrypt) {
        key = (*keys)->sealing_key();
        std::copy(key.name.begin(), key.name.end(), key_name);
        if (RAND_bytes(iv, EVP_CIPHER_iv_length(EVP_aes_128_cbc())) != 1) {
            return -1;
        }
    } else {
        const auto found = (*keys)->opening_key({key_name, SSL_TICKET_KEY_NAME_LEN});
        if (!found) {
            return 0;
        }
        key = found->key;
        result = found->renew ? 2 : 1;
    }
    if (HMAC_Init_ex(hmac, key.hmac_key.data(), key.hmac_key.size(), EVP_sha256(), nullptr) != 1 ||
        EVP_CipherInit_ex(cipher, EVP_aes_128_cbc(), nullptr, key.aes_key.data(), iv, encrypt) !=
            1) {
        return -1;
    }
    return result;
}

// Tickets sealed with keys shared by all workers and kept across reloads; a ticket is
// accepted for one rotation interval (BoringSSL also checks the session's age).
void configure_session_tickets(SSL_CTX* ctx, const config::TlsConfig& tls,
                               std::shared_ptr<TicketKeys> keys) {
    if (!tls.session_tickets) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        return;
    }
    const auto rotation = std::chrono::duration_cast<std::chrono::seconds>(tls.ticket_key_rotation);
    if (!keys) {  // check-config: nothing is served, the keys only need to exist
        keys = std::make_shared<TicketKeys>(util::steady_clock(), tls.ticket_key_rotation);
    }
    SSL_CTX_set_timeout(ctx, static_cast<std::uint32_t>(rotation.count()));
    SSL_CTX_set_session_psk_dhe_timeout(ctx, static_cast<std::uint32_t>(rotation.count()));
    SSL_CTX_set_ex_data(ctx, ticket_keys_index(),
                        std::make_unique<SharedTicketKeys>(std::move(keys)).release());
    SSL_CTX_set_tlsext_ticket_key_cb(ctx, ticket_key_callback);
}

bool install_pair(SSL* ssl, const LoadedPair& pair) {
    return SSL_use_certificate(ssl, pair.leaf.get()) == 1 &&
           SSL_use_PrivateKey(ssl, pair.key.get()) == 1 &&
           SSL_set1_chain(ssl, pair.chain.get()) == 1;
}

bool client_accepts_ecdsa(const SSL_CLIENT_HELLO* hello) {
    const uint8_t* data = nullptr;
    size_t len = 0;
    if (SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_signature_algorithms, &data,
                                             &len) != 1 ||
        len < 2) {
        return false;  // no sigalgs: a TLS 1.2 client that assumes RSA/SHA-1
    }
    bool ecdsa_sigalg = false;
    for (size_t i = 2; i + 1 < len; i += 2) {
        if (data[i + 1] == 0x03) {  // {hash, ecdsa}: 0x0403, 0x0503, 0x0603, 0x0203
            ecdsa_sigalg = true;
        }
    }
    if (!ecdsa_sigalg) {
        return false;
    }
    if (SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_supported_versions, &data, &len) ==
        1) {
        return true;  // offers TLS 1.3, whose suites work with any certificate type
    }
    for (size_t i = 0; i + 1 < hello->cipher_suites_len; i += 2) {
        const unsigned suite = (hello->cipher_suites[i] << 8) | hello->cipher_suites[i + 1];
        if (suite == 0xC02B || suite == 0xC02C || suite == 0xCCA9) {
            return true;
        }
    }
    return false;
}

// Picks the certificate for each handshake: ECDSA when the client can use it, else RSA.
ssl_select_cert_result_t select_certificate(const SSL_CLIENT_HELLO* hello) {
    SSL_CTX* ctx = SSL_get_SSL_CTX(hello->ssl);
    const auto* store =
        static_cast<const CertificateStore*>(SSL_CTX_get_ex_data(ctx, store_index()));
    if (store == nullptr || store->pairs.size() < 2) {
        return ssl_select_cert_success;
    }
    const bool want_ecdsa = client_accepts_ecdsa(hello);
    for (const auto& pair : store->pairs) {
        if (pair.ecdsa == want_ecdsa) {
            return install_pair(hello->ssl, pair) ? ssl_select_cert_success : ssl_select_cert_error;
        }
    }
    return ssl_select_cert_success;  // the context's default pair stays
}

void apply_common_settings(SSL_CTX* ctx, config::TlsVersion min_version) {
    SSL_CTX_set_min_proto_version(
        ctx, min_version == config::TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    if (SSL_CTX_set_strict_cipher_list(ctx, kCipherList) != 1) {
        throw TlsError("cannot set cipher list: " + last_ssl_error());
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
}

}  // namespace

SslCtxPtr make_server_context(const config::TlsConfig& tls, std::shared_ptr<TicketKeys> keys) {
    if (tls.certificates.empty()) {
        throw TlsError("[tls]: no certificate configured");
    }
    auto store = std::make_unique<CertificateStore>();
    for (const auto& pair : tls.certificates) {
        store->pairs.push_back(load_pair(pair));
    }
    std::stable_partition(store->pairs.begin(), store->pairs.end(),
                          [](const LoadedPair& p) { return p.ecdsa; });

    SslCtxPtr ctx(SSL_CTX_new(TLS_method()));
    if (!ctx) {
        throw TlsError("cannot create TLS context: " + last_ssl_error());
    }
    apply_common_settings(ctx.get(), tls.min_version);
    const LoadedPair& preferred = store->pairs.front();
    if (SSL_CTX_use_certificate(ctx.get(), preferred.leaf.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx.get(), preferred.key.get()) != 1 ||
        SSL_CTX_set1_chain(ctx.get(), preferred.chain.get()) != 1) {
        throw TlsError(fmt::format("{}: cannot use certificate: {}",
                                   tls.certificates.front().certificate.string(),
                                   last_ssl_error()));
    }
    SSL_CTX_set_select_certificate_cb(ctx.get(), select_certificate);
    TlsSession::install_key_method(ctx.get());  // signatures may be made off the loop
    SSL_CTX_set_ex_data(ctx.get(), store_index(), store.release());
    configure_session_tickets(ctx.get(), tls, std::move(keys));
    return ctx;
}

SslCtxPtr make_client_context(const std::string& ca_file) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_method()));
    if (!ctx) {
        throw TlsError("cannot create TLS context: " + last_ssl_error());
    }
    apply_common_settings(ctx.get(), config::TlsVersion::tls1_2);
    if (!ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
            throw TlsError(fmt::format("{}: cannot load CA file: {}", ca_file, last_ssl_error()));
        }
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    }
    return ctx;
}

SslCtxPtr make_backend_context(const config::BackendConfig& backend) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_method()));
    if (!ctx) {
        throw TlsError("cannot create TLS context: " + last_ssl_error());
    }
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION);
    if (backend.tls == config::BackendTls::starttls_verify) {
        const std::string ca = backend.ca_file.string();
        std::FILE* probe = std::fopen(ca.c_str(), "rb");
        if (probe == nullptr) {
            throw TlsError(
                fmt::format("{}: cannot open backend CA file: {}", ca, std::strerror(errno)));
        }
        std::fclose(probe);
        if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1) {
            throw TlsError(
                fmt::format("{}: cannot load backend CA file: {}", ca, last_ssl_error()));
        }
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    } else {
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    }
    return ctx;
}

}  // namespace portcullis::tls
