// An independent implementation of tapgate's signed and hashed formats, with Node's built-in
// crypto only: recomputes every output in formats.json from its inputs and exits non-zero on
// the first disagreement. Written from the format descriptions (shared/src/intent.rs,
// shared/src/gate_intent.rs, shared/src/ci.rs, shared/src/audit.rs, server/src/notify/webhook.rs),
// not from the Rust code.
import { createHash, createHmac, createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { readFileSync } from "node:fs";

const file = JSON.parse(readFileSync(process.argv[2], "utf8"));
let checked = 0;

function same(what, got, want) {
  checked += 1;
  if (got !== want) {
    console.error(`MISMATCH ${what}\n  node: ${got}\n  file: ${want}`);
    process.exit(1);
  }
}

const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
const lp = (s) => { const b = Buffer.from(s, "utf8"); return Buffer.concat([u32(b.length), b]); };
const list = (items, f) => Buffer.concat([u32(items.length), ...items.map(f)]);
const opt = (s) => (s === null || s === undefined ? Buffer.from([0]) : Buffer.concat([Buffer.from([1]), lp(s)]));
const sha256 = (...parts) => createHash("sha256").update(Buffer.concat(parts)).digest();
const b64url = (b) => Buffer.from(b).toString("base64url");

// Format v1 (publish only): package, version, integrity, requested_by.
for (const [i, v] of file.intent_v1.entries()) {
  const it = v.intent;
  const canonical = Buffer.concat([lp(it.package), lp(it.version), lp(it.integrity), lp(it.requested_by)]);
  same(`intent_v1[${i}] canonical`, canonical.toString("hex"), v.canonical_hex);
  const nonce = Buffer.from(v.nonce_hex, "hex");
  same(`intent_v1[${i}] challenge`, sha256(Buffer.from("tapgate-intent-v1"), canonical, nonce).toString("hex"), v.challenge_hex);
}

// Format v2: action, subject, requested_by, then the change's fields in declared order.
const fields = {
  "publish": (c) => [lp(c.version), lp(c.integrity), list(c.tags, lp)],
  "dist-tag-set": (c) => [lp(c.tag), lp(c.version), opt(c.previous)],
  "dist-tag-remove": (c) => [lp(c.tag), lp(c.version)],
  "deprecate": (c) => [list(c.versions, (d) => Buffer.concat([lp(d.version), lp(d.message)]))],
  "unpublish": (c) => [lp(c.version), lp(c.integrity)],
  "unpublish-package": (c) => [list(c.versions, lp)],
  "maintainer-add": (c) => [lp(c.user)],
  "maintainer-remove": (c) => [lp(c.user)],
  "policy-set": (c) => [lp(c.old), lp(c.new)],
  "key-add": (c) => [lp(c.name), lp(c.credential_id), lp(c.attestation_sha256)],
  "key-remove": (c) => [lp(c.key_id), lp(c.name), lp(c.credential_id)],
  "ci-credential-create": (c) => [lp(c.credential_id), lp(c.name), lp(c.versions), list(c.tags, lp), lp(c.expires_at), list(c.cidrs, lp)],
  "unlock": (c) => [lp(c.lock_id), lp(c.locked_at)],
  "webhook-set": (c) => [list(c.old, lp), list(c.new, lp)],
  "stage-reject": (c) => [lp(c.stage_id), lp(c.version), lp(c.integrity)],
  "trust-create": (c) => [lp(c.trust_id), lp(c.issuer), lp(c.provider), lp(c.claims), list(c.permissions, lp)],
  "trust-remove": (c) => [lp(c.trust_id), lp(c.issuer), lp(c.claims)],
};
const actions = new Set();
for (const [i, v] of file.intent_v2.entries()) {
  const it = v.intent;
  const f = fields[it.action];
  if (!f) { console.error(`unknown action ${it.action}`); process.exit(1); }
  actions.add(it.action);
  const canonical = Buffer.concat([lp(it.action), lp(it.subject), lp(it.requested_by), ...f(it)]);
  same(`intent_v2[${i}] ${it.action} canonical`, canonical.toString("hex"), v.canonical_hex);
  const nonce = Buffer.from(v.nonce_hex, "hex");
  same(`intent_v2[${i}] challenge`, sha256(Buffer.from("tapgate-intent-v2"), canonical, nonce).toString("hex"), v.challenge_hex);
  same(`intent_v2[${i}] rejection`, sha256(Buffer.from("tapgate-reject-v2"), canonical, nonce).toString("hex"), v.reject_challenge_hex);
  same(`intent_v2[${i}] digest`, sha256(canonical).toString("hex"), v.digest_hex);
}

// Ed25519 from a 32-byte seed (PKCS#8 wrapping), deterministic signatures.
function ed25519(seedHex) {
  const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(seedHex, "hex")]);
  const priv = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  const pub = createPublicKey(priv);
  return { priv, pub, raw: Buffer.from(pub.export({ format: "jwk" }).x, "base64url") };
}

