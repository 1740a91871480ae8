#include "CPosternTLS.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

// BoringSSL's functions as swift-nio-ssl's copy exports them (its headers are not reachable from
// another package: the types are opaque here, which is all the callback needs).
typedef struct postern_ssl_ctx SSL_CTX;
typedef struct postern_ssl SSL;
typedef struct postern_evp_cipher_ctx EVP_CIPHER_CTX;
typedef struct postern_evp_cipher EVP_CIPHER;
typedef struct postern_hmac_ctx HMAC_CTX;
typedef struct postern_evp_md EVP_MD;
typedef struct postern_engine ENGINE;

typedef int (*postern_ticket_callback)(SSL *, uint8_t *, uint8_t *, EVP_CIPHER_CTX *, HMAC_CTX *, int);
extern int CNIOBoringSSL_SSL_CTX_set_tlsext_ticket_key_cb(SSL_CTX *ctx, postern_ticket_callback callback);
extern const EVP_CIPHER *CNIOBoringSSL_EVP_aes_128_cbc(void);
extern const EVP_MD *CNIOBoringSSL_EVP_sha256(void);
extern int CNIOBoringSSL_EVP_EncryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, ENGINE *engine, const uint8_t *key,
                                            const uint8_t *iv);
extern int CNIOBoringSSL_EVP_DecryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, ENGINE *engine, const uint8_t *key,
                                            const uint8_t *iv);
extern int CNIOBoringSSL_HMAC_Init_ex(HMAC_CTX *ctx, const void *key, size_t key_length, const EVP_MD *md, ENGINE *engine);
extern uint8_t *CNIOBoringSSL_HMAC(const EVP_MD *md, const void *key, size_t key_length, const uint8_t *data, size_t data_length,
                                   uint8_t *out, unsigned int *out_length);
extern int CNIOBoringSSL_RAND_bytes(uint8_t *out, size_t length);
extern int CNIOBoringSSL_SSL_CTX_set_num_tickets(SSL_CTX *ctx, size_t num_tickets);
extern int CNIOBoringSSL_EVP_has_aes_hardware(void);
extern uint32_t CNIOBoringSSL_SSL_CTX_set_options(SSL_CTX *ctx, uint32_t options);
// ssl.h: SSL_OP_CIPHER_SERVER_PREFERENCE.
#define SSL_OP_CIPHER_SERVER_PREFERENCE 0x00400000L
extern int CNIOBoringSSL_SSL_CTX_set1_tls13_ciphers(SSL_CTX *ctx, const uint16_t *cipher_ids, const uint32_t *flags, size_t count);
typedef struct postern_ssl_cipher SSL_CIPHER;
extern const SSL_CIPHER *CNIOBoringSSL_SSL_get_current_cipher(const SSL *ssl);
extern const char *CNIOBoringSSL_SSL_CIPHER_get_name(const SSL_CIPHER *cipher);
extern int CNIOBoringSSL_SSL_CIPHER_get_bits(const SSL_CIPHER *cipher, int *out_alg_bits);

enum { SECRET_BYTES = 32, NAME_BYTES = 16, IV_BYTES = 16 };

static uint8_t secret[SECRET_BYTES];
static uint32_t period_seconds;
static atomic_int secret_state;  // 0 unset, 1 being set, 2 set
static atomic_uint_fast64_t opened;

int postern_tls_ticket_secret_set(const uint8_t *bytes, size_t length, uint32_t period) {
    if (length != SECRET_BYTES) return -1;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&secret_state, &expected, 1)) return 0;
    memcpy(secret, bytes, SECRET_BYTES);
    period_seconds = period < 60 ? 60 : period;
    atomic_store_explicit(&secret_state, 2, memory_order_release);
    return 0;
}

static int derive(uint64_t epoch, uint8_t out[48]) {
    if (atomic_load_explicit(&secret_state, memory_order_acquire) != 2) return -1;
    static const char label[] = "postern ticket key";
    uint8_t input[sizeof label - 1 + 8 + 1];
    memcpy(input, label, sizeof label - 1);
    for (int i = 0; i < 8; i++) input[sizeof label - 1 + i] = (uint8_t)(epoch >> (56 - 8 * i));
    uint8_t block[32];
    unsigned int length = 0;
    for (uint8_t n = 1; n <= 2; n++) {
        input[sizeof input - 1] = n;
        if (CNIOBoringSSL_HMAC(CNIOBoringSSL_EVP_sha256(), secret, SECRET_BYTES, input, sizeof input, block, &length) == NULL) return -1;
        memcpy(out + 32 * (n - 1), block, n == 1 ? 32 : 16);
    }
    return 0;
}

