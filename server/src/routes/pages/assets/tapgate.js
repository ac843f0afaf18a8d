// Shared helpers for tapgate's pages: base64url, the JSON API, and WebAuthn conversions.
'use strict';

const tg = {};

tg.b64u = {
  encode(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = '';
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  },
  decode(text) {
    const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const raw = atob(padded);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  },
};

// Calls the JSON API; throws an Error carrying the server's code and message.
tg.api = async function (method, path, body, bearer, extraHeaders) {
  const headers = Object.assign({ accept: 'application/json' }, extraHeaders || {});
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (bearer) headers.authorization = 'Bearer ' + bearer;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw Object.assign(new Error('Cannot reach the registry. Check your connection and try again.'), { code: 'network' });
  }
  if (resp.status === 204) return null;
  let data = null;
  try { data = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) {
    const err = data && data.error ? data.error : { code: 'http_' + resp.status, message: 'The registry answered ' + resp.status + '.' };
    throw Object.assign(new Error(err.message), { code: err.code, status: resp.status, body: data });
  }
  return data;
};

// Removes null members: browsers reject null where WebAuthn expects a sequence or dictionary.
function stripNulls(value) {
  if (Array.isArray(value)) return value.map(stripNulls);
  if (value && typeof value === 'object' && !(value instanceof ArrayBuffer)) {
    const out = {};
    for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) out[k] = stripNulls(v);
    return out;
  }
  return value;
}

tg.creationOptions = function (publicKey) {
  const o = stripNulls(publicKey);
  o.challenge = tg.b64u.decode(o.challenge);
  o.user = Object.assign({}, o.user, { id: tg.b64u.decode(o.user.id) });
  o.excludeCredentials = (o.excludeCredentials || []).map((c) => Object.assign({}, c, { id: tg.b64u.decode(c.id) }));
  return o;
};

tg.requestOptions = function (publicKey) {
  const o = stripNulls(publicKey);
  o.challenge = tg.b64u.decode(o.challenge);
  o.allowCredentials = (o.allowCredentials || []).map((c) => Object.assign({}, c, { id: tg.b64u.decode(c.id) }));
  return o;
};

tg.registrationJSON = function (cred) {
  const r = cred.response;
  return {
    id: cred.id,
    rawId: tg.b64u.encode(cred.rawId),
    type: cred.type,
    response: {
      attestationObject: tg.b64u.encode(r.attestationObject),
      clientDataJSON: tg.b64u.encode(r.clientDataJSON),
      transports: typeof r.getTransports === 'function' ? r.getTransports() : undefined,
    },
    extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
  };
};

tg.assertionJSON = function (cred) {
  const r = cred.response;
  return {
    id: cred.id,
    rawId: tg.b64u.encode(cred.rawId),
    type: cred.type,
    response: {
      authenticatorData: tg.b64u.encode(r.authenticatorData),
      clientDataJSON: tg.b64u.encode(r.clientDataJSON),
      signature: tg.b64u.encode(r.signature),
      userHandle: r.userHandle ? tg.b64u.encode(r.userHandle) : null,
    },
    extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
  };
};

// Turns browser WebAuthn errors into sentences saying what to do.
tg.explain = function (e) {
  if (!e) return 'Something went wrong.';
  switch (e.name) {
    case 'NotAllowedError':
      return 'The security key request was cancelled or timed out. Click the button again and touch your key when it blinks.';
    case 'InvalidStateError':
      return 'This security key is already enrolled for your account. Use a different key.';
    case 'SecurityError':
      return 'This page is not being served from the registry\'s configured address, so the browser refused to use your key. Open the registry at its public URL.';
    case 'NotSupportedError':
      return 'This browser or key does not support the requested security key operation.';
    case 'AbortError':
      return 'The security key request was interrupted. Try again.';
  }
  if (e.code === 'ceremony_expired') return e.message + ' Click the button to try again.';
  return e.message || String(e);
};

tg.status = function (state, text) {
  const el = document.getElementById('status');
  el.dataset.state = state;
  el.textContent = text;
};

tg.session = {
  get() { return sessionStorage.getItem('tapgate-token'); },
  set(token, username) { sessionStorage.setItem('tapgate-token', token); sessionStorage.setItem('tapgate-user', username); },
  user() { return sessionStorage.getItem('tapgate-user'); },
  clear() { sessionStorage.removeItem('tapgate-token'); sessionStorage.removeItem('tapgate-user'); },
};

// Approves a pending change with a tap; returns the ticket. `onChange` is told what is approved.
tg.approve = async function (approval, onChange) {
  if (onChange) onChange(approval.description);
  const cred = await navigator.credentials.get({ publicKey: tg.requestOptions(approval.publicKey) });
  const result = await tg.api('POST', '/api/v1/approvals/' + encodeURIComponent(approval.id), { credential: tg.assertionJSON(cred) });
  if (!result || !result.ticket) {
    throw Object.assign(new Error('Your tap is recorded; ' + (result.required - result.approvals) + ' more maintainer(s) must approve.'), { code: 'pending' });
  }
  return result.ticket;
};

// A write through the gate: when the registry asks for a security-key approval, show what is
// approved, tap, and repeat the request with the ticket.
tg.gated = async function (method, path, body, bearer, onChange) {
  try {
    return await tg.api(method, path, body, bearer);
  } catch (e) {
    if (e.code !== 'otp_required' || !e.body || !e.body.approval) throw e;
    const ticket = await tg.approve(e.body.approval, onChange);
    return tg.api(method, path, body, bearer, { 'npm-otp': ticket });
  }
};

// Runs a registration ceremony with `bearer` (invite or token) and stores the key. With a token,
// one of the account's existing keys approves the new one with a tap.
tg.enrollKey = async function (bearer, name, onChange) {
  const begin = await tg.api('POST', '/api/v1/keys/registrations', {}, bearer);
  const cred = await navigator.credentials.create({ publicKey: tg.creationOptions(begin.publicKey) });
  const key = await tg.gated('POST', '/api/v1/keys/registrations/' + encodeURIComponent(begin.ceremony),
    { name, credential: tg.registrationJSON(cred) }, bearer, onChange);
  return { key, user: begin.publicKey.user.name };
};

// Signs in; returns the server's LoginResult.
tg.signIn = async function (username, npmLogin) {
  const body = { username };
  if (npmLogin) body.npm_login = npmLogin; else body.token_name = 'browser sign-in';
  const begin = await tg.api('POST', '/api/v1/sessions', body);
  const cred = await navigator.credentials.get({ publicKey: tg.requestOptions(begin.publicKey) });
  return tg.api('POST', '/api/v1/sessions/' + encodeURIComponent(begin.ceremony), { credential: tg.assertionJSON(cred) });
};
