// What TLS connections need from OpenSSL beyond a TLS stream itself (http's
// server and client use Boost.Asio's ssl::stream, the web proxy net's
// Stream): a server's certificate and its one policy, certificate
// fingerprints, why a certificate was not trusted, and the server name a
// client asks for.
//
// A fingerprint is the SHA-256 of a certificate's DER encoding, written as
// `openssl x509 -noout -fingerprint -sha256` writes it: 32 bytes as
// upper-case hex pairs joined by ':' ("AB:CD:...:EF", 95 characters). A
// client pins a server's self-signed certificate by it.
//
// OpenSSL's headers stay in tls.cc: an `ssl_st*` is OpenSSL's `SSL*`, as
// Asio's ssl::stream::native_handle() returns it.
//
// Thread safety: every function may be called concurrently, each on a
// different connection.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

struct ssl_st;
struct ssl_ctx_st;

namespace dspool {

// A TLS server's certificate, as PEM text (the caller reads the files; a
// private key through os/fs.h's ReadPrivateFile).
struct TlsCertificate {
  std::string chain_pem;  // the server's certificate, then any intermediates
  std::string key_pem;    // its private key; callers wipe it once loaded
};

// Makes `context` (OpenSSL's SSL_CTX*) a dspool server's: TLS 1.2 or later,
// no compression, no renegotiation, the server's cipher order; with
// `certificate`'s chain and key, the key checked to be the certificate's.
// Every TLS listener (the API's, the web proxy's) is set up here, so they
// share one policy. InvalidArgument starting "TLS certificate chain" or "TLS
// private key" saying what is wrong.
Status ConfigureTlsServer(ssl_ctx_st* context, const TlsCertificate& certificate);

// Reads a certificate chain file and its private key file, as the host's
// root reads them: the key with os/fs.h's ReadPrivateFile (root's, no link,
// nothing for group or others). Errors name the file and the rule. The
// caller wipes key_pem once it is loaded.
Result<TlsCertificate> ReadTlsCertificate(const std::string& certificate_file, const std::string& key_file);

// The fingerprint of the first certificate in `pem` (a PEM file's text,
// e.g. a certificate chain). InvalidArgument if it holds no certificate.
Result<std::string> CertificateFingerprint(std::string_view pem);

// The fingerprint of the certificate the peer of `ssl` presented.
// FailedPrecondition if it presented none (or the handshake has not run).
Result<std::string> PeerCertificateFingerprint(ssl_st* ssl);

// A fingerprint as a person gives it, in the form above: hex digits in
// either case, pairs joined by ':' or not joined, optionally after a
// "SHA256:" or "sha256 Fingerprint=" prefix (openssl's output, pasted).
// InvalidArgument saying what is wrong otherwise (not 32 bytes, not hex).
Result<std::string> ParseCertificateFingerprint(std::string_view text);

// Why OpenSSL did not trust the peer's certificate, in its words ("self-
// signed certificate", "certificate has expired"); empty if verification
// passed or did not run.
std::string CertificateVerifyError(ssl_st* ssl);

// Whether the private key loaded into `context` (OpenSSL's SSL_CTX*, as
// Asio's ssl::context::native_handle() returns it) belongs to its
// certificate. InvalidArgument if not: a key of another type than the
// certificate's is otherwise accepted, and every handshake would fail.
Status CheckKeyMatchesCertificate(ssl_ctx_st* context);

// Names `host` in the client's hello (SNI), so a server or proxy holding
// several certificates picks the right one. For a host name, not an
// address. REQUIRES: before the handshake. False if OpenSSL refused it.
bool SetServerName(ssl_st* ssl, const std::string& host);

}  // namespace dspool
