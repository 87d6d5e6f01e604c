/*
 * callpop widget panel: do-not-disturb and department-reception switches and
 * the recent calls, missed ones first-class (unseen badge, mark seen, mark all
 * seen, call back, recordings).
 *
 * Served as GET /widget-panel.js (widget.PanelHandler) and imported by
 * widget.js, with import(), from the server widget.js came from, the first
 * time the panel button is clicked, so the popup core stays small. A module
 * fetched from another origin needs CORS: the CRM page's origin must be in
 * CALLPOP_ALLOWED_ORIGINS (as it must for the socket and the page API).
 *
 * The file has no import or export, so it runs both as that module and as a
 * plain script (and under node --test, which gets the pure logic below). In
 * the browser it registers CallPop._panel(ctx), which widget.js calls once per
 * widget with
 *   host, before          the panel goes into host, before `before`
 *   btn                   the panel button (aria-expanded; focus returns to it)
 *   lang                  "ru" | "en"
 *   api(method, path, body) → Promise of the JSON answer; rejects with an
 *                         Error carrying the answer's "error" and its status
 *   call(phone)           POST /api/call, as CallPop.call
 *   feed(x), miss()       the badge's reducer (widget.js unseen) and its map
 *   fmtPhone, fmtDur, normPhone, missed   widget.js's pure helpers
 * and gets back {open (read-only), toggle(), frame(f)}: every frame after
 * widget.js has handled it.
 *
 * DOM contract (browser tests rely on it), inside the widget's shadow root:
 * .panel (role=dialog, hidden while closed; Escape, its button.close or the
 * panel button close it). Switches are button[role=switch] with aria-checked
 * ("true" | "false"): [data-dnd] and one [data-group=<group id>] per
 * department; while their state is unknown, or the PBX is unavailable or not
 * configured (503), they are disabled with a title saying why, and .off says
 * it too. Recent calls are li[data-record=<callid>] in ul.list, newest first,
 * with data-missed and data-seen ("true" | "false"; only missed calls are ever
 * seen), a button.callback when the phone can be dialled, a button.seen while
 * missed and unseen, and <audio controls preload=none> when there is a
 * recording link (replaced by .recerr when it cannot be played). In-flight
 * buttons get aria-disabled=true. button.allseen (shown while the badge counts
 * anything) marks every missed call seen; button.only (aria-pressed) shows
 * missed calls only. Errors show in .msg (role=status).
 */
