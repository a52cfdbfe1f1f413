#include "net/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cctype>
#include <memory>

#include "os/fs.h"

namespace dspool {
namespace {

constexpr size_t kFingerprintBytes = 32;
constexpr char kHex[] = "0123456789ABCDEF";

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<BIO, BioFree> ReadOnlyBio(std::string_view text) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// OpenSSL's reason for the last failure, and its queue emptied.
std::string OpenSslReason() {
  unsigned long e = ERR_peek_last_error();
  const char* reason = e != 0 ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  return reason != nullptr ? reason : "not PEM";
}

Result<std::string> Fingerprint(X509* certificate) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (X509_digest(certificate, EVP_sha256(), digest, &size) != 1 || size != kFingerprintBytes) {
    return Internal("cannot compute a certificate's SHA-256 fingerprint");
  }
  std::string out;
  for (unsigned i = 0; i < size; ++i) {
    if (i > 0) out += ':';
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

}  // namespace

Status ConfigureTlsServer(ssl_ctx_st* context, const TlsCertificate& certificate) {
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  SSL_CTX_set_options(context, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);

  auto chain = ReadOnlyBio(certificate.chain_pem);
  if (!chain) return Internal("TLS certificate chain: out of memory");
  std::unique_ptr<X509, X509Free> leaf(PEM_read_bio_X509_AUX(chain.get(), nullptr, nullptr, nullptr));
  if (!leaf || SSL_CTX_use_certificate(context, leaf.get()) != 1) {
    return InvalidArgument("TLS certificate chain: " + OpenSslReason() + " (want PEM, the server's first)");
  }
  SSL_CTX_clear_chain_certs(context);
  for (;;) {
    std::unique_ptr<X509, X509Free> next(PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr));
    if (!next) break;
    if (SSL_CTX_add0_chain_cert(context, next.get()) != 1) {
      return InvalidArgument("TLS certificate chain: " + OpenSslReason());
    }
    next.release();  // the context's now
  }
  ERR_clear_error();  // the end of the chain reads as a "no start line" error

  auto key_bio = ReadOnlyBio(certificate.key_pem);
  if (!key_bio) return Internal("TLS private key: out of memory");
  // A key under a passphrase fails here: OpenSSL's default would ask for
  // the passphrase on the terminal.
  pem_password_cb* no_passphrase = [](char*, int, int, void*) { return 0; };
  std::unique_ptr<EVP_PKEY, PkeyFree> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    return InvalidArgument("TLS private key: " + OpenSslReason() +
                           " (want a PEM key without a passphrase, the certificate's own)");
  }
  if (SSL_CTX_use_PrivateKey(context, key.get()) != 1) {
    return InvalidArgument("TLS private key: the private key does not belong to the certificate (" + OpenSslReason() +
                           ")");
  }
  return CheckKeyMatchesCertificate(context).WithPrefix("TLS private key");
}

Result<TlsCertificate> ReadTlsCertificate(const std::string& certificate_file, const std::string& key_file) {
  TlsCertificate out;
  DSP_ASSIGN_OR_RETURN(out.chain_pem, ReadFile(certificate_file));
  DSP_ASSIGN_OR_RETURN(out.key_pem, ReadPrivateFile(key_file));
  return out;
}

Result<std::string> CertificateFingerprint(std::string_view pem) {
  auto bio = ReadOnlyBio(pem);
  if (!bio) return Internal("cannot read a certificate: out of memory");
  std::unique_ptr<X509, X509Free> certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!certificate) return InvalidArgument("no PEM certificate (\"-----BEGIN CERTIFICATE-----\") found");
  return Fingerprint(certificate.get());
}

Result<std::string> PeerCertificateFingerprint(ssl_st* ssl) {
  X509* certificate = SSL_get0_peer_certificate(ssl);
  if (certificate == nullptr) return FailedPrecondition("the peer presented no certificate");
  return Fingerprint(certificate);
}

Result<std::string> ParseCertificateFingerprint(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("certificate fingerprint '" + std::string(text) + "': " + std::string(why) +
                           " (want the SHA-256 fingerprint as `openssl x509 -noout -fingerprint -sha256` prints "
                           "it, like AB:CD:...:EF)");
  };
  std::string_view rest = text;
  for (std::string_view prefix : {"sha256 fingerprint=", "sha256:"}) {
    if (rest.size() >= prefix.size()) {
      bool same = true;
      for (size_t i = 0; i < prefix.size(); ++i) {
        same = same && std::tolower(static_cast<unsigned char>(rest[i])) == prefix[i];
      }
      if (same) rest.remove_prefix(prefix.size());
    }
  }
  std::string out;
  size_t digits = 0;
  for (size_t i = 0; i < rest.size(); ++i) {
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(rest[i])));
    if (c == ':') {
      if (digits % 2 != 0 || digits == 0 || i + 1 == rest.size() || rest[i + 1] == ':') {
        return bad("':' must separate pairs of hex digits");
      }
      continue;
    }
    if (!std::isxdigit(static_cast<unsigned char>(c))) return bad("not a hex digit: '" + std::string(1, rest[i]) + "'");
    if (digits > 0 && digits % 2 == 0) out += ':';
    out += c;
    ++digits;
  }
  if (digits != 2 * kFingerprintBytes) {
    return bad("has " + std::to_string(digits) + " hex digits; a SHA-256 fingerprint has 64");
  }
  return out;
}

std::string CertificateVerifyError(ssl_st* ssl) {
  long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) return "";
  return X509_verify_cert_error_string(result);
}

Status CheckKeyMatchesCertificate(ssl_ctx_st* context) {
  if (SSL_CTX_check_private_key(context) != 1) {
    return InvalidArgument("the private key does not belong to the certificate");
  }
  return Status::Ok();
}

bool SetServerName(ssl_st* ssl, const std::string& host) {
  return SSL_set_tlsext_host_name(ssl, host.c_str()) == 1;
}

}  // namespace dspool
