#ifndef CPOSTERN_TLS_H
#define CPOSTERN_TLS_H

#include <stddef.h>
#include <stdint.h>

/// Session tickets sealed with keys every process of a server derives from one secret, so that a
/// session one worker issued resumes on any other (RFC 5077 §4, RFC 8446 §4.6.1), and keys that
/// rotate (BoringSSL rotates the key it makes for itself every two days; one set by hand never).
///
/// The keys come from the secret and the clock's period: key(e) = HMAC-SHA256(secret,
/// "postern ticket key" || e || n) for n = 1, 2, where e = time / period. The first 16 bytes name
/// the key in the ticket (sent in the clear: an HMAC output says nothing of the secret), the next
/// 16 are the ticket's HMAC-SHA256 key, the next 16 its AES-128-CBC key. A ticket is sealed with
/// the current period's key and opened with the current or the previous one (then renewed), so
/// it lives one to two periods. Every process on the host reads the same clock, so workers agree
/// without talking.
///
/// BoringSSL is swift-nio-ssl's, reached by its prefixed symbols (CNIOBoringSSL_…): swift-nio-ssl
/// offers no API for ticket keys.

/// The process's secret (32 bytes) and period (seconds, at least 60). Call it once, before the
/// first context is given the callback; later calls are ignored. 0, or -1 if `length` is not 32.
int postern_tls_ticket_secret_set(const uint8_t *secret, size_t length, uint32_t period);

/// Seals and opens `ssl_ctx`'s session tickets with the derived keys (SSL_CTX_set_tlsext_ticket_key_cb).
/// `ssl_ctx` is a BoringSSL SSL_CTX. 0, or -1 when no secret is set.
int postern_tls_ticket_keys_attach(void *ssl_ctx);

/// A server context's settings where BoringSSL's defaults cost a front-end's backend (every suwsgi
/// request is a new connection, so a handshake's cost is a request's):
/// - one session ticket after a TLS 1.3 handshake, not two (SSL_CTX_set_num_tickets): a
///   front-end keeps one session per backend (nginx the newest), and the second cost a sealing
///   and a record on every connection;
/// - with AES instructions, TLS 1.3's TLS_AES_128_GCM_SHA256 first (SSL_CTX_set1_tls13_ciphers),
///   where BoringSSL follows the client, and OpenSSL clients (nginx) ask for AES-256 with
///   SHA-384 first: SHA-384 has no instructions on x86-64 and BoringSSL's vector code for it
///   runs on Intel only, so on AMD each handshake's key schedule took the plain C code. All three
///   TLS 1.3 suites stay offered;
/// - with AES instructions, the server's TLS 1.2 order (SSL_OP_CIPHER_SERVER_PREFERENCE: swift-nio-ssl's
///   list puts AES-128-GCM first), for the same reason: nginx before 1.23.4 speaks TLS 1.2 to a
///   backend and asks for ECDHE-ECDSA-AES256-GCM-SHA384, whose PRF is SHA-384.
/// 0, or -1 if BoringSSL refused.
int postern_tls_server_defaults(void *ssl_ctx);

/// The 48 bytes of key material (name, HMAC key, AES key) for period `epoch`: for tests. 0, or -1
/// when no secret is set.
int postern_tls_ticket_key(uint64_t epoch, uint8_t out[48]);

/// How many tickets this process has opened with one of the derived keys: sessions resumed (an
/// unknown or expired key makes a full handshake instead).
uint64_t postern_tls_tickets_opened(void);

/// The cipher suite a connection's handshake settled on, by OpenSSL's name (mod_ssl's
/// `SSL_CIPHER`: `ECDHE-ECDSA-AES256-GCM-SHA384`, `TLS_AES_256_GCM_SHA384`), with its secret bits
/// and its algorithm's (`SSL_CIPHER_USEKEYSIZE`, `SSL_CIPHER_ALGKEYSIZE`). `ssl` is a BoringSSL
/// SSL; NULL before the handshake is done.
const char *postern_tls_cipher(void *ssl, int *bits, int *algorithm_bits);

#endif
