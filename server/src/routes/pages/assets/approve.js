'use strict';
(function () {
  const match = location.pathname.match(/^\/approve\/([A-Za-z0-9_-]+)$/);
  const button = document.getElementById('approve');
  if (!match) { tg.status('error', 'This link is incomplete: copy the whole approval URL from your terminal.'); return; }
  const id = match[1];
  let info = null;

  const show = tg.diff.show;
  const npmIntegrity = tg.diff.npmIntegrity;
  const showPublish = (p) => tg.diff.showPublish(p, info.package);

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
