'use strict';
(function () {
  const match = location.pathname.match(/^\/approve\/([A-Za-z0-9_-]+)$/);
  const button = document.getElementById('approve');
  if (!match) { tg.status('error', 'This link is incomplete: copy the whole approval URL from your terminal.'); return; }
  const id = match[1];
  let info = null;

  function show(field, text) { document.getElementById(field).textContent = text; }

  async function load() {
    try {
      info = await tg.api('GET', '/api/v1/approvals/' + encodeURIComponent(id));
    } catch (e) {
      tg.status('error', e.status === 404 ? 'This approval does not exist. Start the publish again from your terminal.' : tg.explain(e));
      return;
    }
    show('package', info.package);
    show('version', info.version);
    show('integrity', info.integrity);
    show('requested-by', info.requested_by);
    show('expires', new Date(info.expires_at).toLocaleString());
    if (info.status === 'pending') {
      button.disabled = false;
    } else if (info.status === 'approved') {
      tg.status('ok', 'Already approved — return to your terminal.');
    } else if (info.status === 'used') {
      tg.status('ok', 'This release was published with this approval.');
    } else {
      tg.status('error', 'This approval has expired. Start the publish again from your terminal.');
    }
  }

  button.addEventListener('click', async () => {
    button.disabled = true;
    tg.status('working', 'Touch your security key now…');
    try {
      const cred = await navigator.credentials.get({ publicKey: tg.requestOptions(info.publicKey) });
      const result = await tg.api('POST', '/api/v1/approvals/' + encodeURIComponent(id), { credential: tg.assertionJSON(cred) });
      tg.status('ok', 'Approved — return to your terminal. ' + info.package + '@' + info.version + ' will be published with this exact tarball.');
      show('code', result.code);
      document.getElementById('code-box').classList.remove('hidden');
    } catch (e) {
      tg.status('error', tg.explain(e));
      button.disabled = e.code === 'approval_expired';
    }
  });

  load();
})();