// Deploy keys: tg_dk_ base64url(JSON payload) "." base64url(Ed25519 over domain || payload_b64).
for (const [i, v] of file.deploy_key.entries()) {
  const key = ed25519(v.seed_hex);
  same(`deploy_key[${i}] public key`, key.raw.toString("hex"), v.public_key_hex);
  // The payload's fields in the format's order (DeployKeyPayload), whatever order the file has.
  const order = ["v", "kid", "package", "version", "integrity", "tags", "credential_id", "approval_id", "issued_at", "expires_at", "nonce"];
  same(`deploy_key[${i}] fields`, Object.keys(v.payload).sort().join(), [...order].sort().join());
  const payload = Object.fromEntries(order.map((k) => [k, v.payload[k]]));
  const payloadB64 = b64url(Buffer.from(JSON.stringify(payload), "utf8"));
  same(`deploy_key[${i}] payload`, payloadB64, v.payload_b64);
  const input = Buffer.concat([Buffer.from("tapgate-deploy-key-v1."), Buffer.from(payloadB64)]);
  same(`deploy_key[${i}] signing input`, input.toString("hex"), v.signing_input_hex);
  const signature = sign(null, input, key.priv);
  same(`deploy_key[${i}] signature`, signature.toString("hex"), v.signature_hex);
  same(`deploy_key[${i}] verifies`, verify(null, input, key.pub, Buffer.from(v.signature_hex, "hex")), true);
  same(`deploy_key[${i}] text`, `tg_dk_${payloadB64}.${b64url(signature)}`, v.text);
}

// Audit entries: JSON with sorted keys, no spaces; hash = SHA-256("tapgate-audit-v1\n" || prev || "\n" || entry).
const sorted = (x) => Array.isArray(x) ? x.map(sorted)
  : x && typeof x === "object" ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sorted(x[k])])) : x;
const rfc3339 = (at) => new Date(at * 1000).toISOString().replace(".000Z", "Z");
let prev = "0".repeat(64);
for (const [i, e] of file.audit.entries.entries()) {
  const entry = JSON.stringify(sorted({ v: 1, chain: file.audit.chain, seq: e.seq, at: rfc3339(e.at), kind: e.kind, body: e.body }));
  same(`audit[${i}] entry text`, entry, e.entry);
  same(`audit[${i}] prev`, prev, e.prev_hash);
  const hash = sha256(Buffer.from("tapgate-audit-v1\n"), Buffer.from(prev), Buffer.from("\n"), Buffer.from(entry, "utf8")).toString("hex");
  same(`audit[${i}] hash`, hash, e.hash);
  prev = hash;
}
const head = file.audit.head;
same("audit head hash", prev, head.hash);
const message = Buffer.from(`tapgate-audit-head-v1\n${file.audit.chain}\n${head.seq}\n${head.hash}`, "utf8");
same("audit head message", message.toString("hex"), head.message_hex);
const headKey = ed25519(head.seed_hex);
same("audit head public key", headKey.raw.toString("hex"), head.public_key_hex);
same("audit head signature", sign(null, message, headKey.priv).toString("hex"), head.signature_hex);

// Webhooks: t=<ts>,v1=hex(HMAC-SHA256(secret, ts "." body)).
for (const [i, w] of file.webhook.entries()) {
  const mac = createHmac("sha256", Buffer.from(w.secret, "utf8")).update(`${w.timestamp}.`).update(Buffer.from(w.body, "utf8")).digest("hex");
  same(`webhook[${i}] header`, `t=${w.timestamp},v1=${mac}`, w.header);
}

console.log(`intent_v1 ${file.intent_v1.length} vectors`);
console.log(`intent_v2 ${actions.size} actions, ${file.intent_v2.length} vectors`);
console.log(`deploy_key ${file.deploy_key.length}, audit ${file.audit.entries.length} entries + signed head, webhook ${file.webhook.length}`);
console.log(`all vectors agree (${checked} checks)`);
