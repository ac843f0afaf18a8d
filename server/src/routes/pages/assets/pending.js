'use strict';
(function () {
  const token = tg.session.get();
  if (!token) { location.replace('/login'); return; }
  document.getElementById('who').textContent = tg.session.user() || '';
  const tbody = document.querySelector('#pending tbody');

  function cell(row, content) {
    const td = document.createElement('td');
    if (typeof content === 'string') td.textContent = content; else if (content) td.append(content);
    row.appendChild(td);
    return td;
  }

  function progress(a) {
    const text = a.approvals + ' of ' + a.required;
    return a.approved_by.length ? text + ' (' + a.approved_by.join(', ') + ')' : text;
  }

  async function load() {
    let list;
    try {
      list = await tg.api('GET', '/api/v1/approvals?pending=true', undefined, token);
    } catch (e) {
      if (e.code === 'unauthorized') { tg.session.clear(); location.replace('/login'); return; }
      tg.status('error', tg.explain(e));
      return;
    }
    tbody.textContent = '';
    document.getElementById('empty').classList.toggle('hidden', list.approvals.length > 0);
    for (const a of list.approvals) {
      const row = document.createElement('tr');
      row.dataset.id = a.id;
      cell(row, a.description);
      cell(row, a.requested_by);
      cell(row, progress(a));
      cell(row, new Date(a.expires_at).toLocaleString());
      const link = document.createElement('a');
      link.href = '/approve/' + encodeURIComponent(a.id);
      link.textContent = 'Review';
      const actions = cell(row, link);
      if (a.package && !/^key-/.test(a.action || '')) {
        const audit = document.createElement('a');
        audit.href = '/audit/' + a.package.split('/').map(encodeURIComponent).join('/');
        audit.textContent = 'Audit log';
        audit.className = 'audit-link';
        actions.append(document.createElement('br'), audit);
      }
      tbody.appendChild(row);
    }
  }

  async function loadStages() {
    let list;
    try {
      list = await tg.api('GET', '/-/stage?page=0&perPage=100&state=pending', undefined, token);
    } catch (e) {
      tg.status('error', tg.explain(e));
      return;
    }
    const body = document.querySelector('#stages tbody');
    body.textContent = '';
    const waiting = list.items.filter((s) => s.state === 'pending');
    document.getElementById('no-stages').classList.toggle('hidden', waiting.length > 0);
    for (const s of waiting) {
      const row = document.createElement('tr');
      row.dataset.id = s.id;
      cell(row, s.packageName + '@' + s.version + ' (' + s.tags.join(', ') + ')');
      cell(row, s.credential ? s.actor + ' (' + s.credential + ')' : s.actor);
      cell(row, s.state);
      cell(row, new Date(s.expiresAt).toLocaleString());
      const link = document.createElement('a');
      link.href = '/stage/' + encodeURIComponent(s.id);
      link.textContent = 'Review';
      cell(row, link);
      body.appendChild(row);
    }
  }

  load();
  loadStages();
})();
