// A key pair and a self-signed certificate for "localhost", made in memory at run time, so
// that the TLS examples and tests need no key on disk. Not for production use.
#ifndef SLUICE_EXAMPLE_SELF_SIGNED_HPP
#define SLUICE_EXAMPLE_SELF_SIGNED_HPP

#include <boost/asio/ssl/context.hpp>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <stdexcept>

namespace sluice_example {

class self_signed {
public:
  self_signed() : key_(EVP_EC_gen("P-256")), cert_(X509_new()) {
    X509* x = cert_.get();
    bool ok = key_ && x && X509_set_version(x, 2) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) != nullptr &&
              X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600) != nullptr &&
              X509_set_pubkey(x, key_.get()) == 1;
    X509_NAME* name = ok ? X509_get_subject_name(x) : nullptr;
    ok = ok &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                                    0) == 1 &&
         X509_set_issuer_name(x, name) == 1 && X509_sign(x, key_.get(), EVP_sha256()) > 0;
    if (!ok)
      throw std::runtime_error("self_signed: making the certificate failed");
  }

  /// A server context presenting the certificate.
  boost::asio::ssl::context server_context() const {
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_server);
    if (SSL_CTX_use_certificate(ctx.native_handle(), cert_.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx.native_handle(), key_.get()) != 1)
      throw std::runtime_error("self_signed: loading the identity failed");
    return ctx;
  }

  /// A client context that trusts the certificate, and checks it.
  boost::asio::ssl::context client_context() const {
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_client);
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.native_handle()), cert_.get()) != 1)
      throw std::runtime_error("self_signed: trusting the certificate failed");
    ctx.set_verify_mode(boost::asio::ssl::verify_peer);
    return ctx;
  }

private:
  struct free_key {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  };
  struct free_cert {
    void operator()(X509* p) const { X509_free(p); }
  };
  std::unique_ptr<EVP_PKEY, free_key> key_;
  std::unique_ptr<X509, free_cert> cert_;
};

} // namespace sluice_example

#endif
