'use strict';
(function () {
  const invite = new URLSearchParams(location.search).get('invite');
  const form = document.getElementById('form');
  const button = document.getElementById('enroll');
  if (!invite) {
    tg.status('error', 'This page needs the invite link an administrator gave you (it ends in ?invite=tg_inv_…).');
    button.disabled = true;
    return;
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = document.getElementById('key-name').value.trim();
    if (!name) { tg.status('error', 'Give the key a name first, so you can tell your keys apart later.'); return; }
    button.disabled = true;
    tg.status('working', 'Touch your security key now…');
    try {
      const { key, user } = await tg.enrollKey(invite, name);
      const trust = key.attested ? ' It is an attested hardware key.' : '';
      tg.status('ok', 'Key “' + key.name + '” is enrolled for ' + user + '.' + trust + ' This invite is now used up.');
      document.getElementById('next').classList.remove('hidden');
      form.classList.add('hidden');
    } catch (e) {
      tg.status('error', tg.explain(e));
      button.disabled = (e.code === 'invalid_invite');
    }
  });
})();
