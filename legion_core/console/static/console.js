// LEGION operator console: the page side of docs/console.md.
//
// The page is an observer with a few buttons. Everything it shows comes from the runtime's state stream
// (/ws); nothing here decides what the arm does. Rules that shape this file:
//   * Server text is never parsed as HTML: it goes through textContent, or through esc() before the tiny
//     Markdown renderer builds markup.
//   * Only the newest state is rendered, once per animation frame; intermediate states are dropped, so a
//     slow page never falls behind the arm.
//   * Lists are rebuilt only when their content changed (a key string per list), so 10 Hz of states
//     does not churn the DOM.
//   * The e-stop is never gated: no token, and if the websocket is down it is tried over HTTP too.
'use strict';

(function () {
  const RECONNECT_MS = 1000;      // docs: reconnect every 1 s when closed
  const STALE_MS = 2000;          // docs: no state for 2 s = connection lost
  // A socket that stays open but silent (a half-open TCP connection after a network drop) can take the
  // browser minutes to notice; after this long without a state we close it ourselves to reconnect.
  const SILENT_RECONNECT_MS = 5000;
  const CAMERA_MIN_PERIOD_MS = 200;  // at most 5 camera frames a second
  const RUNS_PERIOD_MS = 5000;

  const BANNER_LINK_LOST =
    "Connection to the runtime lost. What the arm does now is what the runtime's watchdogs define: " +
    'a running command goes on until it ends, is cancelled or an e-stop latches; ' +
    'the hardware e-stop needs no network.';
  const BANNER_RUNTIME_LOST =
    "The console does not hear the runtime's safety layer (sim2real_node): ";

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ small DOM helpers

  // Escape text for the few places where markup is built from strings (the Markdown card).
  function esc(s) {
    return String(s)
      .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
  }

  // Write only when the text changed: cheap at 10 Hz and keeps text selection stable.
  function setText(el, s) {
    const v = s === null || s === undefined ? '' : String(s);
    if (el.textContent !== v) el.textContent = v;
  }

  function setHidden(el, hidden) {
    if (el.hidden !== hidden) el.hidden = hidden;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // Rebuild a container's children only when `key` differs from the last build.
  const listKeys = new WeakMap();
  function rebuildIfChanged(container, key, build) {
    if (listKeys.get(container) === key) return;
    listKeys.set(container, key);
    container.replaceChildren(...build());
  }

  function fmtTime(t) {
    if (t === null || t === undefined || !isFinite(t)) return '–';
    const d = new Date(t * 1000);
    const p = (n) => String(n).padStart(2, '0');
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }

  function fmtDateTime(t) {
    if (t === null || t === undefined || !isFinite(t)) return '–';
    const d = new Date(t * 1000);
    const p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + fmtTime(t);
  }

  function fmtAge(s) {
    if (s === null || s === undefined || !isFinite(s)) return '–';
    return s < 10 ? s.toFixed(2) + ' s' : s.toFixed(0) + ' s';
  }

  function fmtDur(s) {
    return s === null || s === undefined || !isFinite(s) ? '' : Number(s).toFixed(1) + ' s';
  }

  // Status colours by level name: OK green, WARN amber, HOLD orange, ESTOP/ERROR red.
  function levelClass(level) {
    const l = String(level || '').toUpperCase();
    if (l === 'OK') return 'lvl-ok';
    if (l === 'WARN' || l === 'WARNING') return 'lvl-warn';
    if (l === 'HOLD') return 'lvl-hold';
    if (l === 'ESTOP' || l === 'ERROR' || l === 'FATAL' || l === 'FAULT') return 'lvl-error';
    if (l === 'STALE') return 'lvl-warn';
    return 'lvl-none';
  }

  function setLevelClass(e, level, base) {
    const cls = (base ? base + ' ' : '') + levelClass(level);
    if (e.className !== cls) e.className = cls;
  }

  // Newest first regardless of the order the server sent (null times last, otherwise stable).
  function newestFirst(items) {
    return (items || []).map((x, i) => [x, i]).sort((a, b) => {
      const ta = a[0] && typeof a[0].t === 'number' && isFinite(a[0].t) ? a[0].t : -Infinity;
      const tb = b[0] && typeof b[0].t === 'number' && isFinite(b[0].t) ? b[0].t : -Infinity;
      return tb - ta || a[1] - b[1];
    }).map((p) => p[0]);
  }

  // ------------------------------------------------------------------ connection

  let ws = null;
  let reconnectTimer = null;
  const pageStart = performance.now();
  let lastStateAt = pageStart;             // grace from page load before the banner shows
  let everConnected = false;
  let socketOpen = false;
  let openedAt = 0;                        // when the current socket opened (silence counts from here too)
  let token = null;                        // only in memory: never localStorage, never the URL
  let nextId = 1;
  const pending = new Map();               // id -> {kind, text}
  let newestState = null;                  // the newest state received, not yet rendered
  let latestRendered = null;               // the state the page shows now

  function wsUrl() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return proto + '//' + location.host + '/ws';
  }

  function connect() {
    reconnectTimer = null;
    let sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = () => {
      if (ws !== sock) return;
      socketOpen = true;
      openedAt = performance.now();
      // The server forgets a socket's auth when it closes: re-send the token the user gave.
      if (token !== null && token !== '') sendRaw({type: 'auth', token: token}, 'auth');
      updateConnectionUi();
    };
    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (!msg || typeof msg !== 'object') return;
      if (msg.type === 'state') onState(msg);
      else if (msg.type === 'reply') onReply(msg);
    };
    sock.onclose = () => {
      if (ws === sock) dropSocket();
    };
    sock.onerror = () => { /* onclose follows and handles it */ };
  }

  // Forget the current socket (closed, or given up on) and schedule the next try.
  function dropSocket() {
    ws = null;
    socketOpen = false;
    // Replies to what was in flight will never come on a new socket.
    for (const [id, p] of pending) {
      if (p.kind !== 'auth') showReply({id: id, ok: false, message: p.kind + ': connection closed before the runtime answered'}, p);
    }
    pending.clear();
    updateConnectionUi();
    scheduleReconnect();
  }

  function scheduleReconnect() {
    if (reconnectTimer === null) reconnectTimer = setTimeout(connect, RECONNECT_MS);
  }

  // Send a message; returns the id used, or null when the socket is not open.
  function sendRaw(msg, kind, extra) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return null;
    msg.id = nextId++;   // auth gets an id too, so its reply is matched like the others
    pending.set(msg.id, Object.assign({kind: kind}, extra || {}));
    ws.send(JSON.stringify(msg));
    return msg.id;
  }

  function send(msg, kind, extra) {
    const id = sendRaw(msg, kind, extra);
    if (id === null) {
      showReply({ok: false, message: kind + ': not connected to the console server, nothing sent'}, {kind: kind});
    }
    return id;
  }

  function stale() {
    return !socketOpen || performance.now() - lastStateAt > STALE_MS;
  }

  // Watchdog: the banner must appear even when no message arrives to trigger a render.
  setInterval(() => {
    updateConnectionUi();
    if (socketOpen && ws && performance.now() - Math.max(lastStateAt, openedAt) > SILENT_RECONNECT_MS) {
      const dead = ws;
      // onclose may be slow on a dead link: detach first (its onclose is then ignored) and reconnect.
      dropSocket();
      try { dead.close(); } catch (e) { /* already closing */ }
    }
  }, 250);

  let lastUiKey = '';
  function updateConnectionUi() {
    const lost = stale();
    const st = latestRendered;
    const runtimeLost = !lost && st && st.runtime && st.runtime.connected === false;
    const key = lost + '|' + runtimeLost + '|' + (runtimeLost ? st.runtime.lost_reason : '') + '|' +
      socketOpen + '|' + everConnected;
    if (key === lastUiKey) return;
    lastUiKey = key;

    document.body.classList.toggle('disconnected', lost);
    document.body.classList.toggle('runtime-lost', !!runtimeLost);
    const banner = $('connection-banner');
    // Before the very first state, a short grace avoids flashing "lost" while the socket opens.
    const showLost = lost && (everConnected || performance.now() - pageStart > STALE_MS);
    if (showLost) {
      setText(banner, BANNER_LINK_LOST);
      banner.className = 'banner-link';
      setHidden(banner, false);
    } else if (runtimeLost) {
      setText(banner, BANNER_RUNTIME_LOST + (st.runtime.lost_reason || ''));
      banner.className = 'banner-runtime';
      setHidden(banner, false);
    } else {
      setHidden(banner, true);
    }
    const link = $('link-state');
    if (!socketOpen) {
      setText(link, everConnected ? 'reconnecting…' : 'connecting…');
      link.className = 'pill lvl-error';
    } else if (lost) {
      setText(link, 'no state');
      link.className = 'pill lvl-error';
    } else {
      setText(link, 'live');
      link.className = 'pill lvl-ok';
    }
  }

  // ------------------------------------------------------------------ state: newest only, once a frame

  let frameRequested = false;

  // What the tests read (tests/e2e/test_console.py): states received, frames drawn, the newest drawn state's
  // server time.
  const stats = {states: 0, frames: 0, lastRenderedT: null};
  window.legionConsoleStats = stats;

  function onState(msg) {
    stats.states += 1;
    newestState = msg;              // overwrite: intermediate states are dropped on purpose
    lastStateAt = performance.now();
    everConnected = true;
    if (!frameRequested) {
      frameRequested = true;
      requestAnimationFrame(renderFrame);
    }
  }

  function renderFrame() {
    frameRequested = false;
    const st = newestState;
    if (!st) return;
    stats.frames += 1;
    stats.lastRenderedT = st.t;
    latestRendered = st;
    // One bad field must not freeze the whole page: render each part separately.
    for (const part of [renderAuth, renderArm, renderJoints, renderCamera, renderCommand, renderSkill,
      renderSafety, renderHolds, renderStatus, renderDiagnostics]) {
      try {
        part(st);
      } catch (e) {
        console.error('render', part.name, e);
      }
    }
    updateConnectionUi();
  }

  // ------------------------------------------------------------------ auth

  $('auth-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('token').value;
    if (send({type: 'auth', token: token}, 'auth') !== null) {
      setText($('auth-state'), 'checking…');
    }
  });

  let lastReadOnly = false;
  function renderAuth(st) {
    const a = st.auth || {};
    const e = $('auth-state');
    lastReadOnly = !!a.read_only_console;
    if (a.read_only_console) {
      setText(e, 'read-only console (started without a token)');
      e.className = 'pill lvl-warn';
    } else if (a.can_command) {
      setText(e, 'can command');
      e.className = 'pill lvl-ok';
    } else {
      setText(e, 'watch only: enter the token to command');
      e.className = 'pill lvl-none';
    }
    // The buttons stay clickable (the server answers 401 and says why); this only marks them.
    document.body.classList.toggle('can-command', !!a.can_command);
  }

  // ------------------------------------------------------------------ command: preview, confirm, cancel

  let preview = null;   // {id, text, ok, plan} of the newest preview sent

  $('command-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('command-text').value.trim();
    if (!text) {
      showReply({ok: false, message: 'preview: type a command first'}, {kind: 'preview'});
      return;
    }
    const id = send({type: 'preview', text: text}, 'preview', {text: text});
    if (id === null) return;
    preview = {id: id, text: text, ok: null, plan: null, executed: false};
    const plan = $('plan');
    plan.replaceChildren(el('div', 'muted small', 'asking the sequencer for the plan…'));
  });

  // The confirm button is only valid for exactly the text that was previewed.
  $('command-text').addEventListener('input', updateConfirmVisibility);

  function updateConfirmVisibility() {
    const btn = $('confirm-button');
    if (!btn || !preview) return;
    const matches = $('command-text').value.trim() === preview.text;
    setHidden(btn, !matches || preview.executed);
    const note = $('plan-stale');
    if (note) setHidden(note, matches);
  }

  function renderPlan(p) {
    const plan = $('plan');
    if (!p.ok) {
      const head = el('div', 'plan-head', 'Refused: ');
      head.appendChild(el('span', 'mono', p.text));
      const r = el('div', 'refusal', p.message || 'the sequencer refused this command');
      r.id = 'refusal';
      plan.replaceChildren(head, r);
      return;
    }
    const head = el('div', 'plan-head', 'Plan for: ');
    head.appendChild(el('span', 'mono', p.text));
    const ol = el('ol', 'plan-steps');
    for (const skill of p.plan || []) ol.appendChild(el('li', 'plan-step', skill));
    const children = [head, ol];
    if (p.message) children.push(el('div', 'small muted', p.message));
    const stale = el('div', 'small lvl-text-warn', 'The text changed since this preview: preview again to run it.');
    stale.id = 'plan-stale';
    stale.hidden = true;
    const btn = el('button', 'go', 'Confirm and run');
    btn.id = 'confirm-button';
    btn.type = 'button';
    btn.addEventListener('click', () => {
      if (!preview || !preview.ok) return;
      // Execute the previewed text, not whatever is in the box now.
      const id = send({type: 'execute', text: preview.text}, 'execute', {text: preview.text});
      if (id !== null) {
        preview.executed = true;   // one confirmation, one run: preview again to repeat
        updateConfirmVisibility();
      }
    });
    children.push(stale, btn);
    plan.replaceChildren(...children);
    updateConfirmVisibility();
  }

  $('cancel-button').addEventListener('click', () => {
    send({type: 'cancel'}, 'cancel');
  });

  // ------------------------------------------------------------------ e-stop and re-arm

  $('estop-button').addEventListener('click', () => {
    // Never gated. Over the websocket when it is up; otherwise straight over HTTP, which needs no token.
    if (sendRaw({type: 'estop'}, 'estop') !== null) return;
    fetch('/api/estop', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})
      .then((r) => r.json().catch(() => ({})).then((j) => showReply(
        {ok: r.ok && j.ok !== false, message: 'e-stop over HTTP: ' + (j.message || r.status + ' ' + r.statusText)},
        {kind: 'estop'})))
      .catch((e) => showReply({ok: false, message: 'e-stop: the console server is unreachable (' + e +
        '); use the hardware e-stop'}, {kind: 'estop'}));
  });

  $('rearm-button').addEventListener('click', () => {
    const st = latestRendered;
    const reason = st && st.safety ? st.safety.estop_reason : '';
    setText($('rearm-latched-reason'), reason ? 'latched because: ' + reason : '');
    setHidden($('rearm-dialog'), false);
    $('rearm-cancel-button').focus();   // the safe choice has the focus
  });
  $('rearm-cancel-button').addEventListener('click', () => setHidden($('rearm-dialog'), true));
  $('rearm-confirm-button').addEventListener('click', () => {
    setHidden($('rearm-dialog'), true);
    send({type: 'rearm'}, 'rearm');
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !$('rearm-dialog').hidden) setHidden($('rearm-dialog'), true);
  });

  // ------------------------------------------------------------------ replies

  function onReply(msg) {
    const p = pending.get(msg.id) || {kind: 'reply'};
    pending.delete(msg.id);
    showReply(msg, p);
    if (p.kind === 'preview' && preview && msg.id === preview.id) {
      preview.ok = !!msg.ok;
      preview.plan = Array.isArray(msg.plan) ? msg.plan : [];
      preview.message = msg.message || '';
      renderPlan(preview);
    }
    if (p.kind === 'auth' && !msg.ok) {
      // A wrong token must not be re-sent on every reconnect.
      token = null;
    }
  }

  function showReply(msg, p) {
    const e = $('last-reply');
    const status = msg.status ? ' (' + msg.status + ')' : '';
    const text = (p && p.kind ? p.kind + ': ' : '') + (msg.ok ? 'ok' : 'refused' + status) +
      (msg.message ? ' | ' + msg.message : '');
    e.replaceChildren(el('span', 'reply-time muted', fmtTime(Date.now() / 1000) + ' '), el('span', null, text));
    e.className = 'reply small ' + (msg.ok ? 'reply-ok' : 'reply-bad');
  }

  // ------------------------------------------------------------------ progress

  function renderCommand(st) {
    const c = st.command || {};
    const phase = c.phase || 'idle';
    const ph = $('command-phase');
    setText(ph, phase);
    if (ph.dataset.phase !== phase) ph.dataset.phase = phase;
    setText($('command-current'), c.text || '');
    setText($('command-message'), c.message || '');
    const steps = Array.isArray(c.steps) ? c.steps : [];
    rebuildIfChanged($('steps'), JSON.stringify(steps), () => steps.map((s) => {
      const li = el('li', 'step');
      li.dataset.state = s.state || 'pending';
      li.appendChild(el('span', 'step-mark'));
      li.appendChild(el('span', 'step-skill mono', s.skill));
      li.appendChild(el('span', 'step-state', s.state));
      const d = fmtDur(s.duration_s);
      if (d) li.appendChild(el('span', 'step-dur', d));
      return li;
    }));
  }

  function renderSkill(st) {
    const s = st.skill || {};
    setText($('active-skill'), s.active || '–');
    // step_index is 1-based (ExecuteTask feedback); 0 means no step is running.
    setText($('skill-step'), s.step_count && s.step_index ? 'step ' + s.step_index + '/' + s.step_count : '');
    setText($('skill-state'), s.state || '');
    let p = Number(s.progress);
    if (!isFinite(p)) p = 0;
    p = Math.max(0, Math.min(1, p));
    const bar = $('skill-progress');
    const fill = bar.firstElementChild;
    const w = (p * 100).toFixed(1) + '%';
    if (fill.style.width !== w) fill.style.width = w;
    bar.setAttribute('aria-valuenow', p.toFixed(3));
    setText(bar.querySelector('.bar-label'), Math.round(p * 100) + ' %');
    const hold = $('hold-reason');
    setText(hold, s.hold_reason ? 'HOLD: ' + s.hold_reason : '');
    setHidden(hold, !s.hold_reason);
  }

  // ------------------------------------------------------------------ safety, holds, status, diagnostics

  function renderSafety(st) {
    const known = !!st.safety;   // null until the first SafetyState: the latch is then unknown, not "off"
    const s = st.safety || {};
    const es = $('estop-state');
    if (!known) {
      setText(es, 'e-stop state unknown: no SafetyState from sim2real_node yet');
      if (es.className !== 'estop-state unknown') es.className = 'estop-state unknown';
    } else if (s.estop_latched) {
      setText(es, 'E-STOP LATCHED' + (s.estop_reason ? ': ' + s.estop_reason : ''));
      if (es.className !== 'estop-state latched') es.className = 'estop-state latched';
    } else {
      setText(es, 'e-stop not latched');
      if (es.className !== 'estop-state') es.className = 'estop-state';
    }
    setHidden($('rearm-button'), !s.estop_latched);
    if (!s.estop_latched) setHidden($('rearm-dialog'), true);   // nothing left to re-arm
    document.body.classList.toggle('estop-latched', !!s.estop_latched);

    const lv = $('safety-level');
    setText(lv, s.level || '–');
    setLevelClass(lv, s.level, 'level');
    setText($('safety-reason'), s.reason || '');
    setText($('safety-ready'), s.ready_needed === null || s.ready_needed === undefined ? '–' :
      s.ready_needed ? 'yes: the arm waits for a ready/acknowledge' : 'no');
    $('safety-ready').className = s.ready_needed ? 'lvl-text-warn' : '';
    const none = known ? 'none' : '–';
    setText($('safety-driver'), s.driver_fault || none);
    $('safety-driver').className = s.driver_fault ? 'lvl-text-error' : '';
    const dead = s.dead_nodes || [];
    const silent = s.silent_nodes || [];
    setText($('safety-dead'), dead.length ? dead.join(', ') : none);
    $('safety-dead').className = dead.length ? 'lvl-text-error' : '';
    setText($('safety-silent'), silent.length ? silent.join(', ') : none);
    $('safety-silent').className = silent.length ? 'lvl-text-warn' : '';
    const rt = st.runtime || {};
    setText($('safety-age'), rt.safety_age_s === null || rt.safety_age_s === undefined ? '' :
      'heard ' + fmtAge(rt.safety_age_s) + ' ago');
  }

  function renderHolds(st) {
    const holds = newestFirst(st.holds);
    rebuildIfChanged($('holds'), JSON.stringify(holds), () => {
      if (!holds.length) return [el('li', 'muted', 'no holds')];
      return holds.map((h) => {
        const li = el('li', 'lvl-hold-row');
        li.appendChild(el('span', 'log-time', fmtTime(h.t)));
        li.appendChild(el('span', 'log-msg', h.reason));
        // The server merges repeats of the same reason into one entry with a count.
        if (h.count > 1) li.appendChild(el('span', 'log-count', '×' + h.count));
        return li;
      });
    });
  }

  function renderStatus(st) {
    const items = newestFirst(st.status);
    rebuildIfChanged($('status-log'), JSON.stringify(items), () => {
      if (!items.length) return [el('li', 'muted', 'no status messages')];
      return items.map((m) => {
        const li = el('li');
        li.appendChild(el('span', 'log-time', fmtTime(m.t)));
        li.appendChild(el('span', 'log-level ' + levelClass(m.level), m.level || ''));
        li.appendChild(el('span', 'log-node mono', m.node || ''));
        li.appendChild(el('span', 'log-msg', m.message));
        return li;
      });
    });
  }

  function renderDiagnostics(st) {
    const d = st.diagnostics || {};
    const keys = Object.keys(d);
    const body = $('diagnostics').tBodies[0];
    // Rebuild the rows when the key set changes; otherwise only update values.
    rebuildIfChanged(body, JSON.stringify(keys), () => {
      if (!keys.length) {
        const tr = el('tr');
        tr.appendChild(el('td', 'muted', 'none'));
        return [tr];
      }
      return keys.map((k) => {
        const tr = el('tr');
        tr.appendChild(el('th', null, k));
        tr.appendChild(el('td', 'mono'));
        return tr;
      });
    });
    keys.forEach((k, i) => {
      const v = d[k];
      setText(body.rows[i].cells[1], v === null || v === undefined ? '–' : typeof v === 'object' ? JSON.stringify(v) : v);
    });
  }

  // ------------------------------------------------------------------ joints

  function renderJoints(st) {
    const a = st.arm || {};
    const names = Array.isArray(a.joint_names) ? a.joint_names : [];
    const q = Array.isArray(a.q_rad) ? a.q_rad : [];
    const n = Math.max(names.length, q.length);
    const body = $('joints').tBodies[0];
    rebuildIfChanged(body, JSON.stringify(names) + '|' + n, () => {
      const rows = [];
      for (let i = 0; i < n; i++) {
        const tr = el('tr');
        tr.appendChild(el('th', 'mono', names[i] !== undefined ? names[i] : 'q' + (i + 1)));
        tr.appendChild(el('td', 'num'));
        rows.push(tr);
      }
      if (!n) {
        const tr = el('tr', 'empty');
        tr.appendChild(el('td', 'muted', 'no joint state yet'));
        rows.push(tr);
      }
      return rows;
    });
    for (let i = 0; i < n; i++) {
      const v = q[i];
      setText(body.rows[i].cells[1], v === null || v === undefined || !isFinite(v) ? '–' :
        (v * 180 / Math.PI).toFixed(1) + '°');
    }
    setText($('arm-age'), a.age_s === null || a.age_s === undefined ? 'no joint state' : 'age ' + fmtAge(a.age_s));
    const g = a.gripper_opening_m;
    setText($('arm-extra'), g === null || g === undefined ? '' : 'gripper opening ' + (g * 1000).toFixed(1) + ' mm');
  }

  // ------------------------------------------------------------------ arm view (canvas)

  // Two orthographic projections of the base frame (REP-103: x forward, y left, z up), same scale:
  //   side view: x to the right, z up;   top view (looking down): x up the screen, y to the left.
  // The extents are fixed (a steady picture is easier to read than an auto-zooming one) and only grow
  // when something lies outside them.
  const view = {xmin: -0.5, xmax: 1.0, ymin: -0.75, ymax: 0.75, zmin: -0.1, zmax: 1.4};
  const canvas = $('arm-view');
  const ctx = canvas.getContext('2d');
  let lastArmKey = '';

  function growView(points) {
    for (const p of points) {
      if (!Array.isArray(p) || p.length < 3 || !p.every((v) => isFinite(v))) continue;
      view.xmin = Math.min(view.xmin, Math.floor(p[0] * 10 - 1) / 10);
      view.xmax = Math.max(view.xmax, Math.ceil(p[0] * 10 + 1) / 10);
      view.ymin = Math.min(view.ymin, Math.floor(p[1] * 10 - 1) / 10);
      view.ymax = Math.max(view.ymax, Math.ceil(p[1] * 10 + 1) / 10);
      view.zmin = Math.min(view.zmin, Math.floor(p[2] * 10 - 1) / 10);
      view.zmax = Math.max(view.zmax, Math.ceil(p[2] * 10 + 1) / 10);
    }
  }

  function cssColor(name, fallback) {
    const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  function renderArm(st) {
    const a = st.arm || {};
    const pts = Array.isArray(a.points_base_m) ? a.points_base_m.filter(
      (p) => Array.isArray(p) && p.length >= 3 && p.every((v) => v !== null && isFinite(v))) : [];
    const objs = (Array.isArray(st.objects) ? st.objects : []).filter(
      (o) => o && Array.isArray(o.pos_base_m) && o.pos_base_m.length >= 3 && o.pos_base_m.every((v) => v !== null && isFinite(v)));
    // Resize the backing store to the displayed size (crisp lines at any devicePixelRatio).
    const dpr = window.devicePixelRatio || 1;
    const cw = Math.max(1, Math.round(canvas.clientWidth * dpr));
    const ch = Math.max(1, Math.round(canvas.clientHeight * dpr));
    const key = JSON.stringify(pts) + JSON.stringify(objs.map((o) => [o.label, o.pos_base_m])) + cw + 'x' + ch;
    if (key === lastArmKey) return;
    lastArmKey = key;
    if (canvas.width !== cw || canvas.height !== ch) {
      canvas.width = cw;
      canvas.height = ch;
    }
    growView(pts);
    growView(objs.map((o) => o.pos_base_m));
    drawArm(pts, objs, cw / dpr, ch / dpr, dpr);
  }

  function drawArm(pts, objs, W, H, dpr) {
    const col = {
      bg: cssColor('--canvas-bg', '#10151c'),
      grid: cssColor('--canvas-grid', '#243040'),
      axis: cssColor('--canvas-axis', '#5b6b80'),
      text: cssColor('--canvas-text', '#9fb0c4'),
      link: cssColor('--canvas-link', '#4fa3ff'),
      joint: cssColor('--canvas-joint', '#e6edf5'),
      hand: cssColor('--canvas-hand', '#ffb020'),
      obj: cssColor('--canvas-obj', '#3ddc84'),
    };
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = col.bg;
    ctx.fillRect(0, 0, W, H);

    const gap = 10;
    const top = 16;   // room for the titles
    const pw = (W - gap * 3) / 2;
    const ph = H - top - 18;  // room for the axis labels below
    // One scale for both views, so 0.1 m looks the same everywhere.
    const sSide = Math.min(pw / (view.xmax - view.xmin), ph / (view.zmax - view.zmin));
    const sTop = Math.min(pw / (view.ymax - view.ymin), ph / (view.xmax - view.xmin));
    const s = Math.min(sSide, sTop);

    // Side view: screen u = x, screen v = -z.
    const side = {
      ox: gap, oy: top, w: pw, h: ph,
      umin: view.xmin, umax: view.xmax, vmin: view.zmin, vmax: view.zmax,
      map: (p) => [p[0], p[2]],
      title: 'side (x → , z ↑)', hlabel: 'x', vlabel: 'z',
    };
    // Top view: screen horizontal = -y (y left is screen left), screen vertical = x (up).
    const topv = {
      ox: gap * 2 + pw, oy: top, w: pw, h: ph,
      umin: -view.ymax, umax: -view.ymin, vmin: view.xmin, vmax: view.xmax,
      map: (p) => [-p[1], p[0]],
      title: 'top (x ↑, y ←)', hlabel: 'y', vlabel: 'x', flipU: true,
    };

    for (const v of [side, topv]) {
      // Centre the scaled extents inside the panel.
      const uw = (v.umax - v.umin) * s;
      const vh = (v.vmax - v.vmin) * s;
      const x0 = v.ox + (v.w - uw) / 2;
      const y0 = v.oy + (v.h - vh) / 2;
      const tx = (u) => x0 + (u - v.umin) * s;
      const ty = (w) => y0 + vh - (w - v.vmin) * s;
      const P = (p) => {
        const m = v.map(p);
        return [tx(m[0]), ty(m[1])];
      };

      ctx.save();
      ctx.beginPath();
      ctx.rect(x0, y0, uw, vh);
      ctx.clip();
      // 0.1 m grid; the metre lines a bit brighter.
      ctx.lineWidth = 1;
      for (let g = Math.ceil(v.umin * 10); g <= Math.floor(v.umax * 10); g++) {
        ctx.strokeStyle = g % 10 === 0 ? col.axis : col.grid;
        ctx.beginPath();
        ctx.moveTo(Math.round(tx(g / 10)) + 0.5, y0);
        ctx.lineTo(Math.round(tx(g / 10)) + 0.5, y0 + vh);
        ctx.stroke();
      }
      for (let g = Math.ceil(v.vmin * 10); g <= Math.floor(v.vmax * 10); g++) {
        ctx.strokeStyle = g % 10 === 0 ? col.axis : col.grid;
        ctx.beginPath();
        ctx.moveTo(x0, Math.round(ty(g / 10)) + 0.5);
        ctx.lineTo(x0 + uw, Math.round(ty(g / 10)) + 0.5);
        ctx.stroke();
      }

      // Objects: labelled squares. Labels go right of the square (left near the panel's right edge) and
      // step down when they would overlap one already drawn, so close objects stay readable.
      ctx.font = '10px system-ui, sans-serif';
      ctx.textBaseline = 'middle';
      const placed = [];
      for (const o of objs) {
        const [px, py] = P(o.pos_base_m);
        ctx.fillStyle = col.obj;
        ctx.globalAlpha = 0.35;
        ctx.fillRect(px - 5, py - 5, 10, 10);
        ctx.globalAlpha = 1;
        ctx.strokeStyle = col.obj;
        ctx.lineWidth = 1.5;
        ctx.strokeRect(px - 5, py - 5, 10, 10);
        const label = String(o.label === null || o.label === undefined ? '?' : o.label);
        const lw = ctx.measureText(label).width;
        const lx = px + 8 + lw > x0 + uw ? px - 8 - lw : px + 8;
        let ly = py;
        for (let tries = 0; tries < 6 && placed.some((r) => lx < r.x + r.w && r.x < lx + lw && Math.abs(ly - r.y) < 11); tries++) {
          ly += 11;
        }
        placed.push({x: lx, y: ly, w: lw});
        ctx.fillStyle = col.obj;
        ctx.fillText(label, lx, ly);
      }

      // Arm: polyline through base, joints, flange and hand point.
      if (pts.length) {
        ctx.strokeStyle = col.link;
        ctx.lineWidth = 3;
        ctx.lineJoin = 'round';
        ctx.beginPath();
        pts.forEach((p, i) => {
          const [px, py] = P(p);
          if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
        });
        ctx.stroke();
        pts.forEach((p, i) => {
          const [px, py] = P(p);
          const last = i === pts.length - 1;
          ctx.fillStyle = last ? col.hand : col.joint;
          ctx.beginPath();
          ctx.arc(px, py, last ? 4 : (i === 0 ? 4.5 : 3), 0, Math.PI * 2);
          ctx.fill();
        });
      }
      ctx.restore();

      // Frame, title, axis labels (outside the clip).
      ctx.strokeStyle = col.axis;
      ctx.lineWidth = 1;
      ctx.strokeRect(x0 + 0.5, y0 + 0.5, uw - 1, vh - 1);
      ctx.fillStyle = col.text;
      ctx.font = '11px system-ui, sans-serif';
      ctx.textBaseline = 'alphabetic';
      ctx.textAlign = 'left';
      ctx.fillText(v.title, x0, y0 - 4);
      ctx.textAlign = 'right';
      ctx.fillText('grid 0.1 m', x0 + uw, y0 - 4);
      // Horizontal axis: range in metres at both ends (flipped for the top view where +y is left).
      ctx.font = '10px system-ui, sans-serif';
      ctx.textBaseline = 'top';
      const lo = v.flipU ? -v.umin : v.umin;
      const hi = v.flipU ? -v.umax : v.umax;
      ctx.textAlign = 'left';
      ctx.fillText(v.hlabel + ' ' + lo.toFixed(1), x0, y0 + vh + 3);
      ctx.textAlign = 'right';
      ctx.fillText(v.hlabel + ' ' + hi.toFixed(1) + ' m', x0 + uw, y0 + vh + 3);
      ctx.textAlign = 'center';
      ctx.fillText(v.flipU ? '← +y' : '+x →', x0 + uw / 2, y0 + vh + 3);
      ctx.save();
      ctx.translate(x0 - 2, y0 + vh / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textBaseline = 'bottom';
      ctx.fillText('+' + v.vlabel + ' →', 0, 0);
      ctx.restore();
      if (!pts.length) {
        ctx.fillStyle = col.text;
        ctx.font = '12px system-ui, sans-serif';
        ctx.textAlign = 'center';
        ctx.textBaseline = 'middle';
        ctx.fillText('no arm state yet', x0 + uw / 2, y0 + vh / 2);
      }
      ctx.textAlign = 'left';
      ctx.textBaseline = 'alphabetic';
    }
  }

  // Redraw on resize even without a new state (e.g. the window changed size while idle).
  if (window.ResizeObserver) {
    new ResizeObserver(() => {
      lastArmKey = '';
      if (latestRendered) renderArm(latestRendered);
      else drawArm([], [], canvas.clientWidth, canvas.clientHeight, window.devicePixelRatio || 1);
    }).observe(canvas);
  }

  // ------------------------------------------------------------------ camera

  let cameraAvailable = false;
  let cameraLoading = false;
  let cameraLastRequest = 0;
  const cam = $('camera');
  cam.addEventListener('load', () => { cameraLoading = false; });
  cam.addEventListener('error', () => { cameraLoading = false; });

  function renderCamera(st) {
    const c = st.camera || {};
    cameraAvailable = !!c.available;
    setHidden(cam, !cameraAvailable);
    setHidden($('camera-none'), cameraAvailable);
    setText($('camera-age'), cameraAvailable && c.age_s !== null && c.age_s !== undefined ? 'age ' + fmtAge(c.age_s) : '');
  }

  // Pull the next frame only when the previous one finished and at most 5 times a second;
  // a slow link gets fewer frames instead of a growing queue.
  setInterval(() => {
    if (!cameraAvailable || cameraLoading || stale()) return;
    const now = Date.now();
    if (now - cameraLastRequest < CAMERA_MIN_PERIOD_MS) return;
    cameraLastRequest = now;
    cameraLoading = true;
    cam.src = '/api/camera.jpg?t=' + now;
  }, 50);

  // ------------------------------------------------------------------ info, card, runs

  // Minimal Markdown for the model card: headings, paragraphs, lists, pipe tables, fenced and inline
  // code, **bold**, *emphasis*. The input is escaped first, so the card can never inject markup.
  function inlineMd(escaped) {
    // Split on inline code so that nothing inside backticks is touched.
    return escaped.split(/(`[^`]*`)/).map((part) => {
      if (part.length >= 2 && part[0] === '`' && part[part.length - 1] === '`') {
        return '<code>' + part.slice(1, -1) + '</code>';
      }
      return part
        .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
        .replace(/(^|[^*\w])\*([^*\s][^*]*)\*(?!\w)/g, '$1<em>$2</em>');
    }).join('');
  }

  function splitRow(line) {
    let s = line.trim();
    if (s.startsWith('|')) s = s.slice(1);
    if (s.endsWith('|')) s = s.slice(0, -1);
    return s.split('|').map((c) => c.trim());
  }

  function renderMarkdown(md) {
    const lines = esc(md || '').replace(/\r\n?/g, '\n').split('\n');
    const out = [];
    let para = [];
    let list = null;   // {tag, items}
    const flushPara = () => {
      if (para.length) out.push('<p>' + inlineMd(para.join(' ')) + '</p>');
      para = [];
    };
    const flushList = () => {
      if (list) out.push('<' + list.tag + '>' + list.items.map((i) => '<li>' + inlineMd(i) + '</li>').join('') +
        '</' + list.tag + '>');
      list = null;
    };
    const flush = () => { flushPara(); flushList(); };
    const isSep = (l) => /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/.test(l);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      const fence = line.match(/^\s*(```|~~~)/);
      if (fence) {
        flush();
        const code = [];
        i++;
        while (i < lines.length && !lines[i].trim().startsWith(fence[1])) code.push(lines[i++]);
        out.push('<pre><code>' + code.join('\n') + '</code></pre>');
        continue;
      }
      const h = line.match(/^(#{1,6})\s+(.*?)\s*#*\s*$/);
      if (h) {
        flush();
        const level = Math.min(6, h[1].length + 2);   // card headings sit under the panel's h2
        out.push('<h' + level + '>' + inlineMd(h[2]) + '</h' + level + '>');
        continue;
      }
      if (line.includes('|') && i + 1 < lines.length && isSep(lines[i + 1])) {
        flush();
        const head = splitRow(line);
        i += 2;
        const rows = [];
        while (i < lines.length && lines[i].includes('|') && lines[i].trim() !== '') rows.push(splitRow(lines[i++]));
        i--;
        out.push('<table class="md-table"><thead><tr>' + head.map((c) => '<th>' + inlineMd(c) + '</th>').join('') +
          '</tr></thead><tbody>' + rows.map((r) => '<tr>' + r.map((c) => '<td>' + inlineMd(c) + '</td>').join('') +
          '</tr>').join('') + '</tbody></table>');
        continue;
      }
      const li = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
      if (li) {
        flushPara();
        const tag = /\d/.test(li[1]) ? 'ol' : 'ul';
        if (!list || list.tag !== tag) { flushList(); list = {tag: tag, items: []}; }
        list.items.push(li[2]);
        continue;
      }
      if (line.trim() === '') { flush(); continue; }
      if (list && /^\s{2,}\S/.test(line)) { list.items[list.items.length - 1] += ' ' + line.trim(); continue; }
      flushList();
      para.push(line.trim());
    }
    flush();
    return out.join('\n');
  }

  function loadInfo() {
    fetch('/api/info', {cache: 'no-store'})
      .then((r) => { if (!r.ok) throw new Error(r.status + ' ' + r.statusText); return r.json(); })
      .then((info) => {
        setText($('info-bundle'), info.bundle || '–');
        setText($('info-scene'), info.scene || '–');
        const skills = Array.isArray(info.skills) ? info.skills : [];
        $('info-skills').replaceChildren(...(skills.length ? skills.map((s) => el('span', 'chip mono', s)) :
          [el('span', 'muted', 'none')]));
        setText($('info-readonly'), info.read_only ? 'read-only (started without a token)' : 'commands with the token');
        $('info-readonly').className = info.read_only ? 'lvl-text-warn' : '';
        // Safe: renderMarkdown escapes the whole input before adding its own tags.
        $('card').innerHTML = info.card_markdown ? renderMarkdown(info.card_markdown) :
          '<div class="muted">no model card</div>';
      })
      .catch((e) => {
        setText($('info-bundle'), 'info unavailable (' + e.message + '), retrying');
        setTimeout(loadInfo, RUNS_PERIOD_MS);
      });
  }

  function loadRuns() {
    fetch('/api/runs', {cache: 'no-store'})
      .then((r) => { if (!r.ok) throw new Error(r.status + ' ' + r.statusText); return r.json(); })
      .then((j) => {
        const runs = newestFirst(Array.isArray(j.runs) ? j.runs : []);
        const body = $('runs').tBodies[0];
        rebuildIfChanged(body, JSON.stringify(runs), () => {
          if (!runs.length) {
            const tr = el('tr');
            const td = el('td', 'muted', 'no runs yet');
            td.colSpan = 7;
            tr.appendChild(td);
            return [tr];
          }
          return runs.map((r) => {
            const tr = el('tr');
            tr.appendChild(el('td', 'nowrap', fmtDateTime(r.t)));
            tr.appendChild(el('td', null, r.command));
            tr.appendChild(el('td', 'mono small', (r.plan || []).join(' → ')));
            const oc = el('td', 'outcome', r.outcome);
            oc.dataset.outcome = String(r.outcome || '');
            tr.appendChild(oc);
            tr.appendChild(el('td', 'mono small', (r.step_durations_s || []).map(
              (d) => d === null || d === undefined ? '–' : Number(d).toFixed(1)).join(', ')));
            tr.appendChild(el('td', 'small', r.message));
            tr.appendChild(el('td', 'small muted', r.source));
            return tr;
          });
        });
      })
      .catch(() => { /* the next poll tries again; runs are history, not safety */ });
  }

  // ------------------------------------------------------------------ start

  drawArm([], [], canvas.clientWidth || 420, canvas.clientHeight || 230, window.devicePixelRatio || 1);
  updateConnectionUi();
  connect();
  loadInfo();
  loadRuns();
  setInterval(loadRuns, RUNS_PERIOD_MS);
})();
