#include "tls/signing.hpp"

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>

namespace portcullis::tls {

std::vector<std::uint8_t> make_signature(const SignatureRequest& request) {
    const EVP_MD* digest = SSL_get_signature_algorithm_digest(request.algorithm);
    if (request.key == nullptr || digest == nullptr ||
        SSL_get_signature_algorithm_key_type(request.algorithm) != EVP_PKEY_id(request.key.get())) {
        return {};
    }
    bssl::ScopedEVP_MD_CTX context;
    EVP_PKEY_CTX* key_context = nullptr;
    if (EVP_DigestSignInit(context.get(), &key_context, digest, nullptr, request.key.get()) != 1) {
        ERR_clear_error();
        return {};
    }
    if (SSL_is_signature_algorithm_rsa_pss(request.algorithm) &&
        (EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(key_context, -1) != 1)) {  // -1: the digest's length
        ERR_clear_error();
        return {};
    }
    std::size_t length = 0;
    if (EVP_DigestSign(context.get(), nullptr, &length, request.input.data(),
                       request.input.size()) != 1) {
        ERR_clear_error();
        return {};
    }
    std::vector<std::uint8_t> signature(length);
    if (EVP_DigestSign(context.get(), signature.data(), &length, request.input.data(),
                       request.input.size()) != 1) {
        ERR_clear_error();
        return {};
    }
    signature.resize(length);
    return signature;
}

}  // namespace portcullis::tls