(function (G) {
  'use strict';

  // How many recent calls the panel lists (GET /api/calls?limit=).
  const LIMIT = 30;
  // How long an error stays in .msg.
  const MSG_MS = 6000;

  const TEXT = {
    ru: {
      title: 'Звонки и настройки', close: 'Закрыть', settings: 'Настройки', dnd: 'Не беспокоить',
      groups: 'Приём звонков отделов', nogroups: 'Отделов нет', recent: 'Последние звонки',
      only: 'Только пропущенные', allseen: 'Отметить все просмотренными', seen: 'Просмотрено',
      seenLabel: 'Отметить просмотренным звонок', call: 'Перезвонить', calling: 'Звоним', rec: 'Запись разговора',
      recerr: 'Запись недоступна', empty: 'Звонков пока нет', nomissed: 'Пропущенных нет',
      loading: 'Загрузка…', in: 'Входящий', out: 'Исходящий', missed: 'Пропущенный',
      Cancel: 'отменён', Busy: 'занято', NotAvailable: 'недоступен', NotAllowed: 'запрещён', NotFound: 'не найден',
      nocfg: 'АТС не подключена', pbx: 'АТС недоступна', down: 'Сервис временно недоступен',
      refused: 'АТС отказала', net: 'Нет связи с сервером', fail: 'Не удалось',
      400: 'Неверный запрос', 401: 'Сессия истекла, обновите страницу', 403: 'Этот сайт не допущен к callpop',
      429: 'Слишком много запросов, попробуйте чуть позже',
    },
    en: {
      title: 'Calls and settings', close: 'Close', settings: 'Settings', dnd: 'Do not disturb',
      groups: 'Department calls', nogroups: 'No departments', recent: 'Recent calls',
      only: 'Missed only', allseen: 'Mark all seen', seen: 'Mark seen',
      seenLabel: 'Mark seen: call from', call: 'Call back', calling: 'Calling', rec: 'Call recording',
      recerr: 'Recording unavailable', empty: 'No calls yet', nomissed: 'No missed calls',
      loading: 'Loading…', in: 'Incoming', out: 'Outgoing', missed: 'Missed',
      Cancel: 'cancelled', Busy: 'busy', NotAvailable: 'not available', NotAllowed: 'not allowed', NotFound: 'not found',
      nocfg: 'PBX not configured', pbx: 'PBX unavailable', down: 'Service temporarily unavailable',
      refused: 'PBX refused', net: 'Cannot reach the server', fail: 'Failed',
      400: 'Invalid request', 401: 'Session expired, reload the page', 403: 'This site is not allowed by callpop',
      429: 'Too many requests, try again shortly',
    },
  };

  // ---------------------------------------------------------------------------
  // Pure logic: no DOM, exported to node --test at the end of the file.

  // errText says what went wrong with a page API call (api/api.go answers
  // 400/401/403/429, 502 with the PBX's own error, 503 when the PBX is not
  // configured or unreachable, or the call log is unavailable); an Error
  // without a status is a network failure.
  function errText(e, t) {
    const m = String((e && e.message) || ''), s = e && e.status;
    if (s === 503) return /not configured/i.test(m) ? t.nocfg : /pbx/i.test(m) ? t.pbx : t.down;
    if (s === 502) {
      const d = m.replace(/^PBX refused:?\s*/i, '');
      return t.refused + (d ? ': ' + d : '');
    }
    if (t[s]) return t[s];
    return s ? m || 'HTTP ' + s : t.net;
  }

  // safeLink is a recording link fit for <audio src>: absolute http(s), or ''.
  function safeLink(s) {
    try {
      const u = new URL(String(s || ''));
      return /^https?:$/.test(u.protocol) ? u.href : '';
    } catch (e) {
      return '';
    }
  }

  // when shows a call's start: the time today, the day and time before.
  function when(iso, now, lang) {
    const d = new Date(iso || NaN);
    if (!(d.getTime() > 0)) return '';
    const loc = lang === 'en' ? 'en-GB' : 'ru-RU';
    const tm = d.toLocaleTimeString(loc, { hour: '2-digit', minute: '2-digit' });
    return d.toDateString() === new Date(now).toDateString() ? tm
      : d.toLocaleDateString(loc, { day: 'numeric', month: 'short' }) + ' ' + tm;
  }

  // view is a call record as the list shows it. c carries the texts (t),
  // lang, widget.js's helpers and the badge's map (miss): a call marked seen
  // there (by this tab, another one or another device) is seen here too.
  function view(r, c, now) {
    const t = c.t, missed = c.missed(r), ct = r.contact || {};
    const st = /^(success|missed)$/i.test(r.status) ? '' : t[r.status] || String(r.status || '');
    return {
      id: String(r.callid),
      missed,
      seen: missed && (!!r.seen || c.miss.get(r.callid) === false),
      phone: c.fmtPhone(r.phone),
      dial: c.normPhone(r.phone),
      kind: missed ? t.missed : r.direction === 'out' ? t.out : t.in,
      info: [ct.name, st, r.duration > 0 ? c.fmtDur(r.duration * 1000) : ''].filter(Boolean).join(' \u00b7 '),
      when: when(r.start, now, c.lang),
      link: safeLink(r.link),
    };
  }

  // upsert puts record r in recs (newest first, at most LIMIT): in its place
  // when the call is listed already, else on top. It returns a new array.
  function upsert(recs, r) {
    const i = recs.findIndex((x) => x.callid === r.callid);
    return i < 0 ? [r].concat(recs).slice(0, LIMIT) : recs.map((x, j) => (j === i ? r : x));
  }

  // record strips a history frame down to its call record.
  function record(f) {
    const r = Object.assign({}, f);
    delete r.type;
    delete r.id;
    return r;
  }

  const internals = { TEXT, LIMIT, errText, safeLink, when, view, upsert, record };
  if (typeof module === 'object' && module && module.exports && typeof window === 'undefined') {
    module.exports = internals;
  }
  if (typeof document === 'undefined' || !G.CallPop) return;

  // ---------------------------------------------------------------------------
  // The panel.

  // The panel's styles are in widget.css, which widget.js gives its shadow
  // root: under a strict Content-Security-Policy a <style> here would be
  // blocked, and the panel would show as an unstyled full-width block.

  // h creates an element with a class, text and attributes, appended to parent.
  function h(tag, cls, text, parent, attrs) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  const button = (cls, text, parent, attrs) => {
    const b = h('button', cls, text, parent, attrs);
    b.type = 'button';
    return b;
  };

  // mount builds one widget's panel, closed.
  function mount(ctx) {
    const lang = ctx.lang === 'en' ? 'en' : 'ru', t = TEXT[lang];
    const el = h('div', 'panel', '', null, { role: 'dialog', 'aria-label': t.title, tabindex: '-1' });
    el.hidden = true;
    const head = h('div', 'ph', '', el);
    h('h2', '', t.title, head);
    const x = button('close', '\u00d7', head, { title: t.close, 'aria-label': t.close });
    const msg = h('div', 'msg', '', el, { role: 'status' });

    h('h3', '', t.settings, el);
    const dnd = sw(t.dnd, el, { 'data-dnd': '' });
    h('h3', '', t.groups, el);
    const groups = h('div', 'groups', '', el);
    const off = h('div', 'off', '', el);

    const ch = h('div', 'ch', '', el);
    h('h3', '', t.recent, ch);
    const only = button('lnk only', t.only, ch, { 'aria-pressed': 'false' });
    const all = button('lnk allseen', t.allseen, ch);
    const list = h('ul', 'list', '', el);
    const empty = h('p', 'empty', '', el);
    ctx.host.insertBefore(el, ctx.before);

    let open = false, recs = [], got = false, pending = null, msgTimer = 0;
    const items = new Map(); // callid → li
    const focused = () => el.getRootNode().activeElement;

    function say(text) {
      msg.textContent = text;
      clearTimeout(msgTimer);
      if (text) msgTimer = setTimeout(() => { msg.textContent = ''; }, MSG_MS);
    }

    // busy marks a button in flight and reports whether it already was: it
    // stays focusable, so keyboard users keep their place.
    function busy(b, on) {
      const was = b.getAttribute('aria-disabled') === 'true';
      if (on) b.setAttribute('aria-disabled', 'true');
      else b.removeAttribute('aria-disabled');
      return was;
    }

    // ---- switches.

    function sw(label, parent, attrs) {
      const b = button('sw', '', parent, Object.assign({ role: 'switch', 'aria-checked': 'false' }, attrs));
      h('span', 'l', label, b);
      h('span', 'tr', '', b, { 'aria-hidden': 'true' });
      b.disabled = true; // until its state is known
      b.title = t.loading;
      return b;
    }
    const set = (b, on) => b.setAttribute('aria-checked', String(!!on));
    function ready(b, on) {
      b.disabled = false;
      b.removeAttribute('title');
      set(b, on);
    }
    // down disables switches whose state cannot be read or changed, saying
    // why; a 503 (PBX unavailable, not configured) disables them all.
    function down(e, b) {
      const why = errText(e, t);
      for (const s of e.status === 503 ? el.querySelectorAll('.sw') : [b]) {
        if (!s) continue;
        s.disabled = true;
        s.title = why;
      }
      off.textContent = why;
    }
    // flip asks the server to turn a switch; it shows the wish at once and
    // then the server's answer, or the old state and the error.
    function flip(b, path, body, state) {
      if (b.disabled || busy(b, true)) return;
      const was = b.getAttribute('aria-checked') === 'true';
      set(b, !was);
      ctx.api('PUT', path, body(!was)).then((j) => set(b, state(j)), (e) => {
        set(b, was);
        say(errText(e, t));
        if (e.status === 503) down(e);
      }).finally(() => busy(b, false));
    }
    dnd.onclick = () => flip(dnd, '/api/dnd', (on) => ({ state: on }), (j) => j.state);

    function loadSettings() {
      off.textContent = '';
      ctx.api('GET', '/api/dnd').then((j) => ready(dnd, j.state), (e) => down(e, dnd));
      ctx.api('GET', '/api/groups').then((j) => {
        groups.textContent = '';
        for (const g of j.groups || []) {
          const b = sw(g.realName || g.id, groups, { 'data-group': g.id });
          ready(b, g.status === 'on');
          // Always with the group's id: reception is switched for that department only.
          b.onclick = () => flip(b, '/api/groups/' + encodeURIComponent(g.id),
            (on) => ({ status: on ? 'on' : 'off' }), (j2) => j2.status === 'on');
        }
        if (!groups.firstChild) h('div', 'empty', t.nogroups, groups);
      }, (e) => {
        groups.textContent = '';
        down(e);
      });
    }

    // ---- recent calls.

    function loadCalls() {
      if (pending) return; // one at a time
      pending = [];
      list.setAttribute('aria-busy', 'true');
      if (!got) empty.textContent = t.loading;
      ctx.api('GET', '/api/calls?limit=' + LIMIT).then((j) => {
        recs = j.calls || [];
        for (const r of pending) recs = upsert(recs, r); // arrived meanwhile
        got = true;
        ctx.feed(j);
      }, (e) => {
        if (!got) empty.textContent = errText(e, t);
        else say(errText(e, t));
      }).finally(() => {
        pending = null;
        list.removeAttribute('aria-busy');
        draw();
      });
    }

    // markSeen sends {"callids":[…]} or {"all":true}; the server tells every
    // tab (seen frames), and this one updates at once.
    function markSeen(body, b) {
      if (busy(b, true)) return;
      ctx.api('POST', '/api/calls/seen', body).then(() => {
        ctx.feed(body.all ? { all: 1 } : { type: 'seen', callid: body.callids[0] });
        draw();
      }, (e) => say(errText(e, t))).finally(() => busy(b, false));
    }
    all.onclick = () => markSeen({ all: true }, all);
    only.onclick = () => {
      only.setAttribute('aria-pressed', String(only.getAttribute('aria-pressed') !== 'true'));
      draw();
    };

    function dial(b, phone) {
      if (busy(b, true)) return;
      say('');
      ctx.call(phone).then(() => say(t.calling + ' ' + ctx.fmtPhone(phone) + '\u2026'),
        (e) => say(t.fail + ': ' + errText(e, t))).finally(() => busy(b, false));
    }

    // item builds a call's list entry; the parts that change in place (seen,
    // filtered) are left to update, so a playing recording is not cut off.
    function item(v) {
      const li = h('li', 'rec', '', null, { 'data-record': v.id, 'data-missed': String(v.missed) });
      const r1 = h('div', 'r1', '', li);
      h('span', 'kind', v.kind, r1);
      h('span', 'num', v.phone, r1);
      if (v.when) h('span', 'when', v.when, r1);
      if (v.info) h('div', 'info', v.info, li);
      const ra = h('div', 'ra', '', li);
      if (v.dial) {
        const b = button('callback', t.call, ra, { 'aria-label': t.call + ' ' + v.phone });
        b.onclick = () => dial(b, v.dial);
      }
      if (v.link) {
        const a = h('audio', '', '', li, { controls: '', preload: 'none', 'aria-label': t.rec + ' ' + v.phone });
        a.onerror = () => {
          // Not recorded yet, expired, or not playable here: say so quietly.
          const s = h('div', 'recerr', t.recerr);
          a.replaceWith(s);
        };
        a.src = v.link;
      }
      return li;
    }

    function update(li, v, hide) {
      li.dataset.seen = String(v.seen);
      li.hidden = hide;
      let b = li.querySelector('.seen');
      if (v.missed && !v.seen && !b) {
        b = button('lnk seen', t.seen, li.querySelector('.ra'), { 'aria-label': t.seenLabel + ' ' + v.phone });
        b.onclick = () => markSeen({ callids: [v.id] }, b);
      } else if (b && !(v.missed && !v.seen)) {
        const had = focused() === b;
        b.remove();
        if (had) (li.querySelector('button') || all).focus();
      }
    }

    function draw() {
      const now = Date.now(), missOnly = only.getAttribute('aria-pressed') === 'true';
      const c = Object.assign({}, ctx, { t, lang, miss: ctx.miss() });
      let prev = null, shown = 0;
      const keep = new Set();
      for (const r of recs) {
        const v = view(r, c, now), k = JSON.stringify([v.kind, v.phone, v.when, v.info, v.link, v.dial]);
        let li = items.get(v.id);
        if (!li || li._k !== k) {
          const old = li, had = old && old.contains(focused());
          li = item(v);
          li._k = k;
          if (old) old.replaceWith(li);
          items.set(v.id, li);
          if (had) (li.querySelector('button') || el).focus();
        }
        update(li, v, missOnly && !v.missed);
        if (!li.hidden) shown++;
        const want = prev ? prev.nextSibling : list.firstChild;
        if (li !== want) list.insertBefore(li, want);
        prev = li;
        keep.add(v.id);
      }
      for (const [id, li] of items) {
        if (!keep.has(id)) { li.remove(); items.delete(id); }
      }
      if (got) empty.textContent = shown ? '' : missOnly ? t.nomissed : t.empty;
      const none = ![...c.miss.values()].some(Boolean);
      if (none && focused() === all) only.focus(); // before it hides, taking focus along
      all.hidden = none;
    }

    // ---- open, close, frames.

    function toggle() {
      open = !open;
      ctx.btn.setAttribute('aria-expanded', String(open));
      if (open) {
        el.hidden = false;
        loadSettings();
        loadCalls();
        draw();
        el.focus();
      } else {
        if (el.contains(focused())) ctx.btn.focus(); // before it hides, taking focus along
        el.hidden = true;
        clearTimeout(msgTimer);
        msg.textContent = '';
      }
    }
    x.onclick = toggle;

    function frame(f) {
      if (f.type === 'history') {
        const r = record(f);
        recs = upsert(recs, r);
        if (pending) pending.push(r);
      } else if (f.type === 'hello') {
        if (!open || f.recovered) return;
        return loadCalls(); // frames may have been lost: read the list again
      } else if (f.type !== 'seen') return;
      if (open) draw();
    }

    return {
      get open() { return open; },
      toggle,
      frame,
    };
  }

  G.CallPop._panel = mount;
})(typeof window !== 'undefined' ? window : globalThis);
