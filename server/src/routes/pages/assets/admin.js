'use strict';
(function () {
  const token = tg.session.get();
  if (!token) { location.replace('/login'); return; }
  document.getElementById('who').textContent = tg.session.user() || '';
  const $ = (id) => document.getElementById(id);
  const name = () => $('package').value.trim();
  const path = () => '/api/v1/packages/' + encodeURIComponent(name()).replace(/%40/g, '@') + '/policy';

  // What the form does not show (CI paths) is kept as loaded.
  let loaded = {};

  function show(policy) {
    loaded = policy;
    $('second-factor').value = policy.second_factor;
    $('attested-keys').checked = !!policy.attested_keys;
    $('user-verification').checked = !!policy.user_verification;
    $('all-enrolled').checked = !!policy.all_maintainers_enrolled;
    $('approvals').value = policy.approvals || 1;
    $('approvals-scripts').value = policy.approvals_when_scripts_change || '';
  }

  $('load-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!name()) { tg.status('error', 'Name the package first.'); return; }
    try {
      const info = await tg.api('GET', '/api/v1/packages/' + encodeURIComponent(name()).replace(/%40/g, '@'), undefined, token);
      show(info.policy);
      tg.status('ok', 'The policy of ' + name() + ' as it stands.');
    } catch (e) {
      if (e.code === 'package_not_found') { tg.status('ok', name() + ' is not in this registry yet: saving a policy reserves the name.'); return; }
      tg.status('error', tg.explain(e));
    }
  });

  $('policy-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!name()) { tg.status('error', 'Name the package first.'); return; }
    const policy = {
      second_factor: $('second-factor').value,
      attested_keys: $('attested-keys').checked,
      user_verification: $('user-verification').checked,
      all_maintainers_enrolled: $('all-enrolled').checked,
      approvals: Number($('approvals').value || 1),
    };
    if (loaded.ci && loaded.ci.length) policy.ci = loaded.ci;
    const scripts = $('approvals-scripts').value;
    if (scripts) policy.approvals_when_scripts_change = Number(scripts);
    try {
      await tg.gated('PUT', path(), policy, token, (what) => tg.status('working', what + ' — touch your security key to approve.'));
      tg.status('ok', 'The policy of ' + name() + ' is saved.');
    } catch (e) {
      if (e.code === 'pending') { tg.status('ok', e.message); return; }
      tg.status('error', tg.explain(e));
    }
  });
})();