int postern_tls_ticket_key(uint64_t epoch, uint8_t out[48]) { return derive(epoch, out); }

static uint64_t current_epoch(void) { return (uint64_t)time(NULL) / period_seconds; }

/// SSL_CTX_set_tlsext_ticket_key_cb's callback: 1 sealed or opened, 2 opened with the previous
/// period's key (BoringSSL then issues a new ticket), 0 an unknown key (a full handshake), -1 an
/// error (the handshake fails).
static int ticket_callback(SSL *ssl, uint8_t *name, uint8_t *iv, EVP_CIPHER_CTX *cipher, HMAC_CTX *hmac, int encrypt) {
    (void)ssl;
    uint8_t key[48];
    uint64_t epoch = current_epoch();
    if (encrypt) {
        if (derive(epoch, key) != 0 || !CNIOBoringSSL_RAND_bytes(iv, IV_BYTES)) return -1;
        memcpy(name, key, NAME_BYTES);
        if (!CNIOBoringSSL_EVP_EncryptInit_ex(cipher, CNIOBoringSSL_EVP_aes_128_cbc(), NULL, key + 32, iv)) return -1;
        if (!CNIOBoringSSL_HMAC_Init_ex(hmac, key + 16, 16, CNIOBoringSSL_EVP_sha256(), NULL)) return -1;
        return 1;
    }
    for (uint64_t back = 0; back < 2 && back <= epoch; back++) {
        if (derive(epoch - back, key) != 0) return -1;
        if (memcmp(name, key, NAME_BYTES) != 0) continue;
        if (!CNIOBoringSSL_HMAC_Init_ex(hmac, key + 16, 16, CNIOBoringSSL_EVP_sha256(), NULL)) return -1;
        if (!CNIOBoringSSL_EVP_DecryptInit_ex(cipher, CNIOBoringSSL_EVP_aes_128_cbc(), NULL, key + 32, iv)) return -1;
        atomic_fetch_add_explicit(&opened, 1, memory_order_relaxed);
        return back == 0 ? 1 : 2;
    }
    return 0;
}

int postern_tls_ticket_keys_attach(void *ssl_ctx) {
    if (atomic_load_explicit(&secret_state, memory_order_acquire) != 2 || ssl_ctx == NULL) return -1;
    return CNIOBoringSSL_SSL_CTX_set_tlsext_ticket_key_cb((SSL_CTX *)ssl_ctx, ticket_callback) == 1 ? 0 : -1;
}

uint64_t postern_tls_tickets_opened(void) { return atomic_load_explicit(&opened, memory_order_relaxed); }

const char *postern_tls_cipher(void *ssl, int *bits, int *algorithm_bits) {
    if (ssl == NULL) return NULL;
    const SSL_CIPHER *cipher = CNIOBoringSSL_SSL_get_current_cipher((const SSL *)ssl);
    if (cipher == NULL) return NULL;
    *bits = CNIOBoringSSL_SSL_CIPHER_get_bits(cipher, algorithm_bits);
    return CNIOBoringSSL_SSL_CIPHER_get_name(cipher);
}

int postern_tls_server_defaults(void *ssl_ctx) {
    if (ssl_ctx == NULL) return -1;
    SSL_CTX *ctx = (SSL_CTX *)ssl_ctx;
    CNIOBoringSSL_SSL_CTX_set_num_tickets(ctx, 1);
    if (CNIOBoringSSL_EVP_has_aes_hardware()) {
        // TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256 (RFC 8446
        // appendix B.4), in this order, none of equal preference.
        static const uint16_t order[] = {0x1301, 0x1302, 0x1303};
        if (!CNIOBoringSSL_SSL_CTX_set1_tls13_ciphers(ctx, order, NULL, 3)) return -1;
        // TLS 1.2: the server's order (AES-128-GCM before AES-256-GCM, ChaCha20 after), not the
        // client's, so that nginx's default (TLS 1.2 to a backend before 1.23.4; OpenSSL's list,
        // ECDHE-ECDSA-AES256-GCM-SHA384 first) gets a SHA-256 PRF.
        CNIOBoringSSL_SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    }
    return 0;
}
