'use strict';
// The audit log page of a package (`/audit/NAME`): fetches its chain, recomputes every entry's
// hash in the browser and shows the entries newest first. Everything the registry sends is
// shown with textContent, never parsed as HTML.
(function () {
  const DOMAIN = 'tapgate-audit-v1';
  const GENESIS = '0'.repeat(64);
  const MAX_ENTRIES = 20000;
  let path = '';
  try { path = decodeURIComponent(location.pathname.replace(/^\/audit\//, '')); } catch (e) { /* shown below */ }
  const api = '/api/v1/packages/' + encodeURIComponent(path) + '/audit';

  function show(id, text) { document.getElementById(id).textContent = text; }

  function verdict(state, title, detail) {
    document.getElementById('verification').dataset.state = state;
    show('verdict', title);
    show('verdict-detail', detail);
  }

  async function sha256Hex(text) {
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // The first entry that does not hold, as a sentence; null when the whole chain holds.
  async function check(chain, entries) {
    let prev = GENESIS;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e.seq !== i + 1) return 'entry ' + (i + 1) + ' is missing or out of order (entry ' + e.seq + ' is in its place): entries were deleted or reordered.';
      let value;
      try { value = JSON.parse(e.entry); } catch (err) { return 'entry ' + e.seq + ' is not valid JSON.'; }
      if (value.chain !== chain || value.seq !== e.seq) return 'entry ' + e.seq + ' says it is entry ' + value.seq + ' of ' + value.chain + ': entries were moved.';
      if (e.prev_hash !== prev) return 'entry ' + e.seq + ' does not follow entry ' + (e.seq - 1) + ': entries were deleted, reordered or rewritten.';
      const hash = await sha256Hex(DOMAIN + '\n' + prev + '\n' + e.entry);
      if (hash !== e.hash) return 'entry ' + e.seq + ' was edited: its content does not match its hash.';
      prev = hash;
    }
    return null;
  }

  const KINDS = {
    'change.accepted': 'Change made',
    'change.refused': 'Change refused',
    'attempt.failed': 'Failed attempt',
    'package.locked': 'Package locked',
  };

  // One line saying what happened, from the entry's body.
  function summary(kind, body) {
    if (body.description) {
      const who = body.requested_by ? ' (asked by ' + body.requested_by + ')' : '';
      const why = body.reason ? ': ' + body.reason : '';
      return body.description + who + why;
    }
    if (kind === 'attempt.failed') {
      const parts = [body.failure];
      if (body.account) parts.push('account ' + body.account);
      if (body.key) parts.push('key ' + body.key);
      if (body.detail) parts.push(body.detail);
      if (body.counted === false) parts.push('not counted towards a lock');
      return parts.join(' · ');
    }
    if (kind === 'package.locked') return 'Locked after ' + body.failures + ' failed attempts.';
    return '';
  }

  function evidence(body) {
    if (!body.evidence) return '';
    if (body.evidence.kind === 'tap' && body.evidence.keys && body.evidence.keys.length) {
      return 'Approved with a security-key tap by ' + body.evidence.keys.map((k) => k.user + ' (key ' + k.key + ')').join(', ') + '.';
    }
    return 'Authorized by ' + body.evidence.kind + '.';
  }

  function render(entries) {
    const list = document.getElementById('entries');
    list.textContent = '';
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i];
      let value = {};
      try { value = JSON.parse(e.entry); } catch (err) { /* shown raw below */ }
      const body = value.body || {};
      const li = document.createElement('li');
      li.value = e.seq;
      li.dataset.seq = e.seq;
      li.dataset.kind = value.kind || '';
      li.className = 'entry ' + (value.kind || '').replace(/\./g, '-');
      const head = document.createElement('div');
      head.className = 'entry-head';
      const kind = document.createElement('strong');
      kind.textContent = KINDS[value.kind] || value.kind || 'Entry';
      const at = document.createElement('span');
      at.className = 'hint';
      at.textContent = ' #' + e.seq + ' · ' + (value.at ? new Date(value.at).toLocaleString() : '');
      head.append(kind, at);
      const what = document.createElement('p');
      what.className = 'entry-what';
      what.textContent = summary(value.kind, body);
      li.append(head, what);
      const how = evidence(body);
      if (how) {
        const p = document.createElement('p');
        p.className = 'hint';
        p.textContent = how;
        li.append(p);
      }
      const raw = document.createElement('details');
      const s = document.createElement('summary');
      s.textContent = 'Entry as hashed';
      const pre = document.createElement('pre');
      pre.className = 'code';
      pre.textContent = e.entry + '\n\nhash ' + e.hash + '\nprevious ' + e.prev_hash;
      raw.append(s, pre);
      li.append(raw);
      list.appendChild(li);
    }
  }

  async function load() {
    if (!path) { verdict('error', 'No package named', 'The address names no package: open /audit/NAME.'); return; }
    const entries = [];
    let page;
    try {
      do {
        page = await tg.api('GET', api + '?after=' + entries.length);
        entries.push(...page.entries);
      } while (page.entries.length > 0 && entries.length < page.head_seq && entries.length < MAX_ENTRIES);
    } catch (e) {
      verdict('error', 'Cannot read the log', tg.explain(e));
      return;
    }
    show('chain-name', path);
    show('subject', path);
    show('verify-command', 'tapgate audit verify ' + path);
    document.title = 'Audit log of ' + path + ' · tapgate';
    show('count', '(' + page.head_seq + ')');
    render(entries);

    if (entries.length === 0) {
      verdict('ok', 'Nothing recorded yet', 'No decision about it has been recorded.');
    } else if (!(window.crypto && crypto.subtle)) {
      verdict('unknown', 'Not checked in this browser',
        'Browsers compute hashes only on pages served over HTTPS (or from localhost). Use tapgate audit verify.');
      return;
    } else {
      const broken = await check(page.chain, entries);
      if (broken) {
        verdict('error', 'The chain is broken', 'The log this registry serves does not hold together: ' + broken);
        return;
      }
      const partial = entries.length < page.head_seq ? ' (the first ' + entries.length + ' of ' + page.head_seq + ')' : '';
      verdict('ok', 'The chain holds together',
        'Your browser recomputed the hash of all ' + entries.length + ' entries' + partial + ' from each entry and the one before it: no entry was changed, removed or moved on its own. A log rewritten as a whole would hold together too; only a signed head you kept shows it was not.');
    }
    const head = page.signed_head;
    if (!head) {
      show('signed', 'The registry has not signed a head of this chain yet (it signs new heads every minute).');
      return;
    }
    const signedEntry = entries[head.seq - 1];
    const matches = signedEntry && signedEntry.hash === head.hash;
    const after = page.head_seq - head.seq;
    show('signed', 'The registry signed entry ' + head.seq + ' on ' + new Date(head.signed_at).toLocaleString() +
      ' with its key ' + head.key_id + (matches ? ', and that head is the entry shown here' : ', but that head is NOT the entry shown here: the log was rewritten after it was signed') +
      (after > 0 ? '; ' + after + ' newer entr' + (after === 1 ? 'y is' : 'ies are') + ' not signed yet.' : '.') +
      ' This page does not check the signature itself: tapgate audit verify does, with the key you pinned.');
    if (!matches) document.getElementById('verification').dataset.state = 'error';
  }

  load();
})();
