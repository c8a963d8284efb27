(function () {
  'use strict';
  var errors = [];
  window.addEventListener('error', function (ev) {
    errors.push(String(ev.message));
    document.documentElement.setAttribute('data-js-errors', errors.join(' | '));
  });
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var images = JSON.parse(document.getElementById('report-images').textContent);
  var SVGNS = 'http://www.w3.org/2000/svg';
  var STATUSES = ['completed', 'early_stopped', 'failed', 'running', 'pending'];
  var VERDICTS = ['supported', 'contradicted', 'unverifiable'];
  var byId = {};
  data.nodes.forEach(function (n) { byId[n.id] = n; });
  var bestPath = {};
  data.best_path.forEach(function (id) { bestPath[id] = true; });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function score(x) { return (x === null || x === undefined) ? '-' : Number(x).toFixed(3); }
  function num(x, d) { return (x === null || x === undefined) ? '-' : Number(x).toFixed(d); }
  function statusCls(s) { return STATUSES.indexOf(s) >= 0 ? s : 'other'; }
  function ref(id) {
    if (id === null || id === undefined) { return '-'; }
    var a = el('a', '', '#' + id);
    a.href = '#node-' + id;
    return a;
  }

  // ---- tree layout: leaves take successive columns, a parent sits over its children ----
  var W = 104, H = 44, GX = 14, GY = 40, PAD = 12;
  var kids = {}, roots = [];
  data.nodes.forEach(function (n) {
    if (n.parent !== null && n.parent !== n.id && byId[n.parent]) {
      (kids[n.parent] = kids[n.parent] || []).push(n);
    } else {
      roots.push(n);
    }
  });
  var pos = {}, nextCol = 0, maxDepth = 0;
  function place(n, depth) {
    pos[n.id] = {depth: depth, col: null};
    maxDepth = Math.max(maxDepth, depth);
    var ch = (kids[n.id] || []).filter(function (c) { return !pos[c.id]; });
    ch.forEach(function (c) { place(c, depth + 1); });
    pos[n.id].col = ch.length ? (pos[ch[0].id].col + pos[ch[ch.length - 1].id].col) / 2 : nextCol++;
  }
  roots.forEach(function (r) { if (!pos[r.id]) { place(r, 0); } });
  data.nodes.forEach(function (n) { if (!pos[n.id]) { place(n, 0); } });  // cycles in a damaged journal

  function xy(id) {
    return {x: PAD + pos[id].col * (W + GX), y: PAD + pos[id].depth * (H + GY)};
  }
  var root = document.getElementById('tree-svg');
  var width = PAD * 2 + Math.max(1, nextCol) * (W + GX) - GX;
  var height = PAD * 2 + (maxDepth + 1) * (H + GY) - GY;
  // shrink a wide tree to fit its panel, down to 80% (then it scrolls)
  var avail = document.getElementById('tree-wrap').clientWidth || width;
  var scale = width > avail ? Math.max(0.8, avail / width) : 1;
  root.setAttribute('width', Math.round(width * scale));
  root.setAttribute('height', Math.round(height * scale));
  root.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  var edges = svg('g', {'class': 'edges'});
  var nodesG = svg('g', {'class': 'nodes'});
  root.appendChild(edges);
  root.appendChild(nodesG);

  data.nodes.forEach(function (n) {
    if (n.parent === null || !byId[n.parent] || n.parent === n.id) { return; }
    var a = xy(n.parent), b = xy(n.id);
    var x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y, my = (y1 + y2) / 2;
    var cls = 'edge';
    if (bestPath[n.id] && bestPath[n.parent]) { cls += ' best-path'; }
    if (n.resume_from !== n.parent) { cls += ' scratch'; }
    if (n.pruned || byId[n.parent].pruned) { cls += ' pruned'; }
    edges.appendChild(svg('path', {'class': cls, 'id': 'tree-edge-' + n.id,
      d: 'M' + x1 + ',' + y1 + ' C' + x1 + ',' + my + ' ' + x2 + ',' + my + ' ' + x2 + ',' + y2}));
  });

  data.nodes.forEach(function (n) {
    var p = xy(n.id), st = statusCls(n.status);
    var cls = 'tree-node st-' + st + (bestPath[n.id] ? ' best-path' : '') + (n.pruned ? ' pruned' : '');
    var g = svg('g', {'class': cls, id: 'tree-node-' + n.id, 'data-node': n.id, tabindex: 0,
      transform: 'translate(' + p.x + ',' + p.y + ')', role: 'button'});
    var fill = st === 'other' ? '#f6f8fa' : 'var(--f-' + st + ')';
    var stroke = st === 'other' ? '#8c959f' : 'var(--c-' + st + ')';
    g.appendChild(svg('rect', {width: W, height: H, rx: 7, ry: 7, style: 'fill:' + fill + ';stroke:' + stroke}));
    var t1 = svg('text', {x: 9, y: 18});
    t1.textContent = '#' + n.id + ' ' + n.kind + (data.best === n.id ? ' \u2605' : '');
    var t2 = svg('text', {x: 9, y: 36, 'class': 'sub'});
    if (n.best_val !== null) {
      t2.textContent = 'val ' + score(n.best_val);
    } else if (n.status === 'running') {
      t2.textContent = 'step ' + n.steps_done + '/' + n.max_steps;
    } else {
      t2.textContent = n.status.replace('_', ' ');
    }
    var title = svg('title', {});
    title.textContent = '#' + n.id + ' ' + n.kind + ', ' + n.status + (n.pruned ? ' (pruned)' : '') +
      ', val ' + score(n.best_val) + ', test ' + score(n.test_score);
    g.appendChild(title);
    g.appendChild(t1);
    g.appendChild(t2);
    g.addEventListener('click', function () { location.hash = 'node-' + n.id; });
    g.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); location.hash = 'node-' + n.id; }
    });
    nodesG.appendChild(g);
  });

  // ---- details panel ----
  var panel = document.getElementById('details');
  function kvTable(rows) {
    var t = el('table', 'kv');
    rows.forEach(function (r) {
      if (r[1] === null || r[1] === undefined || r[1] === '') { return; }
      var tr = el('tr');
      tr.appendChild(el('th', '', r[0]));
      var td = el('td');
      if (r[1] instanceof Node) { td.appendChild(r[1]); } else { td.textContent = String(r[1]); }
      tr.appendChild(td);
      t.appendChild(tr);
    });
    return t;
  }
  function section(title, id) {
    var s = el('section', 'sec');
    if (id) { s.id = id; }
    s.appendChild(el('h3', '', title));
    panel.appendChild(s);
    return s;
  }
  function frag(parts) {
    var s = el('span');
    parts.forEach(function (p) { s.appendChild(typeof p === 'string' ? document.createTextNode(p) : p); });
    return s;
  }
  function ckpts(c) {
    if (c.length <= 10) { return c.join(', '); }
    return c.length + ': ' + c.slice(0, 4).join(', ') + ', \u2026, ' + c.slice(-3).join(', ');
  }
  function img(key, alt) {
    var i = el('img');
    i.src = images[key];
    i.alt = alt;
    i.setAttribute('data-zoom', '1');
    return i;
  }

  function show(id) {
    var n = byId[id];
    if (!n) { return false; }
    panel.textContent = '';
    panel.setAttribute('data-node', String(n.id));
    var h = el('h2');
    h.id = 'details-title';
    h.appendChild(el('span', '', 'Node #' + n.id + ' \u00b7 ' + n.kind));
    h.appendChild(el('span', 'badge st-' + statusCls(n.status), n.status.replace('_', ' ')));
    if (data.best === n.id) { h.appendChild(el('span', 'badge star', '\u2605 best')); }
    else if (bestPath[n.id]) { h.appendChild(el('span', 'badge star', 'on best path')); }
    if (n.pruned) { h.appendChild(el('span', 'badge plain', 'pruned')); }
    panel.appendChild(h);

    var resume = n.resume_from === null ? 'from scratch' : frag([ref(n.resume_from), ' at step ' + n.resume_step]);
    var sub = Object.keys(n.val_subscores || {}).map(function (k) { return k + ' ' + score(n.val_subscores[k]); });
    var facts = [
      ['parent', n.parent === null ? 'none (a root)' : ref(n.parent)],
      ['resume point', resume],
      ['iteration', n.iteration],
      ['steps', n.steps_done + ' / ' + n.max_steps + ' (global ' + n.global_offset + '\u2013' +
        (n.global_offset + n.steps_done) + ')'],
      ['best val', n.best_val === null ? '-' : score(n.best_val) + ' at step ' + n.best_step],
      ['val subscores', sub.join(', ')],
      ['test', score(n.test_score)],
      ['checkpoints', ckpts(n.checkpoints || [])],
      ['agent', n.agent],
      ['debug of', n.debug_of === null ? null : ref(n.debug_of)],
      ['moved from', n.reparented_from === null ? null :
        frag(['child of ', ref(n.reparented_from), ' until its fix was lifted'])],
      ['attempts', n.attempts > 1 ? n.attempts : null],
      ['started', n.started], ['finished', n.finished]
    ];
    section('Phase').appendChild(kvTable(facts));

    var ds = section(n.diff_base === null ? 'Configuration' : 'Config diff vs ' +
      (n.diff_base === n.parent ? 'parent' : 'fixed failure') + ' #' + n.diff_base, 'details-diff');
    if (n.diff_base === null) {
      ds.appendChild(el('p', 'muted', 'Initial configuration \u03b8\u2080 (nothing to compare with).'));
    } else if (!n.diff.length) {
      ds.appendChild(frag(['Same configuration as ', ref(n.diff_base), '.']));
    } else {
      var t = el('table', 'data diff');
      var hr = el('tr');
      ['hyperparameter', '#' + n.diff_base, '#' + n.id].forEach(function (c) { hr.appendChild(el('th', '', c)); });
      t.appendChild(hr);
      n.diff.forEach(function (d) {
        var tr = el('tr');
        tr.appendChild(el('td', '', d[0]));
        tr.appendChild(el('td', 'num old', d[1]));
        tr.appendChild(el('td', 'num new', d[2]));
        t.appendChild(tr);
      });
      ds.appendChild(t);
    }
    var full = el('details');
    full.appendChild(el('summary', '', 'all hyperparameters (' + n.hparams.length + ')'));
    full.appendChild(kvTable(n.hparams));
    ds.appendChild(full);

    if (n.diagnosis) { section('Diagnosis').appendChild(el('p', 'text', n.diagnosis)); }
    if (n.rationale) { section('Rationale').appendChild(el('p', 'text', n.rationale)); }
    if (n.observations && n.observations.length) {
      var os = section('Observations (' + n.observations.length + ')', 'details-observations');
      n.observations.forEach(function (o) {
        var v = VERDICTS.indexOf(o.check) >= 0 ? o.check : 'other';
        var box = el('div', 'obs v-' + v);
        var head = el('div', 'head');
        head.appendChild(el('span', 'badge verdict verdict-' + v, o.check || 'unchecked'));
        head.appendChild(el('b', '', o.metric || ''));
        if (o.start_step !== undefined && o.start_step !== null) {
          head.appendChild(el('span', '', 'steps ' + o.start_step + '\u2013' + o.end_step));
        }
        box.appendChild(head);
        box.appendChild(el('div', 'claim', o.claim || ''));
        if (o.check_reason) { box.appendChild(el('div', 'why', o.check_reason)); }
        os.appendChild(box);
      });
    }
    if (n.stop_reason || n.error) {
      var es = section(n.error ? 'Error' : 'Stop reason');
      if (n.stop_reason) { es.appendChild(el('p', 'text', n.stop_reason)); }
      if (n.error) { es.appendChild(el('pre', 'err', n.error)); }
      if (n.unfixable) { es.appendChild(el('p', 'muted', 'The error analyzer marked this failure unfixable.')); }
    }
    var c = n.cost;
    section('Cost').appendChild(kvTable([
      ['wall', num(c.wall_s, 1) + ' s (' + num(c.wall_s / 3600, 3) + ' h)'],
      ['GPU-hours', num(c.gpu_h, 3)],
      ['agent calls', c.calls],
      ['agent tokens', c.tokens_in + ' in (' + c.cached_tokens + ' cached), ' + c.tokens_out + ' out'],
      ['agent cost', '$' + num(c.usd, 4)]
    ]));
    if (n.agent_calls && n.agent_calls.length) {
      var cs = section('LLM calls (' + n.agent_calls.length + ')');
      var ct = el('table', 'data');
      var chr = el('tr');
      ['file', 'role', 'verdict', 'tokens in/out', '$'].forEach(function (x) { chr.appendChild(el('th', '', x)); });
      ct.appendChild(chr);
      n.agent_calls.forEach(function (call) {
        var tr = el('tr');
        tr.appendChild(el('td', '', call.file));
        tr.appendChild(el('td', '', call.role || ''));
        tr.appendChild(el('td', '', call.verdict || call.error || ''));
        tr.appendChild(el('td', 'num', (call.tokens_in || 0) + ' / ' + (call.tokens_out || 0)));
        tr.appendChild(el('td', 'num', call.usd === null || call.usd === undefined ? '-' : num(call.usd, 4)));
        ct.appendChild(tr);
      });
      cs.appendChild(ct);
    }
    var ps = section('Metrics', 'details-plots');
    if (n.plot && images[n.plot]) {
      ps.appendChild(img(n.plot, 'metric curves of node #' + n.id));
    } else {
      ps.appendChild(el('p', 'muted', 'No metric plot for this node.'));
    }
    if (n.overlays.length) {
      var more = n.overlays_total > n.overlays.length ? ' (newest ' + n.overlays.length + ' of ' +
        n.overlays_total + ')' : '';
      ps.appendChild(el('h3', '', 'Early-stopper overlays' + more));
      n.overlays.forEach(function (o) {
        if (images[o.img]) {
          ps.appendChild(img(o.img, 'overlay ' + o.name));
          ps.appendChild(el('div', 'muted', o.name));
        }
      });
    }

    Array.prototype.forEach.call(document.querySelectorAll('.selected'), function (e) {
      e.classList.remove('selected');
    });
    var g = document.getElementById('tree-node-' + n.id);
    if (g) { g.classList.add('selected'); }
    var row = document.getElementById('node-table-node-' + n.id);
    if (row) { row.classList.add('selected'); }
    return true;
  }

  function fromHash() {
    var m = /^#node-(\d+)$/.exec(location.hash);
    return m ? Number(m[1]) : null;
  }
  window.addEventListener('hashchange', function () {
    var id = fromHash();
    if (id !== null && show(id)) {
      var top = panel.getBoundingClientRect().top;
      if (top < 0 || top > window.innerHeight * 0.8) {
        document.getElementById('tree-section').scrollIntoView({block: 'start'});
      }
    }
  });
  var initial = fromHash();
  if (initial === null || !show(initial)) {
    if (data.best !== null) { show(data.best); }
    else if (data.nodes.length) { show(data.nodes[0].id); }
  }

  // ---- per-node table: click a row to select, click a header to sort ----
  Array.prototype.forEach.call(document.querySelectorAll('tr.node-row'), function (tr) {
    tr.addEventListener('click', function (ev) {
      if (ev.target.tagName !== 'A') { location.hash = 'node-' + tr.getAttribute('data-node'); }
    });
  });
  var table = document.getElementById('node-table');
  if (table) {
    var tbody = table.tBodies[0];
    var sortCol = -1, asc = true;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.title = 'sort';
      th.addEventListener('click', function () {
        asc = sortCol === i ? !asc : true;
        sortCol = i;
        var rows = Array.prototype.slice.call(tbody.querySelectorAll('tr.node-row'));
        var key = function (tr) {
          var t = tr.cells[i].textContent.replace(/^#/, '').trim();
          var v = parseFloat(t);
          return isNaN(v) || !/^[-+0-9.]/.test(t) ? t : v;
        };
        rows.sort(function (a, b) {
          var x = key(a), y = key(b), r;
          if (typeof x === 'number' && typeof y === 'number') { r = x - y; }
          else if (typeof x === 'number') { r = -1; }
          else if (typeof y === 'number') { r = 1; }
          else { r = x < y ? -1 : x > y ? 1 : 0; }
          return asc ? r : -r;
        });
        rows.forEach(function (tr) { tbody.appendChild(tr); });
        Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
          h.classList.remove('sorted-asc', 'sorted-desc');
        });
        th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
      });
    });
  }

  // ---- click an image to see it large ----
  var box = document.getElementById('lightbox');
  var boxImg = box.querySelector('img');
  document.addEventListener('click', function (ev) {
    var t = ev.target;
    if (t && t.tagName === 'IMG' && t.getAttribute('data-zoom') && t !== boxImg) {
      boxImg.src = t.src;
      box.classList.add('open');
    } else if (box.classList.contains('open') && (t === box || t === boxImg)) {
      box.classList.remove('open');
    }
  });
  document.addEventListener('keydown', function (ev) {
    if (ev.key === 'Escape') { box.classList.remove('open'); }
  });

  document.documentElement.setAttribute('data-report-ready', '1');
})();
