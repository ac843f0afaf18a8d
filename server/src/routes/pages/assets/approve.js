'use strict';
(function () {
  const match = location.pathname.match(/^\/approve\/([A-Za-z0-9_-]+)$/);
  const button = document.getElementById('approve');
  if (!match) { tg.status('error', 'This link is incomplete: copy the whole approval URL from your terminal.'); return; }
  const id = match[1];
  let info = null;

  // Everything the registry sends is shown with textContent, never parsed as HTML.
  function show(field, text) { document.getElementById(field).textContent = text; }

  function item(list, text, ...classes) {
    const li = document.createElement('li');
    li.textContent = text;
    for (const c of classes) li.classList.add(c);
    document.getElementById(list).appendChild(li);
    return li;
  }

  // A script command (or range) on its own line, as code.
  function withCode(li, code) {
    const el = document.createElement('code');
    el.className = 'script';
    el.textContent = code;
    li.appendChild(document.createElement('br'));
    li.appendChild(el);
  }

  function more(list, n) { if (n > 0) item(list, 'and ' + n + ' more', 'more'); }

  // Sizes as npm prints them (1 kB = 1000 B).
  function size(n) {
    if (n < 1000) return n + ' B';
    if (n < 1000 * 1000) return (n / 1000).toFixed(1) + ' kB';
    return (n / 1000 / 1000).toFixed(1) + ' MB';
  }

  // The integrity as `npm publish` prints it: `npm notice integrity: sha512-…[...]…`.
  function npmIntegrity(sri) { return sri.length > 80 ? sri.slice(0, 20) + '[...]' + sri.slice(80) : sri; }

  function showScripts(scripts) {
    let risky = false;
    for (const s of scripts.items) {
      const what = s.to == null ? 'removed' : s.from == null ? 'added' : 'changed';
      const li = item('scripts', (s.install ? 'Install script ' : 'Script ') + s.name + ' ' + what, what);
      if (s.install) {
        li.classList.add('install-script');
        if (s.to != null) risky = true;
      }
      if (s.from != null && s.to != null) withCode(li, 'was: ' + s.from);
      withCode(li, s.to != null ? s.to : 'was: ' + s.from);
    }
    more('scripts', scripts.more);
    if (!scripts.items.length && !scripts.more) item('scripts', 'No script changes.', 'none');
    document.getElementById('install-warning').classList.toggle('hidden', !risky);
  }

  function showDependencies(deps) {
    for (const d of deps.items) {
      const kind = d.kind === 'dependencies' ? '' : ' (' + d.kind + ')';
      let text;
      let what;
      if (d.from == null) { what = 'added'; text = '+ ' + d.name + ' ' + d.to + kind + ' added'; }
      else if (d.to == null) { what = 'removed'; text = '− ' + d.name + ' ' + d.from + kind + ' removed'; }
      else { what = 'changed'; text = '~ ' + d.name + ' ' + d.from + ' → ' + d.to + kind; }
      item('dependencies', text, what);
    }
    more('dependencies', deps.more);
    if (!deps.items.length && !deps.more) item('dependencies', 'No dependency changes.', 'none');
  }

  function showFiles(p) {
    const count = p.files.items.length + p.files.more;
    show('tarball-size', 'Tarball ' + size(p.tarball_size) + ', ' + count + ' files, ' + size(p.unpacked_size) + ' unpacked.');
    if (p.previous_version != null) {
      for (const f of p.added.items) item('file-changes', '+ ' + f.path + ' (' + size(f.size) + ') added', 'added');
      more('file-changes', p.added.more);
      for (const f of p.changed.items) {
        item('file-changes', '~ ' + f.path + ' (' + size(f.old_size) + ' → ' + size(f.size) + ') changed', 'changed');
      }
      more('file-changes', p.changed.more);
      for (const f of p.removed.items) item('file-changes', '− ' + f.path + ' (' + size(f.size) + ') removed', 'removed');
      more('file-changes', p.removed.more);
      if (!p.added.items.length && !p.changed.items.length && !p.removed.items.length) {
        item('file-changes', 'No file changes.', 'none');
      }
    }
    show('all-files-summary', 'All ' + count + ' files');
    for (const f of p.files.items) item('files', f.path + ' (' + size(f.size) + ')');
    more('files', p.files.more);
  }

  function showPublish(p) {
    show('compared', p.previous_version != null
      ? 'Compared with ' + info.package + '@' + p.previous_version + ', the version before it.'
      : (p.note || 'The first version of this package: nothing to compare with.'));
    showScripts(p.scripts);
    showDependencies(p.dependencies);
    showFiles(p);
    document.getElementById('publish').classList.remove('hidden');
  }

  function showDetails(d) {
    show('registry', d.registry || location.host);
    show('ip', d.ip ? 'address ' + d.ip : 'address not recorded');
    show('user-agent', d.user_agent ? d.user_agent : 'client not recorded');
    show('requested-at', d.requested_at ? new Date(d.requested_at).toLocaleString() : '—');
    if (d.publish) showPublish(d.publish);
  }

  async function load() {
    try {
      info = await tg.api('GET', '/api/v1/approvals/' + encodeURIComponent(id));
    } catch (e) {
      tg.status('error', e.status === 404 ? 'This approval does not exist. Start the change again from your terminal.' : tg.explain(e));
      return;
    }
    show('description', info.description);
    show('package', info.package);
    if (!/^key-/.test(info.action || '')) {
      // Key changes are the account's, not a package's: they have no package log.
      const audit = document.getElementById('audit-link');
      audit.href = '/audit/' + info.package.split('/').map(encodeURIComponent).join('/');
      audit.classList.remove('hidden');
    }
    show('version', info.version);
    show('integrity', info.integrity);
    show('integrity-short', npmIntegrity(info.integrity));
    const tags = info.intent && Array.isArray(info.intent.tags) ? info.intent.tags : [];
    show('tags', tags.length ? tags.join(', ') : 'none');
    if (!info.version) for (const el of document.querySelectorAll('.publish-only')) el.classList.add('hidden');
    if (info.required > 1) {
      const who = info.approved_by && info.approved_by.length ? ' (' + info.approved_by.join(', ') + ')' : '';
      show('progress', info.approvals + ' of ' + info.required + ' maintainers have approved' + who + '.');
      document.getElementById('progress').classList.remove('hidden');
    }
    show('requested-by', info.requested_by);
    show('expires', new Date(info.expires_at).toLocaleString());
    showDetails(info.details || {});
    if (info.status === 'pending') {
      button.disabled = false;
    } else if (info.status === 'approved') {
      tg.status('ok', 'Already approved — return to your terminal.');
    } else if (info.status === 'used') {
      tg.status('ok', 'This change was made with this approval.');
    } else if (info.status === 'rejected') {
      tg.status('error', 'This change was rejected by ' + info.rejected_by + '. It will not be made.');
    } else {
      tg.status('error', 'This approval has expired. Start the change again from your terminal.');
    }
  }

  button.addEventListener('click', async () => {
    button.disabled = true;
    tg.status('working', 'Touch your security key now…');
    try {
      const cred = await navigator.credentials.get({ publicKey: tg.requestOptions(info.publicKey) });
      const result = await tg.api('POST', '/api/v1/approvals/' + encodeURIComponent(id), { credential: tg.assertionJSON(cred) });
      if (!result.ticket) {
        tg.status('ok', 'Your approval is recorded. ' + (result.required - result.approvals) + ' more maintainer(s) must approve.');
        return;
      }
      tg.status('ok', 'Approved — return to your terminal. ' + info.description + '.');
      show('code', result.code);
      document.getElementById('code-box').classList.remove('hidden');
    } catch (e) {
      tg.status('error', tg.explain(e));
      button.disabled = e.code === 'approval_expired';
    }
  });

  load();
})();
