'use strict';
(function () {
  const match = location.pathname.match(/^\/stage\/([0-9a-fA-F-]{36})$/);
  const approveButton = document.getElementById('approve');
  const rejectButton = document.getElementById('reject');
  if (!match) { tg.status('error', 'This link is incomplete: copy the whole staged-release URL.'); return; }
  const id = match[1];
  const token = tg.session.get();
  if (!token) { tg.status('error', 'Sign in first (touch your key on the sign-in page), then open this link again.'); location.assign('/login'); return; }
  const show = tg.diff.show;
  let stage = null;

  function render(s) {
    stage = s;
    show('description', 'Publish ' + s.packageName + '@' + s.version + ' with the tags ' + s.tags.join(', ') + '.');
    show('package', s.packageName);
    show('version', s.version);
    show('tags', s.tags.join(', '));
    show('integrity', s.integrity);
    show('integrity-short', tg.diff.npmIntegrity(s.integrity));
    show('staged-by', s.credential ? s.actor + ' (' + s.actorType + ' ' + s.credential + ')' : s.actor);
    show('staged-at', new Date(s.createdAt).toLocaleString());
    show('expires', new Date(s.expiresAt).toLocaleString());
    const decided = s.decidedBy ? ' by ' + s.decidedBy : '';
    show('state', s.state + decided);
    if (s.changes) tg.diff.showPublish(s.changes, s.packageName);
    const open = s.state === 'pending';
    approveButton.disabled = !open;
    rejectButton.disabled = !open;
    if (!open) tg.status(s.state === 'published' ? 'ok' : 'error', 'This staged release is ' + s.state + decided + '.');
  }

  async function load() {
    try {
      render(await tg.api('GET', '/-/stage/' + id, undefined, token));
    } catch (e) {
      if (e.code === 'unauthorized') { tg.session.clear(); location.assign('/login'); return; }
      tg.status('error', e.code === 'stage_not_found' ? 'No such staged release among your packages\'.' : tg.explain(e));
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // The ticket of an approval that waits for other maintainers' taps (N-of-M): the done URL
  // answers 202 until they are in.
  async function ticketWhenApproved(doneUrl) {
    for (;;) {
      const resp = await fetch(doneUrl, { method: 'GET', credentials: 'omit' });
      if (resp.status === 200) return (await resp.json()).token;
      if (resp.status !== 202) throw Object.assign(new Error('The approval expired before the other maintainers approved. Click again to start over.'), { code: 'approval_expired' });
      await sleep(2000);
    }
  }

  // A decision through the gate: tap; where the policy wants more maintainers, wait here for
  // their taps (on /pending or with `tapgate approve`), then finish.
  async function gated(method, path) {
    try {
      return await tg.api(method, path, undefined, token);
    } catch (e) {
      if (e.code !== 'otp_required' || !e.body || !e.body.approval) throw e;
      let ticket;
      try {
        ticket = await tg.approve(e.body.approval, (what) => tg.status('working', what + ' — touch your security key now…'));
      } catch (p) {
        if (p.code !== 'pending' || !e.body.doneUrl) throw p;
        tg.status('working', p.message + ' Keep this page open: it finishes once they have.');
        ticket = await ticketWhenApproved(e.body.doneUrl);
      }
      return tg.api(method, path, undefined, token, { 'npm-otp': ticket });
    }
  }

  async function decide(method, path, done) {
    approveButton.disabled = true;
    rejectButton.disabled = true;
    try {
      const result = await gated(method, path);
      render(result.stage);
      tg.status('ok', done);
    } catch (e) {
      tg.status('error', tg.explain(e));
      approveButton.disabled = rejectButton.disabled = !(stage && stage.state === 'pending');
    }
  }

  approveButton.addEventListener('click', () => decide('POST', '/-/stage/' + id + '/approve', 'Published ' + stage.packageName + '@' + stage.version + '.'));
  rejectButton.addEventListener('click', () => decide('DELETE', '/-/stage/' + id, 'Rejected: it will never be published.'));
  load();
})();
