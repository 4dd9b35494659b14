// The key dashboard (tower-api-key). Plain JavaScript, no dependencies: it reads the
// JSON endpoints' paths from <body data-*> and calls them with fetch (same origin,
// the session cookie). A raw key lives only in #new-key-value's value, never in
// storage, the URL or the page's markup; data from the server is set as text only.
//
// One view of the owner's keys: with the named shape mounted, the table of every key
// (each row's buttons act on that row's id only); with the one-active shape alone,
// its card. Every rotate and revoke names the key it was shown for.
'use strict';

(function () {
  var body = document.body;
  var paths = {
    one: body.getAttribute('data-one-active') || '',
    activeKey: body.getAttribute('data-active-key') || '',
    named: body.getAttribute('data-named') || ''
  };
  // The table when the named shape is mounted, else the one-active card.
  var showTable = paths.named !== '';
  var showCard = !showTable && paths.one !== '';
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
      // The detailed answers, whichever format the named-keys routes speak.
      headers: { 'Accept': 'application/vnd.tower-api-key.detailed+json, application/json' }
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

  // What is kept with a key that its owner must see, as sentences: a leak report
  // (metadata `leak.reported_at`, `leak.url`) and hook failures (`hook.<name>.error`).
  function keyNotes(view) {
    var metadata = view.metadata || {};
    var notes = [];
    if (metadata['leak.reported_at']) {
      notes.push('Reported leaked on ' + metadata['leak.reported_at'] +
        (metadata['leak.url'] ? ' (found at ' + metadata['leak.url'] + ')' : '') +
        ': replace it.');
    }
    return Object.keys(metadata).sort().reduce(function (notes, name) {
      var hook = /^hook\.(.+)\.error$/.exec(name);
      if (hook) {
        notes.push(hook[1] + ' failed: ' + metadata[name]);
      }
      return notes;
    }, notes);
  }

  function notesList(notes) {
    var list = document.createElement('ul');
    list.className = 'warnings hook-notes';
    return fillList(list, notes);
  }

  // "100/10s" → "100 requests / 10 s"; anything else as it came.
  function rateText(rate) {
    var parts = /^(\d+)\/(\d*)s$/.exec(String(rate));
    if (!parts) {
      return String(rate);
    }
    var requests = parts[1] === '1' ? '1 request' : parts[1] + ' requests';
    return requests + ' / ' + (parts[2] || '1') + ' s';
  }

  // The key's bounds as sentences: where it may be used from, for what, how often.
  function limitTexts(view) {
    var restrictions = view.restrictions || {};
    var texts = [];
    var ips = restrictions.ips || [];
    var origins = restrictions.origins || [];
    var routes = restrictions.routes || [];
    if (ips.length) {
      texts.push('Limited to ' + ips.join(', '));
    }
    if (origins.length) {
      texts.push('Only from ' + origins.join(', '));
    }
    if (routes.length) {
      texts.push('Only ' + routes.join(', '));
    }
    if (view.rate_limit) {
      texts.push(rateText(view.rate_limit));
    }
    return texts;
  }

  // The bounds as a list, or "none".
  function limitsElement(view) {
    var texts = limitTexts(view);
    if (!texts.length) {
      return document.createTextNode('none');
    }
    var list = document.createElement('ul');
    list.className = 'limits';
    return fillList(list, texts);
  }

  function code(text) {
    var element = document.createElement('code');
    element.textContent = text;
    return element;
  }

  // ---- usage -------------------------------------------------------------------

  // "12 admitted, 3 refused", or the fallback when the store keeps no usage.
  function countsText(counts) {
    if (!counts) {
      return 'not counted';
    }
    return counts.admitted + ' admitted, ' + counts.refused + ' refused';
  }

  // The key's totals, as the views carry them: the last 24 hours, then 30 days.
  function totalsElement(view) {
    if (!view.usage) {
      return document.createTextNode('not counted');
    }
    var list = document.createElement('ul');
    list.className = 'usage-totals';
    return fillList(list, [
      '24 h: ' + countsText(view.usage.last_24_hours),
      '30 d: ' + countsText(view.usage.last_30_days)
    ]);
  }

  var SVG = 'http://www.w3.org/2000/svg';
  var charts = 0;

  function svg(name, attributes) {
    var element = document.createElementNS(SVG, name);
    Object.keys(attributes || {}).forEach(function (key) {
      element.setAttribute(key, String(attributes[key]));
    });
    return element;
  }

  function bucketLabel(iso, step) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) {
      return iso;
    }
    var text = date.toISOString();
    return step === 'day' ? text.slice(0, 10) : text.slice(0, 16).replace('T', ' ') + ' UTC';
  }

  // A bar chart of a usage answer, drawn here (inline SVG, no library): per bucket,
  // admitted requests as a solid bar and refused ones stacked on it, hatched, so the
  // two read apart without colour; a legend in words, a title on every bar, and the
  // same numbers in a table for screen readers.
  function usageChart(usage, title) {
    charts += 1;
    var id = 'usage-chart-' + charts;
    var figure = document.createElement('figure');
    figure.className = 'usage-chart';
    figure.setAttribute('data-step', usage.step);
    var buckets = usage.buckets || [];
    var most = buckets.reduce(function (m, b) {
      return Math.max(m, b.admitted + b.refused);
    }, 0);
    var width = 480;
    var height = 100;
    var top = 14;
    var slot = width / Math.max(buckets.length, 1);
    var root = svg('svg', {
      viewBox: '0 0 ' + width + ' ' + (height + top + 16),
      role: 'img',
      'aria-labelledby': id + '-caption',
      'class': 'usage-svg'
    });
    var defs = svg('defs');
    var pattern = svg('pattern', {
      id: id + '-hatch',
      width: 6,
      height: 6,
      patternUnits: 'userSpaceOnUse',
      patternTransform: 'rotate(45)'
    });
    pattern.appendChild(svg('rect', { width: 6, height: 6, 'class': 'hatch-ground' }));
    pattern.appendChild(svg('line', { x1: 0, y1: 0, x2: 0, y2: 6, 'class': 'hatch-line' }));
    defs.appendChild(pattern);
    root.appendChild(defs);
    var scale = most > 0 ? height / most : 0;
    buckets.forEach(function (bucket, i) {
      var group = svg('g', { 'class': 'usage-bar' });
      var tip = svg('title');
      tip.textContent = bucketLabel(bucket.start, usage.step) + ': ' +
        bucket.admitted + ' admitted, ' + bucket.refused + ' refused';
      group.appendChild(tip);
      var x = i * slot + slot * 0.15;
      var w = Math.max(slot * 0.7, 1);
      var admitted = bucket.admitted * scale;
      var refused = bucket.refused * scale;
      group.appendChild(svg('rect', {
        x: x, y: top + height - admitted, width: w, height: admitted, 'class': 'bar-admitted'
      }));
      group.appendChild(svg('rect', {
        x: x, y: top + height - admitted - refused, width: w, height: refused,
        fill: 'url(#' + id + '-hatch)', 'class': 'bar-refused'
      }));
      root.appendChild(group);
    });
    root.appendChild(svg('line', {
      x1: 0, y1: top + height, x2: width, y2: top + height, 'class': 'axis'
    }));
    var peak = svg('text', { x: 0, y: 10, 'class': 'axis-label' });
    peak.textContent = 'most: ' + most;
    root.appendChild(peak);
    if (buckets.length) {
      var first = svg('text', { x: 0, y: top + height + 13, 'class': 'axis-label' });
      first.textContent = bucketLabel(buckets[0].start, usage.step);
      var last = svg('text', {
        x: width, y: top + height + 13, 'text-anchor': 'end', 'class': 'axis-label'
      });
      last.textContent = bucketLabel(buckets[buckets.length - 1].start, usage.step);
      root.appendChild(first);
      root.appendChild(last);
    }
    var caption = document.createElement('figcaption');
    caption.id = id + '-caption';
    caption.textContent = title + ': ' + countsText(usage.total);
    var legend = document.createElement('p');
    legend.className = 'usage-legend';
    [['swatch-admitted', 'Admitted (solid)'], ['swatch-refused', 'Refused (hatched)']]
      .forEach(function (entry) {
        var swatch = document.createElement('span');
        swatch.className = 'swatch ' + entry[0];
        legend.appendChild(swatch);
        legend.appendChild(document.createTextNode(' ' + entry[1] + ' '));
      });
    figure.appendChild(caption);
    figure.appendChild(root);
    figure.appendChild(legend);
    figure.appendChild(usageTable(usage, title));
    return figure;
  }

  // The chart's numbers, for screen readers (visually hidden).
  function usageTable(usage, title) {
    var table = document.createElement('table');
    table.className = 'visually-hidden usage-table';
    var caption = document.createElement('caption');
    caption.textContent = title;
    table.appendChild(caption);
    var head = document.createElement('tr');
    ['Start', 'Admitted', 'Refused'].forEach(function (name) {
      var th = document.createElement('th');
      th.scope = 'col';
      th.textContent = name;
      head.appendChild(th);
    });
    table.appendChild(head);
    (usage.buckets || []).forEach(function (bucket) {
      var row = document.createElement('tr');
      cell(row, bucketLabel(bucket.start, usage.step));
      cell(row, String(bucket.admitted));
      cell(row, String(bucket.refused));
      table.appendChild(row);
    });
    return table;
  }

  // Both charts of a key (the last 24 hours by hour, the last 30 days by day) into
  // `box`, read from `path` (its usage route; `query` adds to its query string).
  function loadUsage(box, path, query) {
    box.replaceChildren(document.createTextNode('Loading usage…'));
    var join = query ? '&' : '';
    return Promise.all([
      call('GET', path + '?' + query),
      call('GET', path + '?' + query + join + 'step=day')
    ]).then(function (answers) {
      box.replaceChildren(
        usageChart(answers[0], 'Last 24 hours, by hour'),
        usageChart(answers[1], 'Last 30 days, by day')
      );
    }, function (failure) {
      box.replaceChildren(document.createTextNode('Usage could not be read.'));
      showError(failure);
    });
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

  // Asks before `action` runs: `ask` is { title, text, yes, grace }. With `grace`,
  // the dialog offers the grace period and `action` gets the seconds chosen.
  function confirmThen(ask, action) {
    var dialog = $('confirm-dialog');
    var graceSelect = $('confirm-grace');
    if (typeof dialog.showModal !== 'function') {
      if (window.confirm(ask.text)) {
        action(parseInt(graceSelect.value, 10) || 0);
      }
      return;
    }
    $('confirm-title').textContent = ask.title;
    $('confirm-text').textContent = ask.text;
    $('confirm-grace-row').hidden = !ask.grace;
    graceSelect.value = '86400';
    var yes = $('confirm-yes');
    yes.textContent = ask.yes;
    yes.className = ask.grace ? '' : 'danger';
    pending = function () {
      action(parseInt(graceSelect.value, 10) || 0);
    };
    dialog.showModal();
  }

  function closeDialog() {
    var dialog = $('confirm-dialog');
    if (dialog.open) {
      dialog.close();
    }
  }

  function revokeAsk(label, more) {
    return {
      title: 'Revoke key?',
      text: 'Revoke ' + label + '? It stops working at once' + (more || '') +
        '. This cannot be undone.',
      yes: 'Revoke'
    };
  }

  function rotateAsk(label) {
    return {
      title: 'Rotate key?',
      text: 'Rotate ' + label + '? A new key with the same name, scopes and limits ' +
        'is shown once; the old key keeps working for the time you choose.',
      yes: 'Rotate',
      grace: true
    };
  }

  // ---- one active key (the one-active shape alone) -------------------------------

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

  function revokeButton(label, onClick) {
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'revoke-key';
    button.textContent = 'Revoke';
    button.setAttribute('aria-label', 'Revoke ' + label);
    button.addEventListener('click', onClick);
    return button;
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
    labelled(list, 'Limits', limitsElement(view)).id = 'key-limits';
    labelled(list, 'Requests', totalsElement(view)).id = 'key-usage';
    var notes = keyNotes(view);
    if (notes.length) {
      labelled(list, 'Notes', notesList(notes)).id = 'key-notes';
    }
    status.appendChild(list);
    if (view.usage) {
      var charts = document.createElement('div');
      charts.id = 'key-usage-charts';
      charts.className = 'usage-charts';
      status.appendChild(charts);
      loadUsage(charts, paths.one + '/usage', 'id=' + encodeURIComponent(view.id));
    }
    (view.retiring || []).forEach(function (old) {
      var item = document.createElement('li');
      item.setAttribute('data-key-id', old.id);
      item.setAttribute('data-prefix', old.prefix);
      item.appendChild(code(old.prefix));
      item.appendChild(document.createTextNode(' keeps working until '));
      item.appendChild(timeElement(old.revoked_at, ''));
      item.appendChild(document.createTextNode(' (Retiring) '));
      item.appendChild(revokeButton(old.prefix, function () {
        revokeOneKey(old);
      }));
      retiring.appendChild(item);
    });
    retiring.hidden = retiring.childElementCount === 0;
    $('generate').disabled = true;
    $('generate-message').textContent = conflictMessage;
    $('key-actions').hidden = false;
  }

  // The page's own status read: 200 with {"key": null} when there is no key.
  function refreshOne() {
    return call('GET', paths.activeKey).then(function (answer) {
      renderOne((answer && answer.key) || null);
    }, showError);
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
      .then(refresh);
  }

  // Revokes exactly `view` (the body names it: without one, the endpoint would revoke
  // every key of the account).
  function revokeOneKey(view) {
    confirmThen(revokeAsk(view.prefix), function () {
      clearError();
      // A key shown by an earlier action goes, whatever this one does.
      forgetNewKey();
      return call('DELETE', paths.one, { id: view.id })
        .then(null, showError)
        .then(refresh);
    });
  }

  function revokeOne() {
    if (activeKey) {
      revokeOneKey(activeKey);
    }
  }

  // Rotates the key shown, only if it is still the active one (else 409).
  function rotateOne() {
    if (!activeKey) {
      return;
    }
    clearError();
    // A key shown by an earlier action goes, whatever this one does.
    forgetNewKey();
    var grace = parseInt($('grace').value, 10) || 0;
    $('rotate').disabled = true;
    call('POST', paths.one + '/rotate', { grace_seconds: grace, id: activeKey.id })
      .then(showNewKey, showError)
      .then(function () {
        $('rotate').disabled = false;
        return refresh();
      });
  }

  // ---- the table of every key (the named shape) ---------------------------------

  function keyLabel(view) {
    return view.name ? '"' + view.name + '" (' + view.prefix + ')' : view.prefix;
  }

  function rowButton(className, text, label, onClick) {
    var button = document.createElement('button');
    button.type = 'button';
    button.className = className;
    button.textContent = text;
    button.setAttribute('aria-label', text + ' ' + label);
    button.addEventListener('click', onClick);
    return button;
  }

  function renderKeys(keys) {
    var tbody = $('keys-table').tBodies[0];
    tbody.replaceChildren();
    keys.forEach(function (view) {
      var row = document.createElement('tr');
      row.setAttribute('data-key-id', view.id);
      row.setAttribute('data-prefix', view.prefix);
      row.className = isLive(view) ? 'key-live' : 'key-gone';
      cell(row, view.name || '(no name)');
      cell(row, code(view.prefix));
      cell(row, timeElement(view.created_at, ''));
      cell(row, timeElement(view.last_used_at, 'never'));
      cell(row, timeElement(view.expires_at, 'never'));
      cell(row, modeText(view.mode));
      cell(row, view.scopes && view.scopes.length ? view.scopes.join(' ') : 'none');
      cell(row, limitsElement(view)).className = 'limits-cell';
      cell(row, totalsElement(view)).className = 'usage-cell';
      var status = cell(row, statusText(view));
      status.className = 'status status-' + view.status;
      if (view.status === 'retiring' && view.revoked_at) {
        status.appendChild(document.createTextNode(' until '));
        status.appendChild(timeElement(view.revoked_at, ''));
      } else if (view.status === 'revoked' && view.revoked_at) {
        status.appendChild(document.createTextNode(' '));
        status.appendChild(timeElement(view.revoked_at, ''));
      }
      var notes = keyNotes(view);
      if (notes.length) {
        status.appendChild(notesList(notes));
      }
      var actions = cell(row, '');
      actions.className = 'actions';
      var label = view.name ? view.name + ' (' + view.prefix + ')' : view.prefix;
      if (view.status === 'active') {
        actions.appendChild(rowButton('rotate-key', 'Rotate', label, function () {
          rotateKey(view);
        }));
      }
      if (isLive(view)) {
        actions.appendChild(rowButton('revoke-key', 'Revoke', label, function () {
          revokeKey(view);
        }));
      }
      tbody.appendChild(row);
      if (view.usage) {
        var details = document.createElement('tr');
        details.className = 'usage-row';
        details.hidden = true;
        // A block inside the cell: the cell itself stays a table cell, spanning the row.
        var box = document.createElement('div');
        box.className = 'usage-charts';
        cell(details, box).colSpan = row.childElementCount;
        var toggle = rowButton('usage-key', 'Usage', label, function () {
          details.hidden = !details.hidden;
          toggle.setAttribute('aria-expanded', String(!details.hidden));
          if (!details.hidden) {
            loadUsage(box, keyPath(view) + '/usage', '');
          }
        });
        toggle.setAttribute('aria-expanded', 'false');
        actions.insertBefore(toggle, actions.firstChild);
        tbody.appendChild(details);
      }
    });
    $('keys-empty').hidden = keys.length !== 0;
  }

  function refreshKeys() {
    return call('GET', paths.named).then(function (answer) {
      renderKeys((answer && answer.keys) || []);
    }, showError);
  }

  function keyPath(view) {
    return paths.named + '/' + encodeURIComponent(view.id);
  }

  // Revokes this row's key, and no other.
  function revokeKey(view) {
    confirmThen(revokeAsk(keyLabel(view)), function () {
      clearError();
      // A key shown by an earlier action goes, whatever this one does.
      forgetNewKey();
      return call('DELETE', keyPath(view))
        .then(null, showError)
        .then(refresh);
    });
  }

  // Rotates this row's key, with the grace period chosen in the dialog.
  function rotateKey(view) {
    confirmThen(rotateAsk(keyLabel(view)), function (grace) {
      clearError();
      // A key shown by an earlier action goes, whatever this one does.
      forgetNewKey();
      return call('POST', keyPath(view) + '/rotate', { grace_seconds: grace })
        .then(showNewKey, showError)
        .then(refresh);
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
        return refresh();
      });
  }

  // ---- start -------------------------------------------------------------------

  function refresh() {
    if (showTable) {
      return refreshKeys();
    }
    if (showCard) {
      return refreshOne();
    }
    return Promise.resolve();
  }

  function start() {
    $('one-active').hidden = !showCard;
    $('named').hidden = !showTable;

    var logout = body.getAttribute('data-logout');
    if (logout) {
      var form = $('logout-form');
      form.setAttribute('action', logout);
      form.hidden = false;
    }

    $('generate').addEventListener('click', generate);
    $('revoke').addEventListener('click', revokeOne);
    $('rotate').addEventListener('click', rotateOne);
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

    refresh();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
