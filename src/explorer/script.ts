/**
 * The explorer page's script, inlined (allowed by the CSP nonce); plain
 * browser JavaScript, no build step. It replaces the server-rendered tree
 * with an editable one built from `GET <this URL>` (Accept: application/json),
 * and makes every change through the store's HTTP API: a JSON Patch to this
 * URL with If-Match, so a change made meanwhile by someone else is a 412 that
 * is shown, never overwritten. It follows changes through an EventSource on
 * this URL when the store streams (text/event-stream), else by polling with
 * If-None-Match. Only textContent is ever set from the document: no HTML
 * is built from data.
 */
export const explorerScript = String.raw`
(function () {
  'use strict';
  var tree = document.getElementById('tree');
  var status = document.getElementById('status');
  var live = document.getElementById('live');
  var readOnly = tree.getAttribute('data-read-only') === 'true';
  var url = location.pathname;
  var pollMs = 1500;
  var etag = null;
  var doc;
  var missing = tree.getAttribute('data-missing') === 'true';
  /** Open state of containers by pointer, once the user toggled them. */
  var toggled = new Map();
  var editing = 0;
  var renderWaiting = false;
  var polling = false;

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? 'error' : '';
  }
  function pointerOf(path) {
    return path.map(function (p) { return '/' + String(p).replace(/~/g, '~0').replace(/\//g, '~1'); }).join('');
  }
  function isContainer(v) { return v !== null && typeof v === 'object'; }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function button(label, focusKey, aria, onClick) {
    var b = el('button', { type: 'button', 'data-focus-key': focusKey, 'aria-label': aria }, label);
    b.addEventListener('click', function (event) { event.preventDefault(); event.stopPropagation(); onClick(b); });
    return b;
  }
  function scalar(value) {
    var kind = value === null ? 'null' : typeof value;
    return el('span', { class: 'v ' + kind }, JSON.stringify(value));
  }
  function meta(value) {
    return el('span', { class: 'meta' }, Array.isArray(value) ? '[' + value.length + ']' : '{' + Object.keys(value).length + '}');
  }

  async function problemText(res) {
    var text = res.status + ' ' + res.statusText;
    try {
      var problem = await res.json();
      if (problem && (problem.detail || problem.title)) text = res.status + ': ' + (problem.detail || problem.title);
    } catch (e) { /* not JSON */ }
    return text;
  }

  async function load() {
    var headers = { Accept: 'application/json' };
    if (etag) headers['If-None-Match'] = etag;
    var res = await fetch(url, { headers: headers, cache: 'no-store' });
    if (res.status === 304) return;
    if (res.status === 404) {
      if (!missing) { missing = true; etag = null; doc = undefined; render(); }
      return;
    }
    if (!res.ok) { say(await problemText(res), true); return; }
    missing = false;
    etag = res.headers.get('ETag');
    doc = await res.json();
    render();
  }

  // At most one load in flight and one waiting: an older answer never lands after a newer one,
  // and a burst of events costs two GETs, not one each. The promise is of a load started after the call.
  var loading = null, pending = null;
  function refresh() {
    if (!loading) {
      loading = load().finally(function () { loading = null; });
      return loading;
    }
    if (!pending) pending = loading.catch(function () {}).then(function () { pending = null; return refresh(); });
    return pending;
  }

  /** Sends a JSON Patch; true when the editor should close (saved, or a conflict showed the latest). */
  async function send(ops, done) {
    var headers = { 'Content-Type': 'application/json-patch+json', Accept: 'application/json' };
    if (etag) headers['If-Match'] = etag;
    var res;
    try {
      res = await fetch(url, { method: 'PATCH', headers: headers, body: JSON.stringify(ops) });
    } catch (e) {
      say('Could not reach the store: ' + e.message, true);
      return false;
    }
    if (res.ok) {
      say(done);
      await refresh();
      return true;
    }
    if (res.status === 412) {
      // The editor closes: what it was editing may be gone or different now.
      etag = null;
      await refresh();
      say('Not saved: someone else changed this since it was loaded. Showing the latest version; try again.', true);
      return true;
    }
    say('Not saved: ' + (await problemText(res)), true);
    return false;
  }

  /** An inline form: one or two text inputs, Save and Cancel; Enter saves, Escape cancels. */
  function inlineForm(fields, onSave, onCancel) {
    var form = el('form', { class: 'inline' });
    var inputs = fields.map(function (f) {
      var input = el('input', { type: 'text', 'aria-label': f.label, placeholder: f.placeholder || '', size: '30', spellcheck: 'false' });
      input.value = f.value || '';
      form.appendChild(input);
      return input;
    });
    var save = el('button', { type: 'submit' }, 'Save');
    var cancel = el('button', { type: 'button' }, 'Cancel');
    form.appendChild(save);
    form.appendChild(cancel);
    editing++;
    var closed = false;
    function close() {
      if (closed) return;
      closed = true;
      editing--;
      if (renderWaiting && editing === 0) { renderWaiting = false; render(); }
    }
    form.addEventListener('submit', async function (event) {
      event.preventDefault();
      var ok = await onSave(inputs.map(function (i) { return i.value; }));
      if (ok) { close(); render(); }
    });
    cancel.addEventListener('click', function () { close(); onCancel(); });
    form.addEventListener('keydown', function (event) {
      if (event.key === 'Escape') { event.preventDefault(); close(); onCancel(); }
    });
    setTimeout(function () { inputs[0].focus(); inputs[0].select(); }, 0);
    return form;
  }

  function parseJson(text) {
    try { return { value: JSON.parse(text) }; } catch (e) { say('Not saved: that is not JSON (' + e.message + '). Strings need quotes: "like this".', true); return undefined; }
  }

  function editButtons(holder, path, value, inArray) {
    if (readOnly) return;
    var ptr = pointerOf(path);
    var name = path.length === 0 ? 'this value' : ptr;
    holder.appendChild(button('Edit', ptr + ':edit', 'Edit ' + name, function () {
      var form = inlineForm([{ label: 'New JSON value for ' + name, value: JSON.stringify(value) }], async function (texts) {
        var parsed = parseJson(texts[0]);
        if (!parsed) return false;
        return send([{ op: 'replace', path: ptr, value: parsed.value }], 'Saved ' + name + '.');
      }, function () { render(); focusKey(ptr + ':edit'); });
      holder.appendChild(form);
    }));
    if (isContainer(value)) {
      holder.appendChild(button('Add', ptr + ':add', 'Add a member to ' + name, function () {
        var fields = Array.isArray(value) ? [] : [{ label: 'New key in ' + name, placeholder: 'key' }];
        fields.push({ label: 'JSON value of the new member', placeholder: '"value"' });
        var form = inlineForm(fields, async function (texts) {
          var parsed = parseJson(texts[texts.length - 1]);
          if (!parsed) return false;
          var key = Array.isArray(value) ? '-' : texts[0];
          if (!Array.isArray(value) && key === '') { say('Not saved: the new member needs a key.', true); return false; }
          return send([{ op: 'add', path: ptr + pointerOf([key]), value: parsed.value }], 'Added to ' + name + '.');
        }, function () { render(); focusKey(ptr + ':add'); });
        holder.appendChild(form);
      }));
    }
    if (path.length > 0) {
      holder.appendChild(button('Delete', ptr + ':delete', 'Delete ' + name, function () {
        send([{ op: 'remove', path: ptr }], 'Deleted ' + name + '.');
      }));
    }
  }

  function children(value, path) {
    var ul = el('ul');
    var keys = Array.isArray(value) ? value.map(function (_, i) { return String(i); }) : Object.keys(value);
    keys.forEach(function (key) { ul.appendChild(member(key, value[key], path.concat([key]), Array.isArray(value))); });
    return ul;
  }

  function member(key, value, path, inArray) {
    var li = el('li');
    var ptr = pointerOf(path);
    var label = el('span', { class: 'k' }, key);
    if (!isContainer(value)) {
      li.appendChild(label);
      li.appendChild(document.createTextNode(': '));
      li.appendChild(scalar(value));
      editButtons(li, path, value, inArray);
      return li;
    }
    var details = el('details');
    var summary = el('summary', { 'data-focus-key': ptr + ':toggle' });
    summary.appendChild(label);
    summary.appendChild(document.createTextNode(' '));
    summary.appendChild(meta(value));
    details.appendChild(summary);
    var open = toggled.has(ptr) ? toggled.get(ptr) : path.length <= 1;
    var filled = false;
    function fill() {
      if (filled) return;
      filled = true;
      var tools = el('div', { class: 'tools' });
      editButtons(tools, path, value, inArray);
      if (tools.childNodes.length) details.appendChild(tools);
      details.appendChild(children(value, path));
    }
    if (open) { details.open = true; fill(); }
    details.addEventListener('toggle', function () {
      toggled.set(ptr, details.open);
      if (details.open) fill();
    });
    li.appendChild(details);
    return li;
  }

  function focusKey(key) {
    var target = tree.querySelector('[data-focus-key="' + CSS.escape(key) + '"]');
    if (target) target.focus();
  }

  function render() {
    if (editing > 0) { renderWaiting = true; return; }
    var active = document.activeElement;
    var key = active && active.getAttribute ? active.getAttribute('data-focus-key') : null;
    tree.textContent = '';
    if (missing) {
      tree.appendChild(el('p', { class: 'missing' }, 'Nothing here.'));
      return;
    }
    if (isContainer(doc)) {
      var tools = el('div', { class: 'tools' });
      editButtons(tools, [], doc, false);
      tree.appendChild(tools);
      tree.appendChild(children(doc, []));
    } else {
      var p = el('p');
      p.appendChild(scalar(doc));
      editButtons(p, [], doc, false);
      tree.appendChild(p);
    }
    if (key) focusKey(key);
  }

  function startPolling() {
    if (polling) return;
    polling = true;
    live.textContent = 'live (checking every ' + pollMs / 1000 + ' s)';
    setInterval(function () { if (!document.hidden) refresh().catch(function () {}); }, pollMs);
  }

  function startLive() {
    if (typeof EventSource !== 'function') { startPolling(); return; }
    var opened = false;
    var source = new EventSource(url);
    var onEvent = function () { refresh().catch(function () {}); };
    source.onopen = function () { opened = true; live.textContent = 'live'; };
    source.addEventListener('put', onEvent);
    source.addEventListener('patch', onEvent);
    source.onmessage = onEvent;
    source.onerror = function () {
      // The store does not stream (yet), or the stream broke for good: poll instead.
      if (!opened || source.readyState === 2) { source.close(); startPolling(); }
    };
  }

  refresh().then(startLive, function (e) { say('Could not load: ' + e.message, true); startPolling(); });
})();
`;
