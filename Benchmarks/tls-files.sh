# Sourced by the TLS benchmarks: `tls_files` makes, in the current directory, a CA (ca.pem),
# a server certificate for localhost and 127.0.0.1 (server.pem, server.key) and, with `client`,
# a client certificate (client.pem, client.key), all ECDSA P-256, valid two days.
tls_key() { openssl req "$@" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc 2>/dev/null; }
tls_files() {
  tls_key -x509 -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench CA"
  tls_key -keyout server.key -out server.csr -subj "/CN=localhost"
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null
  if [ "${1:-}" = client ]; then
    tls_key -keyout client.key -out client.csr -subj "/CN=nginx"
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext 2>/dev/null
  fi
  chmod 644 ./*.key
}
