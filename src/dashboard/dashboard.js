// The key dashboard (tower-api-key). Plain JavaScript, no dependencies: it reads the
// JSON endpoints' paths from <body data-*> and calls them with fetch (same origin,
// the session cookie). A raw key lives only in #new-key-value's value, never in
// storage, the URL or the page's markup.
'use strict';

(function () {
  var body = document.body;
  var paths = {
    one: body.getAttribute('data-one-active') || '',
    named: body.getAttribute('data-named') || ''
  };
  var conflictMessage = body.getAttribute('data-conflict') || '';

  function $(id) {
    return document.getElementById(id);
  }

  // ---- calls -------------------------------------------------------------------

  function ApiFailure(status, message) {
    this.status = status;
    this.message = message;
  }

  // A JSON call; resolves with the parsed answer (or null), rejects with ApiFailure
  // carrying the envelope's message.
  function call(method, path, payload) {
    var init = {
      method: method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'Accept': 'application/json' }
    };
    if (payload !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(payload);
    }
    return fetch(path, init).then(
      function (response) {
        return response.text().then(function (text) {
          var data = null;
          if (text) {
            try {
              data = JSON.parse(text);
            } catch (e) {
              data = null;
            }
          }
          if (!response.ok) {
            var message = data && data.error && typeof data.error.message === 'string'
              ? data.error.message
              : 'The request failed (HTTP ' + response.status + ').';
            throw new ApiFailure(response.status, message);
          }
          return data;
        });
      },
      function () {
        throw new ApiFailure(0, 'The server could not be reached. Check your connection and try again.');
      }
    );
  }

  // ---- messages ----------------------------------------------------------------

  function showError(failure) {
    var box = $('error');
    box.textContent = failure && failure.message ? failure.message : String(failure);
    box.hidden = false;
  }

  function clearError() {
    var box = $('error');
    box.textContent = '';
    box.hidden = true;
  }

  // ---- formatting --------------------------------------------------------------

  // "2026-11-23 17:00 UTC" in a <time>, or the fallback text when absent.
  function timeElement(iso, fallback) {
    if (!iso) {
      return document.createTextNode(fallback);
    }
    var element = document.createElement('time');
    element.setAttribute('datetime', iso);
    var date = new Date(iso);
    element.textContent = isNaN(date.getTime())
      ? iso
      : date.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
    return element;
  }

  var STATUS_TEXT = {
    active: 'Active',
    retiring: 'Retiring',
    expired: 'Expired',
    revoked: 'Revoked'
  };

  function statusText(view) {
    return STATUS_TEXT[view.status] || String(view.status);
  }

  function isLive(view) {
    return view.status === 'active' || view.status === 'retiring';
  }

  function modeText(mode) {
    return mode === 'test' ? 'Test' : 'Live';
  }

  function cell(row, content) {
    var td = document.createElement('td');
    if (content instanceof Node) {
      td.appendChild(content);
    } else {
      td.textContent = content;
    }
    row.appendChild(td);
    return td;
  }

  // Fills `list` with one item per text (as text, never markup).
  function fillList(list, texts) {
    list.replaceChildren();
    texts.forEach(function (text) {
      var item = document.createElement('li');
      item.textContent = text;
      list.appendChild(item);
    });
    return list;
  }

  // The hook failures kept with a key (metadata `hook.<name>.error`), as sentences.
  function hookNotes(view) {
    var metadata = view.metadata || {};
    return Object.keys(metadata).sort().reduce(function (notes, name) {
      var hook = /^hook\.(.+)\.error$/.exec(name);
      if (hook) {
        notes.push(hook[1] + ' failed: ' + metadata[name]);
      }
      return notes;
    }, []);
  }

  function notesList(notes) {
    var list = document.createElement('ul');
    list.className = 'warnings hook-notes';
    return fillList(list, notes);
  }

  function code(text) {
    var element = document.createElement('code');
    element.textContent = text;
    return element;
  }

  // ---- the new key -------------------------------------------------------------

  function showNewKey(minted) {
    var input = $('new-key-value');
    input.value = minted.api_key;
    $('copy-status').textContent = '';
    var failures = minted.hook_errors || [];
    var warnings = fillList($('new-key-warnings'), failures.map(function (failure) {
      return 'The key works, but ' + failure.hook + ' failed: ' + failure.error;
    }));
    warnings.hidden = failures.length === 0;
    $('new-key').hidden = false;
    input.focus();
    input.select();
  }

  function forgetNewKey() {
    $('new-key-value').value = '';
    $('copy-status').textContent = '';
    $('new-key-warnings').replaceChildren();
    $('new-key').hidden = true;
  }

  function copyByHand(input) {
    input.focus();
    input.select();
    try {
      return document.execCommand('copy');
    } catch (e) {
      return false;
    }
  }

  function copyKey() {
    var input = $('new-key-value');
    var status = $('copy-status');
    if (!input.value) {
      return;
    }
    var done = function (ok) {
      status.textContent = ok ? 'Copied' : 'Could not copy: select the key and copy it by hand.';
    };
    if (navigator.clipboard && typeof navigator.clipboard.writeText === 'function') {
      // Some browsers never settle the promise without a permission: fall back after 1 s.
      var timeout = new Promise(function (resolve, reject) {
        setTimeout(function () { reject(new Error('timeout')); }, 1000);
      });
      Promise.race([navigator.clipboard.writeText(input.value), timeout]).then(
        function () { done(true); },
        function () { done(copyByHand(input)); }
      );
    } else {
      done(copyByHand(input));
    }
  }

  // ---- confirmation ------------------------------------------------------------

  var pending = null;

  function confirmThen(text, action) {
    var dialog = $('confirm-dialog');
    if (typeof dialog.showModal !== 'function') {
      if (window.confirm(text)) {
        action();
      }
      return;
    }
    $('confirm-text').textContent = text;
    pending = action;
    dialog.showModal();
  }

  function closeDialog() {
    var dialog = $('confirm-dialog');
    if (dialog.open) {
      dialog.close();
    }
  }

  // ---- one active key ----------------------------------------------------------

  var activeKey = null;

  function labelled(list, label, value) {
    var dt = document.createElement('dt');
    dt.textContent = label;
    var dd = document.createElement('dd');
    dd.appendChild(value);
    list.appendChild(dt);
    list.appendChild(dd);
    return dd;
  }

  function renderOne(view) {
    activeKey = view;
    var status = $('key-status');
    var retiring = $('retiring');
    status.replaceChildren();
    retiring.replaceChildren();
    if (!view) {
      status.textContent = 'No key';
      retiring.hidden = true;
      $('generate').disabled = false;
      $('generate-message').textContent = '';
      $('key-actions').hidden = true;
      return;
    }
    var list = document.createElement('dl');
    list.className = 'key-facts';
    var prefix = code(view.prefix);
    prefix.id = 'key-prefix';
    labelled(list, 'Prefix', prefix);
    labelled(list, 'Status', document.createTextNode(statusText(view)));
    labelled(list, 'Created', timeElement(view.created_at, '')).id = 'key-created';
    labelled(list, 'Last used', timeElement(view.last_used_at, 'never')).id = 'key-last-used';
    labelled(list, 'Expires', timeElement(view.expires_at, 'never')).id = 'key-expires';
    var notes = hookNotes(view);
    if (notes.length) {
      labelled(list, 'Notes', notesList(notes)).id = 'key-notes';
    }
    status.appendChild(list);
    (view.retiring || []).forEach(function (old) {
      var item = document.createElement('li');
      item.appendChild(code(old.prefix));
      item.appendChild(document.createTextNode(' keeps working until '));
      item.appendChild(timeElement(old.revoked_at, ''));
      item.appendChild(document.createTextNode(' (Retiring)'));
      retiring.appendChild(item);
    });
    retiring.hidden = retiring.childElementCount === 0;
    $('generate').disabled = true;
    $('generate-message').textContent = conflictMessage;
    $('key-actions').hidden = false;
  }

  function refreshOne() {
    if (!paths.one) {
      return Promise.resolve();
    }
    return call('GET', paths.one).then(renderOne, function (failure) {
      if (failure.status === 404) {
        renderOne(null);
      } else {
        showError(failure);
      }
    });
  }

  function generate() {
    clearError();
    // A key shown by an earlier action goes, whatever this one does.
    forgetNewKey();
    $('generate').disabled = true;
    call('POST', paths.one)
      .then(showNewKey, function (failure) {
        if (failure.status === 409) {
          conflictMessage = failure.message;
        }
        showError(failure);
      })
      .then(refreshAll);
  }

  function revokeOne() {
    if (!activeKey) {
      return;
    }
    var text = 'Revoke ' + activeKey.prefix + '? It stops working at once, and so does every ' +
      'other key of this account that still works. This cannot be undone.';
    confirmThen(text, function () {
      clearError();
      // A key shown by an earlier action goes, whatever this one does.
      forgetNewKey();
      return call('DELETE', paths.one)
        .then(function (answer) {
          ((answer && answer.revoked) || []).forEach(function (view) {
            revokedHere[view.id] = view;
          });
        }, showError)
        .then(refreshAll);
    });
  }

  function rotate() {
    clearError();
    // A key shown by an earlier action goes, whatever this one does.
    forgetNewKey();
    var grace = parseInt($('grace').value, 10) || 0;
    $('rotate').disabled = true;
    call('POST', paths.one + '/rotate', { grace_seconds: grace })
      .then(showNewKey, showError)
      .then(function () {
        $('rotate').disabled = false;
        return refreshAll();
      });
  }

  // ---- named keys --------------------------------------------------------------

  // Keys revoked from this page, shown as "Revoked" until a reload (the list endpoint
  // returns keys that are not revoked).
  var revokedHere = {};

  function renderNamed(keys) {
    var listed = {};
    keys.forEach(function (view) {
      listed[view.id] = true;
    });
    Object.keys(revokedHere).forEach(function (id) {
      if (!listed[id]) {
        keys.push(revokedHere[id]);
      }
    });
    var tbody = $('keys-table').tBodies[0];
    tbody.replaceChildren();
    keys.forEach(function (view) {
      var row = document.createElement('tr');
      row.setAttribute('data-key-id', view.id);
      row.setAttribute('data-prefix', view.prefix);
      cell(row, view.name || '(no name)');
      cell(row, code(view.prefix));
      cell(row, timeElement(view.created_at, ''));
      cell(row, timeElement(view.last_used_at, 'never'));
      cell(row, timeElement(view.expires_at, 'never'));
      cell(row, modeText(view.mode));
      cell(row, view.scopes && view.scopes.length ? view.scopes.join(' ') : 'none');
      var status = cell(row, statusText(view));
      status.className = 'status status-' + view.status;
      var notes = hookNotes(view);
      if (notes.length) {
        status.appendChild(notesList(notes));
      }
      var actions = cell(row, '');
      if (isLive(view)) {
        var button = document.createElement('button');
        button.type = 'button';
        button.className = 'revoke-row';
        button.textContent = 'Revoke';
        button.setAttribute('aria-label', 'Revoke ' + (view.name || view.prefix) + ' (' + view.prefix + ')');
        button.addEventListener('click', function () {
          revokeNamed(view);
        });
        actions.appendChild(button);
      }
      tbody.appendChild(row);
    });
    $('keys-empty').hidden = keys.length !== 0;
  }

  function refreshNamed() {
    if (!paths.named) {
      return Promise.resolve();
    }
    return call('GET', paths.named).then(function (answer) {
      renderNamed((answer && answer.keys) || []);
    }, showError);
  }

  function revokeNamed(view) {
    var label = view.name ? '"' + view.name + '" (' + view.prefix + ')' : view.prefix;
    confirmThen('Revoke ' + label + '? It stops working at once. This cannot be undone.', function () {
      clearError();
      // A key shown by an earlier action goes, whatever this one does.
      forgetNewKey();
      return call('DELETE', paths.named + '/' + encodeURIComponent(view.id))
        .then(function (revoked) {
          if (revoked && revoked.id) {
            revokedHere[revoked.id] = revoked;
          }
        }, showError)
        .then(refreshAll);
    });
  }

  // "2030-01-31" → the end of that day in the browser's time zone, as RFC 3339.
  function endOfDay(value) {
    var parts = value.split('-');
    if (parts.length !== 3) {
      return null;
    }
    var date = new Date(Number(parts[0]), Number(parts[1]) - 1, Number(parts[2]), 23, 59, 59);
    if (isNaN(date.getTime())) {
      return null;
    }
    return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  function createNamed(event) {
    event.preventDefault();
    clearError();
    // A key shown by an earlier action goes, whatever this one does.
    forgetNewKey();
    var form = $('create-named');
    var payload = {
      name: $('named-name').value.trim(),
      mode: $('named-mode').value
    };
    var scopes = $('named-scopes').value.split(/[\s,]+/).filter(function (s) {
      return s.length > 0;
    });
    if (scopes.length) {
      payload.scopes = scopes;
    }
    var expires = $('named-expires').value;
    if (expires) {
      var at = endOfDay(expires);
      if (!at) {
        showError('The expiry date is not a valid date.');
        return;
      }
      payload.expires_at = at;
    }
    var submit = $('named-create');
    submit.disabled = true;
    call('POST', paths.named, payload)
      .then(function (minted) {
        showNewKey(minted);
        form.reset();
      }, showError)
      .then(function () {
        submit.disabled = false;
        return refreshAll();
      });
  }

  // ---- start -------------------------------------------------------------------

  function refreshAll() {
    return Promise.all([refreshOne(), refreshNamed()]);
  }

  function start() {
    $('one-active').hidden = !paths.one;
    $('named').hidden = !paths.named;

    var logout = body.getAttribute('data-logout');
    if (logout) {
      var form = $('logout-form');
      form.setAttribute('action', logout);
      form.hidden = false;
    }

    $('generate').addEventListener('click', generate);
    $('revoke').addEventListener('click', revokeOne);
    $('rotate').addEventListener('click', rotate);
    $('copy').addEventListener('click', copyKey);
    $('new-key-done').addEventListener('click', forgetNewKey);
    $('create-named').addEventListener('submit', createNamed);

    var dialog = $('confirm-dialog');
    $('confirm-yes').addEventListener('click', function () {
      var action = pending;
      pending = null;
      closeDialog();
      if (action) {
        action();
      }
    });
    $('confirm-no').addEventListener('click', function () {
      pending = null;
      closeDialog();
    });
    dialog.addEventListener('close', function () {
      pending = null;
    });

    // The raw key must not outlive the page in the back/forward cache.
    window.addEventListener('pagehide', forgetNewKey);

    refreshAll();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
