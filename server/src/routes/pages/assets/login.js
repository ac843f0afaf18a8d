'use strict';
(function () {
  const match = location.pathname.match(/^\/login\/([A-Za-z0-9_-]+)$/);
  const npmLogin = match ? match[1] : null;
  const form = document.getElementById('form');
  const button = document.getElementById('login');
  if (npmLogin) {
    document.getElementById('title').textContent = 'Finish npm login';
    document.getElementById('lead').textContent = 'Your terminal is waiting for this sign-in. Enter your username, then touch your security key.';
  }
  const remembered = localStorage.getItem('tapgate-last-user');
  if (remembered) document.getElementById('username').value = remembered;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const username = document.getElementById('username').value.trim().toLowerCase();
    if (!username) { tg.status('error', 'Enter your username.'); return; }
    button.disabled = true;
    tg.status('working', 'Touch your security key now…');
    try {
      const result = await tg.signIn(username, npmLogin);
      localStorage.setItem('tapgate-last-user', result.username);
      if (npmLogin) {
        tg.status('ok', 'Logged in as ' + result.username + ' — return to your terminal. You can close this page.');
        form.classList.add('hidden');
      } else {
        tg.session.set(result.token, result.username);
        tg.status('ok', 'Signed in as ' + result.username + '. Opening your keys…');
        location.assign('/keys');
      }
    } catch (e) {
      tg.status('error', tg.explain(e));
      button.disabled = false;
    }
  });
})();
