#!/bin/sh
# Makes the RS256 test BLOB: a root, an intermediate and a leaf issued to mds.fidoalliance.org,
# all RSA 2048 like the real FIDO chain, and a BLOB whose x5c is [leaf, intermediate, root].
# Test data only: these keys are thrown away and certify nothing. Run from this folder.
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/ext.cnf" <<'CNF'
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
[leaf]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
subjectAltName = DNS:mds.fidoalliance.org
CNF
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/root.key" -out rs256-root.pem -days 36500 \
  -subj "/CN=tapgate RS256 test root" -addext "basicConstraints=critical,CA:true" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$work/int.key" -out "$work/int.csr" -subj "/CN=tapgate RS256 test intermediate" 2>/dev/null
openssl x509 -req -in "$work/int.csr" -CA rs256-root.pem -CAkey "$work/root.key" -CAcreateserial -CAserial "$work/root.srl" \
  -out "$work/int.pem" -days 36500 -sha256 -extfile "$work/ext.cnf" -extensions ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$work/leaf.key" -out "$work/leaf.csr" -subj "/CN=mds.fidoalliance.org" 2>/dev/null
openssl x509 -req -in "$work/leaf.csr" -CA "$work/int.pem" -CAkey "$work/int.key" -CAcreateserial -CAserial "$work/int.srl" \
  -out "$work/leaf.pem" -days 36500 -sha256 -extfile "$work/ext.cnf" -extensions leaf 2>/dev/null
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
der64() { openssl x509 -in "$1" -outform DER | base64 -w0; }
header=$(printf '{"alg":"RS256","typ":"JWT","x5c":["%s","%s","%s"]}' \
  "$(der64 "$work/leaf.pem")" "$(der64 "$work/int.pem")" "$(der64 rs256-root.pem)" | b64url)
payload=$(printf '%s' '{"legalHeader":"test","no":42,"nextUpdate":"2099-12-31","entries":[]}' | b64url)
signature=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$work/leaf.key" | b64url)
printf '%s.%s.%s\n' "$header" "$payload" "$signature" > rs256-blob.jwt
