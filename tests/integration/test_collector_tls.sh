#!/usr/bin/env bash
# Integration test: syslog over TLS with mutual authentication. The operator
# comes from the client certificate (SAN or CN, mapped in the config); a client
# with no certificate, a certificate from another CA, or a certificate that maps
# to no operator is refused and counted; a certificate cannot claim another
# operator's identity. Also SIGHUP: a token added to the config works after a
# reload, and a broken config on reload keeps the running maps.
source "$(dirname "${BASH_SOURCE[0]}")/col_lib.sh"

pki=$work/pki
mkdir -p "$pki"
(
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Pasban Test CA" \
        -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Rogue CA" \
        -keyout rogue.key -out rogue.crt 2>/dev/null
    issue() { # NAME CN SAN CA
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
        printf 'subjectAltName=%s\n' "$3" >"$1.ext"
        openssl x509 -req -in "$1.csr" -CA "$4.crt" -CAkey "$4.key" -CAcreateserial -days 2 \
            -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    issue server localhost DNS:localhost,IP:127.0.0.1 ca
    issue opa "gw1" DNS:gw1.op-a.example ca              # mapped by SAN
    issue opb "collector.op-b.example" DNS:other.example ca  # mapped by CN
    issue stranger "nobody" DNS:nobody.example ca        # signed, but maps to no operator
    issue forged "gw1" DNS:gw1.op-a.example rogue        # op-a's name from another CA
)

sport=$(free_port)
hport=$(free_port)
mport=$(free_port)
metrics=127.0.0.1:$mport
write_conf() { # EXTRA_TOKEN_LINE
    cat >"$work/collector.conf" <<CONF
{
  "tls": { "cert": "$pki/server.crt", "key": "$pki/server.key", "ca": "$pki/ca.crt" },
  "operators": {
    "op-a": { "tls_names": ["gw1.op-a.example"], "tokens": ["token-a-0123456789abcdef"] },
    "op-b": { "tls_names": "collector.op-b.example" $1 }
  }
}
CONF
}
write_conf ""
start_collector main -c "$work/collector.conf" --kafka "$brokers" --topic "$topic" \
    --listen "tls://127.0.0.1:$sport" --listen "http://127.0.0.1:$hport" --metrics "$metrics"

python3 - "$sport" "$pki" >"$work/tls.out" <<'PY'
import socket, ssl, sys, time
port, pki = int(sys.argv[1]), sys.argv[2]
def client(cert):
    ctx = ssl.create_default_context(cafile=pki + "/ca.crt")
    if cert:
        ctx.load_cert_chain(pki + "/" + cert + ".crt", pki + "/" + cert + ".key")
    s = socket.create_connection(("127.0.0.1", port))
    return ctx.wrap_socket(s, server_hostname="localhost")
def send(cert, prefix, n):
    s = client(cert)
    data = b""
    for i in range(n):
        m = ("<13>Nov 23 10:00:00 gw sshd[1]: %s-%d" % (prefix, i)).encode()
        data += (b"%d %s" % (len(m), m)) if i % 2 else m + b"\n"
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(10)
    try:
        while s.recv(100):
            pass
    except (OSError, ssl.SSLError):
        pass
    s.close()
def refused(cert):
    try:
        s = client(cert)
        s.settimeout(5)
        m = b"<13>Nov 23 10:00:00 gw x: refused-" + (cert or "none").encode() + b"\n"
        s.sendall(m)
        r = s.recv(1)
        return "refused" if r == b"" else "accepted"
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError) as e:
        return "refused"
send("opa", "tlsa", 3000)
send("opb", "tlsb", 1000)
for c in (None, "stranger", "forged"):
    print(c or "none", refused(c))
PY
cat "$work/tls.out"
check "no client certificate refused" grep -q "none refused" "$work/tls.out"
check "certificate mapping to no operator refused" grep -q "stranger refused" "$work/tls.out"
check "certificate from another CA refused" grep -q "forged refused" "$work/tls.out"
check "refusals counted" test "$(metric 'pasban_collector_tls_refused_total{input="tls"}')" -ge 3

# SIGHUP: give op-b a token; an HTTP request with it works only after the reload.
hdr='Authorization: Bearer token-b-0123456789abcdef'
post() { curl -s -o /dev/null -w '%{http_code}' -XPOST -H "$hdr" --data-binary "$1" \
    "http://127.0.0.1:$hport/v1/events"; }
check "token unknown before the reload" test "$(post '{"message":"hup-0"}')" = 401
write_conf ', "tokens": ["token-b-0123456789abcdef"]'
kill -HUP "$col_pid"
sleep 0.5
check "token works after SIGHUP" test "$(post '{"message":"hup-1"}')" = 200
check "reload logged" grep -q "SIGHUP: reloaded" "$work/main.log"
echo '{ "broken": ' >"$work/collector.conf"
kill -HUP "$col_pid"
sleep 0.5
check "a broken config on reload keeps the running maps" test "$(post '{"message":"hup-2"}')" = 200
check "reload error names file and line" grep -q "collector.conf:[0-9]*:.*keeping the running" "$work/main.log"

printf 'hup-1\nhup-2\n' >"$work/hup"
consume_until 4002 "$work/topic.txt"
check "TLS events arrive once, tagged from the certificate" python3 "$here/col_send.py" check \
    "$work/topic.txt" tlsa:3000:op-a tlsb:1000:op-b "hup:@$work/hup:op-b"
check "refused clients wrote nothing" bash -c "! grep -q refused- $work/topic.txt"
stop_collector
if ((fails)); then
    echo "--- log"; tail -30 "$work/main.log"
    exit 1
fi
echo "test_collector_tls: all passed"
