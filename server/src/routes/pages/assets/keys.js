'use strict';
(function () {
  const token = tg.session.get();
  if (!token) { location.replace('/login'); return; }
  document.getElementById('who').textContent = tg.session.user() || '';
  // Signing out revokes this page's token on the server, not only in the browser.
  document.getElementById('signout').addEventListener('click', async (event) => {
    event.preventDefault();
    try {
      const { tokens } = await tg.api('GET', '/api/v1/tokens', undefined, token);
      const current = tokens.find((t) => t.current);
      if (current) await tg.api('DELETE', '/api/v1/tokens/' + encodeURIComponent(current.id), undefined, token);
    } catch (e) { /* already invalid: nothing to revoke */ }
    tg.session.clear();
    location.assign('/login');
  });
  const tbody = document.querySelector('#keys tbody');

  function tag(text, kind) {
    const span = document.createElement('span');
    span.className = 'tag' + (kind ? ' ' + kind : '');
    span.textContent = text;
    return span;
  }

  function cell(row, content) {
    const td = document.createElement('td');
    if (typeof content === 'string') td.textContent = content; else if (content) td.append(...[].concat(content));
    row.appendChild(td);
    return td;
  }

  function day(ts) { return ts ? ts.slice(0, 10) : 'never'; }

  function failed(e) {
    if (e.code === 'unauthorized') { tg.session.clear(); location.replace('/login'); return; }
    tg.status('error', tg.explain(e));
  }

  async function refresh() {
    const { keys } = await tg.api('GET', '/api/v1/keys', undefined, token);
    tbody.replaceChildren();
    for (const key of keys) {
      const row = document.createElement('tr');
      row.dataset.keyId = key.id;
      const nameCell = cell(row, key.name);
      nameCell.className = 'key-name';
      const kinds = [key.attested ? tag('attested hardware', 'good') : tag('not attested'),
        tag(key.user_verified ? 'PIN' : 'no PIN')];
      if (key.attested && key.attestation_ca) kinds.splice(1, 0, tag(key.attestation_ca));
      if (key.suspended_reason) kinds.push(tag('suspended: ' + key.suspended_reason, 'bad'));
      cell(row, kinds);
      cell(row, day(key.created_at));
      cell(row, day(key.last_used_at));
      const rename = document.createElement('button');
      rename.className = 'secondary rename';
      rename.textContent = 'Rename';
      rename.addEventListener('click', () => startRename(key, nameCell));
      const remove = document.createElement('button');
      remove.className = 'secondary remove';
      remove.textContent = 'Remove';
      remove.addEventListener('click', () => removeKey(key));
      cell(row, [rename, remove]);
      tbody.appendChild(row);
    }
  }

  function startRename(key, nameCell) {
    const input = document.createElement('input');
    input.type = 'text';
    input.value = key.name;
    input.maxLength = 64;
    input.className = 'rename-input';
    const save = document.createElement('button');
    save.className = 'secondary save';
    save.textContent = 'Save';
    save.addEventListener('click', async () => {
      try {
        await tg.api('PATCH', '/api/v1/keys/' + encodeURIComponent(key.id), { name: input.value }, token);
        tg.status('ok', 'Renamed the key to “' + input.value.trim() + '”.');
        await refresh();
      } catch (e) { failed(e); }
    });
    nameCell.replaceChildren(input, save);
    input.focus();
  }

  async function removeKey(key) {
    if (!confirm('Remove the key “' + key.name + '”? It will no longer approve publishes.')) return;
    try {
      await tg.gated('DELETE', '/api/v1/keys/' + encodeURIComponent(key.id), undefined, token, (what) =>
        tg.status('working', what + ' — touch one of your keys to approve.'));
      tg.status('ok', 'Removed the key “' + key.name + '”.');
      await refresh();
    } catch (e) { failed(e); }
  }

  document.getElementById('add-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = document.getElementById('new-key-name').value.trim();
    if (!name) { tg.status('error', 'Name the new key first.'); return; }
    tg.status('working', 'Plug in the new key and touch it now…');
    try {
      const { key } = await tg.enrollKey(token, name, (what) =>
        tg.status('working', what + ' — now touch one of your existing keys to approve it.'));
      tg.status('ok', 'Key “' + key.name + '” is enrolled.');
      document.getElementById('new-key-name').value = '';
      await refresh();
    } catch (e) { failed(e); }
  });

  refresh().catch(failed);
})();
