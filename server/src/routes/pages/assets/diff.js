'use strict';
// What a publish holds and changes against the version before it (the registry's
// `PublishDiff`), shown on the approval and staged-release pages. The page has the elements
// with the ids used here. Everything the registry sends is shown with textContent, never
// parsed as HTML.
tg.diff = (function () {
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

  function showPublish(p, packageName) {
    show('compared', p.previous_version != null
      ? 'Compared with ' + packageName + '@' + p.previous_version + ', the version before it.'
      : (p.note || 'The first version of this package: nothing to compare with.'));
    showScripts(p.scripts);
    showDependencies(p.dependencies);
    showFiles(p);
    document.getElementById('publish').classList.remove('hidden');
  }

  return { show, item, npmIntegrity, size, showPublish };
})();
