/*
 * callpop widget: call popups for a CRM page (docs/contract.md, "Widget embed").
 *
 *   <script src="https://callpop.example.com/widget.js"></script>
 *   <script>CallPop.init({url, token, getToken, crmLink, lang, onEvent, sound, notify, telLinks, nonce, renderExtra})</script>
 *
 * One framework-free file, no build step. Everything lives in one <callpop-widget>
 * element with an open shadow root, so the host page's CSS cannot reach in and
 * ours cannot leak out; the only global is window.CallPop. The panel
 * (panel.js) is imported from the server when first opened.
 *
 * Styles come from widget.css (widget.go puts it into this file as served) in
 * a way a strict Content-Security-Policy allows: a constructable stylesheet
 * (adoptedStyleSheets, not governed by style-src), else a <style> with the
 * page's nonce (option nonce), else <link rel=stylesheet> to <url>/widget.css.
 * No inline style attribute anywhere. When styles did not apply all the same,
 * the status dot says so, onEvent gets {type:'warning', code:'unstyled'} and
 * acks carry "unstyled":true.
 *
 * Keys: the widget handles keys only while focus is inside it (Escape
 * dismisses the focused card, or closes the panel); the page's keys are
 * never taken, stopped or acted on.
 *
 * DOM contract (browser tests rely on it): each popup card is a [data-callid]
 * element with data-event (the call's last event for this user), data-state
 * (ring | talk | out | missed | xfer), a .extra slot holding what the host's
 * renderExtra(call) returned (when given), and, on a missed card whose phone
 * can be dialled, a button.callback (disabled while the call is placed; a
 * failure shows in .note). The status dot is .dot[data-status] (live |
 * reconnecting | offline) with a title saying why; beside it button.open (aria-expanded) opens the
 * panel, its .badge holding the unseen missed calls' count (hidden at 0). The
 * panel is .panel with switches (role=switch, aria-checked) [data-dnd] and
 * [data-group=<group id>], and recent calls [data-record=<callid>] with
 * data-missed and data-seen (true | false); more in panel.js.
 */
(function (G) {
  'use strict';

  // ---------------------------------------------------------------------------
  // Pure logic: no DOM, exported to node --test at the end of the file.

  // Back-off: full jitter (random in [0, min(cap, base·2^attempt)]), so a
  // restarting node is not hit by every browser at the same instant.
  const BASE_MS = 500, CAP_MS = 30000;
  // A connection that stayed up this long resets the back-off.
  const STABLE_MS = 10000;
  // How long a missed / transferred card stays before it goes.
  const MISSED_MS = 4000, XFER_MS = 3000;
  // How long tabs collect each other's claims before one rings.
  const CLAIM_MS = 250;

  // fmtPhone formats Russian 11-digit numbers (7XXXXXXXXXX, 8XXXXXXXXXX,
  // +7XXXXXXXXXX) as "+7 910 123-45-67"; anything else comes back trimmed.
  function fmtPhone(p) {
    p = String(p == null ? '' : p).trim();
    if (!/^\+?[\d\s()-]+$/.test(p)) return p;
    const d = p.replace(/\D/g, '');
    const m = /^[78](\d{3})(\d{3})(\d\d)(\d\d)$/.exec(d);
    return m && !(p[0] === '+' && d[0] !== '7') ? `+7 ${m[1]} ${m[2]}-${m[3]}-${m[4]}` : p;
  }

  // cmpId orders event ids "<ms>-<seq>" numerically (-1, 0, 1). The parts are
  // compared as digit strings, so ids past 2^53 still compare right. A missing
  // or malformed id sorts before every valid one.
  function cmpId(a, b) {
    const x = /^(\d+)-(\d+)$/.exec(a || ''), y = /^(\d+)-(\d+)$/.exec(b || '');
    if (!x || !y) return x ? 1 : y ? -1 : 0;
    const num = (s, t) => {
      s = s.replace(/^0+(?=\d)/, ''); t = t.replace(/^0+(?=\d)/, '');
      return s.length - t.length || (s < t ? -1 : s > t ? 1 : 0);
    };
    return Math.sign(num(x[1], y[1]) || num(x[2], y[2]));
  }

  // backoff is the delay before reconnect attempt n (0-based); rnd in [0,1).
  function backoff(n, rnd = Math.random) {
    return Math.floor(rnd() * Math.min(CAP_MS, BASE_MS * 2 ** Math.min(n, 20)));
  }

  // closeAction decides what a closed socket means (event/closecode.go,
  // event.Reconnect): 4500 and up stop; 4001 refresh the token first (stop when
  // we cannot); everything else (1008 too many frames, 1009 frame too big, 1012
  // restart, 4000 slow, 4002, 4003, lost) reconnects. A socket that never opened was refused at the upgrade (the
  // browser only sees 1006): its ticket was just issued, so the node is down
  // or the ticket came too late — a new ticket tells us more.
  // why names the reason for the status tooltip.
  function closeAction(code, opened, canRefresh) {
    if (code >= 4500) return { stop: true, why: code };
    if (code === 4001) return canRefresh ? { refresh: true, why: code } : { stop: true, why: code };
    if (!opened) return { why: 'unreachable' };
    return { why: code };
  }

  // ticketAction decides what a failed ticket request (POST /api/ws-ticket)
  // means, by its HTTP status (0: no answer the page may read — network down,
  // or CORS refused the page's origin): 401 refreshes the token (stops
  // without getToken), 403 stops (this page's origin is not allowed), the
  // rest (429, 503, no answer) retries with back-off. A page cannot tell a
  // CORS refusal from a server that is down; until one ticket came through
  // (wasLive), the reason names both.
  function ticketAction(st, canRefresh, wasLive) {
    if (st === 401) return canRefresh ? { refresh: true, why: 'token' } : { stop: true, why: 'token' };
    if (st === 403) return { stop: true, why: 'origin' };
    if (!st) return { why: wasLive ? 'unreachable' : 'reach' };
    return { why: st === 429 ? 'busy' : 4002 };
  }

  // afterHello is the resume point after a hello. With recovered:true every
  // missed event follows and moves it on; otherwise (a fresh session, or the
  // server's log no longer reaches back) hello's last is where we stand —
  // even when it is older than ours, or we would drop every new event.
  function afterHello(last, hello) {
    return hello.recovered ? last : hello.last || null;
  }

  // fmtDur formats a duration in ms as mm:ss (h:mm:ss from an hour on).
  function fmtDur(ms) {
    const s = Math.max(0, Math.floor(ms / 1000)), p = (n) => String(n).padStart(2, '0');
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
    return (h ? h + ':' + p(m) : p(m)) + ':' + p(s % 60);
  }

  // crmHref fills the crmLink template's {phone} (URL-encoded); '' without one.
  function crmHref(tpl, phone) {
    return tpl ? String(tpl).split('{phone}').join(encodeURIComponent(phone || '')) : '';
  }

  // Card states; the events that open or move a card.
  const OPEN = { INCOMING: 'ring', OUTGOING: 'out', ACCEPTED: 'talk' };
  const ms = (s) => { const t = s ? Date.parse(s) : NaN; return t > 0 ? t : 0; };

  // mkCard builds a card from a call frame. started/answered are server times
  // in ms, for the timers; hidden (dismissed with Escape) survives updates.
  function mkCard(f, state, old, now, until) {
    return {
      callid: f.callid, event: f.event, state, f, until: until || 0,
      hidden: !!(old && old.hidden),
      t0: ms(f.started) || ms(f.at) || now,
      t1: ms(f.answered) || (state === 'talk' ? ms(f.at) || now : 0),
    };
  }

  // reduce returns the cards after a frame (newest first), never changing the
  // array it was given. now (ms) dates the short-lived states.
  function reduce(cards, f, now) {
    if (!f) return cards;
    if (f.type === 'hello') {
      // hello is the truth: exactly its active calls, each in its state.
      // active is oldest first; cards are newest first.
      return (f.active || []).slice().reverse().filter((a) => OPEN[a.event])
        .map((a) => mkCard(a, OPEN[a.event], cards.find((c) => c.callid === a.callid), now));
    }
    const old = cards.find((c) => c.callid === f.callid);
    const rest = cards.filter((c) => c !== old);
    let card = null;
    if (f.type === 'call') {
      if (OPEN[f.event]) card = mkCard(f, OPEN[f.event], old, now);
      else if (f.event === 'CANCELLED') {
        // An unanswered incoming call: "missed" for a moment. Answered by a
        // colleague, closed by the call's history (a lost terminal event), or
        // a call we were not ringing: it goes at once.
        if (old && old.state === 'ring' && f.reason !== 'answered_elsewhere' && f.reason !== 'history') {
          card = mkCard(f, 'missed', old, now, now + MISSED_MS);
        }
      } else if (f.event === 'TRANSFERRED') {
        if (old) card = mkCard(f, 'xfer', old, now, now + XFER_MS);
      } else if (f.event !== 'COMPLETED') return cards; // an event we do not know
    } else if (f.type === 'history') {
      // The record means the call is over: close a card the server's own
      // closing frame somehow did not, but let a short-lived state run out.
      if (!old || old.until) return cards;
    } else return cards;
    if (!card) return old ? rest : cards;
    if (!old) return [card].concat(cards);
    return cards.map((c) => (c === old ? card : c)); // keeps its place in the stack
  }

  // canCallBack reports whether a card offers "call back": only a missed
  // call's, whose phone can be dialled (a ringing or running call is answered
  // or already on the line, not called back).
  const canCallBack = (c) => c.state === 'missed' && !!normPhone(c.f && c.f.phone);

  // expire drops short-lived cards whose time is up; the same array when none.
  function expire(cards, now) {
    return cards.some((c) => c.until && c.until <= now) ? cards.filter((c) => !c.until || c.until > now) : cards;
  }

  // normPhone turns a tel: href or a typed number into what the PBX dials (a
  // leading + and digits); '' when it is not a number.
  function normPhone(p) {
    p = String(p == null ? '' : p).replace(/^tel:/i, '');
    try { p = decodeURIComponent(p); } catch (e) { /* keep it undecoded */ }
    p = p.split(/[;?,]/)[0].replace(/[\s().\/-]/g, '');
    return /^\+?\d{2,20}$/.test(p) ? p : '';
  }

  // missed reports whether a call record is an incoming call nobody took
  // (event.Record.Missed).
  const missed = (r) => r.direction === 'in' && !/^success$/i.test(r.status);

  // unseen folds news of missed calls into a copy of m (callid → true while
  // unseen, false once seen; seen is final, so news in any order cannot undo
  // it). x is a history or seen frame, a GET /api/calls answer, or {all:1}.
  function unseen(m, x) {
    const n = new Map(m);
    if (x.all) n.forEach((v, k) => n.set(k, false));
    for (const r of x.type === 'seen' ? [{ callid: x.callid, seen: 1 }] : x.type === 'history' ? [x] : x.calls || []) {
      if (r.callid && n.get(r.callid) !== false && (r.seen || missed(r))) n.set(r.callid, !r.seen);
    }
    return n;
  }

  // ---------------------------------------------------------------------------
  // Texts.

  const TEXT = {
    ru: {
      ring: 'Входящий звонок', talk: 'Разговор', out: 'Исходящий звонок', missed: 'Пропущенный звонок',
      xfer: 'Звонок переведён', resp: 'Ответственный', dept: 'Отдел', via: 'На номер', crm: 'Открыть в CRM',
      hide: 'Скрыть', by: 'Ответил(а): ', live: 'Подключено', reconnecting: 'Переподключение', offline: 'Нет связи',
      connecting: 'подключение', lost: 'связь потеряна', unreachable: 'сервер недоступен',
      token: 'токен отклонён', origin: 'эта страница не допущена к серверу', busy: 'слишком много подключений',
      1008: 'слишком много сообщений', 1012: 'перезапуск сервера', 4000: 'не успевали получать события', 4001: 'срок токена истёк',
      4002: 'сервис временно недоступен', 4003: 'открыто слишком много вкладок', 4500: 'токен не подходит',
      4501: 'ошибка протокола', 4502: 'аккаунт отключён',
      call: 'Перезвонить', fail: 'Не удалось позвонить', calling: 'Звоним', panel: 'Звонки и настройки',
      unseen: 'пропущенных', reach: 'сервер недоступен или эта страница не допущена к нему',
      csp: 'политика безопасности страницы (CSP) заблокировала стили виджета',
    },
    en: {
      ring: 'Incoming call', talk: 'In call', out: 'Outgoing call', missed: 'Missed call',
      xfer: 'Call transferred', resp: 'Responsible', dept: 'Department', via: 'Dialled', crm: 'Open in CRM',
      hide: 'Dismiss', by: 'Answered by ', live: 'Connected', reconnecting: 'Reconnecting', offline: 'Offline',
      connecting: 'connecting', lost: 'connection lost', unreachable: 'server unreachable',
      token: 'token refused', origin: "this page's origin is not allowed", busy: 'too many connections',
      1008: 'too many messages', 1012: 'server restart', 4000: 'too slow to keep up', 4001: 'token expired',
      4002: 'service temporarily unavailable', 4003: 'too many open tabs', 4500: 'token not valid here',
      4501: 'protocol error', 4502: 'account disabled',
      call: 'Call back', fail: 'Call failed', calling: 'Calling', panel: 'Calls and settings',
      unseen: 'missed', reach: "server unreachable, or this page's origin is not allowed",
      csp: "the page's Content-Security-Policy blocked the widget's styles",
    },
  };

  const internals = { TEXT, canCallBack, fmtPhone, cmpId, backoff, closeAction, ticketAction, afterHello, fmtDur, crmHref, reduce, expire, normPhone, missed, unseen, BASE_MS, CAP_MS, MISSED_MS, XFER_MS };
  if (typeof module === 'object' && module && module.exports && typeof window === 'undefined') {
    module.exports = internals;
  }
  if (typeof document === 'undefined' || G.CallPop) return; // node, or loaded twice

  // CSS is widget.css: widget.go puts it here, as a JSON string, when it
  // serves this file.
  const CSS = "__CALLPOP_CSS__";

  // The script's own origin: the default server URL.
  const SRC = document.currentScript && document.currentScript.src;
  if (!customElements.get('callpop-widget')) customElements.define('callpop-widget', class extends HTMLElement {});

  // h creates an element with a class and text, appended to parent.
  function h(tag, cls, text, parent) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  // styleRoot gives root the widget's CSS in a way a strict Content-Security-
  // Policy allows: a constructable stylesheet (style-src governs <style>,
  // style attributes and fetched sheets, not sheets made by script; the
  // browser tests check this in Chromium), else a <style> carrying the page's
  // nonce, else a <link> to the server's /widget.css (then style-src must
  // allow callpop's origin). It returns that <link>, whose styles arrive
  // later, or null.
  function styleRoot(root, base, nonce) {
    if ('adoptedStyleSheets' in root) {
      try {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
        return null;
      } catch (e) { /* not constructable (older Safari): fall back */ }
    }
    if (nonce) {
      const st = document.createElement('style');
      st.nonce = String(nonce);
      st.textContent = CSS;
      root.appendChild(st);
      return null;
    }
    const l = document.createElement('link');
    l.rel = 'stylesheet';
    l.href = base + '/widget.css';
    root.appendChild(l);
    return l;
  }

  let S = null; // the running widget, null before init / after destroy

  // start builds and connects one widget; it returns its handle.
  function start(o) {
    const t = TEXT[o.lang === 'en' ? 'en' : 'ru'];
    const base = String(o.url || (SRC ? new URL(SRC).origin : location.origin)).replace(/\/+$/, '');
    const self = { base, o, token: o.token, stop };
    self.call = (p) => api(self, 'POST', '/api/call', { phone: normPhone(p) || String(p) });

    // DOM: the shadow root keeps our CSS in and the page's out; its
    // :host{all:initial !important} beats any page rule on the host element.
    const host = document.createElement('callpop-widget');
    const root = host.attachShadow({ mode: 'open' });
    const link = styleRoot(root, base, o.nonce);
    const wrap = h('div', 'w', '', root);
    const note = h('div', 'note', '', wrap);
    note.setAttribute('role', 'status');
    const stack = h('div', 'stack', '', wrap);
    const bar = h('div', 'bar', '', wrap);
    const pb = h('button', 'open', '\u260e', bar); // opens the panel
    pb.type = 'button';
    pb.setAttribute('aria-expanded', 'false');
    const badge = h('span', 'badge', '', pb);
    const dot = h('span', 'dot', '', bar);
    dot.setAttribute('role', 'img');
    const live = h('div', 'sr', '', wrap); // announces new incoming calls
    live.setAttribute('aria-live', 'assertive');
    live.setAttribute('aria-atomic', 'true');

    let cards = [];
    const els = new Map(); // callid → card element
    const busy = new Set(); // callids whose call back is in flight
    let miss = new Map(), panel = null, loading = null; // see unseen; the panel
    let ws = null, timer = 0, attempt = 0, refresh = false, stopped = false;
    let lastId = null, helloLast = null, user = '', skew = 0, tick = 0, noteTimer = 0, wasLive = false;
    // styled: whether widget.css applies (null until known); st: the status
    // shown, for the dot's title.
    let styled = null, st = ['reconnecting', ''];

    // unstyled reports whether the page keeps our styles out right now: the
    // wrapper is position:fixed through widget.css only.
    const unstyled = () => host.isConnected && getComputedStyle(wrap).position !== 'fixed';

    // checkStyle learns, once, whether the styles applied; when they did not
    // (a page's CSP blocked them) it says so on the dot and to the host.
    function checkStyle() {
      if (stopped || styled !== null || !host.isConnected) return;
      styled = !unstyled();
      if (styled) return;
      status(st[0], st[1]);
      console.warn('CallPop: ' + t.csp + ' (docs/contract.md, "Widget embed")');
      emit({ type: 'warning', code: 'unstyled', message: t.csp });
    }
    if (link) link.onload = link.onerror = checkStyle;

    // init may run from <head>, before there is a body to join.
    const attach = () => {
      if (stopped) return;
      document.body.appendChild(host);
      if (!link) checkStyle();
    };
    if (document.body) attach();
    else document.addEventListener('DOMContentLoaded', attach, { once: true });

    function status(s, why) {
      st = [s, why];
      const title = t[s] + (why ? ': ' + why : '') + (styled === false ? ' \u2014 ' + t.csp : '');
      dot.dataset.status = s;
      dot.title = title;
      dot.setAttribute('aria-label', title);
    }
    const reason = (why) => (t[why] || t.lost) + (typeof why === 'number' ? ' (' + why + ')' : '');

    // say puts text in a live region, for dur ms when given.
    function say(el, text, dur) {
      el.textContent = text;
      if (dur) { clearTimeout(noteTimer); noteTimer = setTimeout(() => { el.textContent = ''; }, dur); }
    }

    // ---- rendering: cards are diffed by callid, so timers tick without
    // rebuilding (focus stays) and order follows the state (newest on top).

    const key = (c) => c.state + c.event + (c.f.id || '');

    function build(c) {
      const f = c.f, ct = f.contact || {};
      const el = h('div', 'card ' + c.state);
      el.dataset.callid = c.callid;
      el.dataset.event = c.event;
      el.dataset.state = c.state;
      el.setAttribute('role', 'group');
      el.setAttribute('aria-label', t[c.state] + ' ' + fmtPhone(f.phone));
      const head = h('div', 'head', '', el);
      h('span', 'state', t[c.state], head);
      if (!c.until) h('span', 'timer', '', head);
      const x = h('button', 'close', '\u00d7', head);
      x.type = 'button';
      x.title = t.hide;
      x.setAttribute('aria-label', t.hide);
      x.onclick = () => dismiss(c.callid);
      h('div', 'phone', fmtPhone(f.phone), el);
      if (ct.name) h('div', 'name', ct.name, el);
      if (ct.responsible) h('div', 'resp', t.resp + ': ' + (ct.responsible_name || ct.responsible), el);
      if (f.groupRealName) h('div', 'dept', t.dept + ': ' + f.groupRealName, el);
      if (f.diversion) h('div', 'via', t.via + ': ' + fmtPhone(f.diversion), el);
      if (typeof o.renderExtra === 'function') extra(f, h('div', 'extra', '', el));
      if (canCallBack(c)) {
        const b = h('button', 'callback', t.call, el);
        b.type = 'button';
        b.disabled = busy.has(c.callid);
        b.onclick = () => {
          busy.add(c.callid);
          b.disabled = true;
          dial(f.phone).finally(() => {
            busy.delete(c.callid);
            const x = els.get(c.callid);
            if (x) x.querySelector('.callback').disabled = false;
          });
        };
      }
      const href = crmHref(o.crmLink, f.phone);
      if (href) {
        const a = h('a', 'crm', t.crm, el);
        a.href = href;
        a.target = '_blank';
        a.rel = 'noopener';
      }
      el._k = key(c);
      return el;
    }

    // extra puts what the host's renderExtra makes of call f into slot. It
    // gets a copy of the frame (the cards' state stays ours); what it throws
    // or returns that is no node is logged, and the card shows without it.
    function extra(f, slot) {
      try {
        const x = o.renderExtra(JSON.parse(JSON.stringify(f)));
        if (x == null) return;
        if (typeof x.nodeType !== 'number') throw new TypeError('not a DOM node: ' + x);
        slot.appendChild(x);
      } catch (e) {
        console.error('CallPop renderExtra:', e);
      }
    }

    function render() {
      const now = Date.now() - skew, vis = cards.filter((c) => !c.hidden);
      for (const [id, el] of els) {
        if (!vis.some((c) => c.callid === id)) { el.remove(); els.delete(id); }
      }
      let prev = null;
      for (const c of vis) {
        let el = els.get(c.callid), refocus = false;
        if (!el || el._k !== key(c)) { // new, or its state changed: rebuild
          refocus = !!el && el.contains(root.activeElement);
          if (el) el.remove();
          el = build(c);
          els.set(c.callid, el);
        }
        const want = prev ? prev.nextSibling : stack.firstChild;
        if (el !== want) stack.insertBefore(el, want);
        if (refocus) el.querySelector('button').focus();
        prev = el;
        const tm = el.querySelector('.timer');
        if (tm) tm.textContent = fmtDur(now - (c.state === 'talk' ? c.t1 : c.t0));
      }
    }

    function set(next) {
      if (next === cards) return;
      cards = next;
      render();
    }

    const dial = (p) => self.call(p).catch((e) => { if (!stopped) say(note, t.fail + ': ' + e.message, 5000); });

    // ---- the panel, imported on first use, and its badge.

    function feed(x) {
      miss = unseen(miss, x);
      const k = [...miss.values()].filter(Boolean).length;
      badge.textContent = k;
      badge.hidden = !k;
      pb.setAttribute('aria-label', t.panel + (k ? ', ' + t.unseen + ': ' + k : ''));
    }
    feed({});
    const ctx = Object.assign({
      host: wrap, before: bar, btn: pb, lang: o.lang, feed, miss: () => miss, call: self.call,
      api: (m, p, b) => api(self, m, p, b),
    }, internals);
    pb.onclick = () => {
      if (panel) return panel.toggle();
      loading = loading || import(base + '/widget-panel.js').then(() => {
        if (stopped) return;
        panel = G.CallPop._panel(ctx);
        panel.toggle();
      }).catch((e) => {
        loading = null; // try again on the next click
        say(note, t.offline + ': ' + e.message, 4000);
      });
    };

    // telLinks: a click on any tel: link calls through the PBX, unless the
    // page handled it itself or a modifier key is down.
    function onTel(e) {
      if (e.defaultPrevented || e.button || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      const n = e.composedPath()[0], a = n.closest && n.closest('a[href^="tel:" i]'), p = a && normPhone(a.getAttribute('href'));
      if (!p) return;
      e.preventDefault();
      say(note, t.calling + ' ' + fmtPhone(p) + '\u2026', 4000);
      dial(p);
    }

    // dismiss hides a card locally (Escape or ×); focus moves to the next card.
    function dismiss(callid) {
      const inside = !!root.activeElement;
      set(cards.map((c) => (c.callid === callid ? Object.assign({}, c, { hidden: true }) : c)));
      const next = stack.querySelector('button');
      if (inside && next) next.focus();
    }

    // ---- other tabs: every tab shows popups, one rings and notifies. A tab
    // that sees no claim for user+callid yet posts its own; after CLAIM_MS the
    // lowest of the claims made meanwhile wins (a visible tab's claim is lower
    // than a hidden one's), and a tab that comes later stays quiet.

    const me = Math.random().toString(36).slice(2);
    const claims = new Map(); // claim id → lowest claim key seen from other tabs
    const owned = new Set(); // callids this tab rings for
    const notes = new Map(); // callid → Notification
    let bc = null;
    try { bc = new BroadcastChannel('callpop'); } catch (e) { /* old browser: every tab rings */ }
    if (bc) {
      bc.onmessage = (e) => {
        const m = e.data;
        if (!m || typeof m.claim !== 'string') return;
        const k = claims.get(m.claim);
        if (!k || m.k < k) claims.set(m.claim, m.k);
        setTimeout(() => claims.delete(m.claim), 60000);
      };
    }

    function claim(c) {
      if (!o.sound && !o.notify) return;
      const id = user + ' ' + c.callid, k = (document.hidden ? '1' : '0') + me;
      const won = () => {
        const other = claims.get(id);
        if (!other || other > k) ring(c);
      };
      if (!bc) return won();
      if (claims.has(id)) return; // another tab got there first
      bc.postMessage({ claim: id, k });
      setTimeout(() => { if (!stopped) won(); }, CLAIM_MS);
    }

    let ac = null; // AudioContext, made on a user gesture (autoplay rules)
    function beep() {
      if (!ac || ac.state !== 'running') return;
      const now = ac.currentTime;
      for (const [hz, at] of [[440, 0], [480, 0], [440, 0.5], [480, 0.5]]) {
        const osc = ac.createOscillator(), g = ac.createGain();
        osc.frequency.value = hz;
        g.gain.setValueAtTime(0.05, now + at);
        g.gain.setValueAtTime(0, now + at + 0.35);
        osc.connect(g).connect(ac.destination);
        osc.start(now + at);
        osc.stop(now + at + 0.4);
      }
    }

    function ring(c) {
      const cur = cards.find((x) => x.callid === c.callid);
      if (stopped || !cur || cur.state !== 'ring') return;
      owned.add(c.callid);
      if (o.sound && !cur.hidden) beep();
      const N = G.Notification;
      if (o.notify && document.hidden && N && N.permission === 'granted') {
        const f = c.f, ct = f.contact || {};
        try {
          const n = new N(t.ring + ': ' + fmtPhone(f.phone), {
            body: [ct.name, ct.responsible && t.resp + ': ' + (ct.responsible_name || ct.responsible), f.groupRealName].filter(Boolean).join('\n'),
            tag: 'callpop-' + c.callid,
          });
          n.onclick = () => {
            G.focus();
            const href = crmHref(o.crmLink, f.phone);
            if (href) G.open(href, '_blank', 'noopener');
            n.close();
          };
          notes.set(c.callid, n);
        } catch (e) { /* e.g. a browser that allows notifications only from a service worker */ }
      }
    }

    // A user gesture unlocks sound and may ask for notification permission.
    let asked = false;
    function gesture() {
      const N = G.Notification;
      if (o.notify && N && N.permission === 'default' && !asked) {
        asked = true;
        try { Promise.resolve(N.requestPermission()).catch(() => {}); } catch (e) { /* ignore */ }
      }
      if (o.sound && !ac) {
        try { ac = new (G.AudioContext || G.webkitAudioContext)(); } catch (e) { /* no WebAudio */ }
      }
      if (ac && ac.state === 'suspended') ac.resume().catch(() => {});
    }

    // onKey handles keys pressed while focus is inside the widget: it
    // listens on the shadow root, which sees no other key, so the page's own
    // keys (Escape closing its modal) are never taken. Escape dismisses the
    // focused card, or closes the panel.
    function onKey(e) {
      if (e.key !== 'Escape' || e.defaultPrevented) return;
      const a = root.activeElement, el = a && a.closest('[data-callid]');
      if (el) dismiss(el.dataset.callid);
      else if (panel && panel.open) panel.toggle();
      else return;
      e.preventDefault(); // handled: the page's handlers can tell
    }

    // ---- the socket.

    // connect trades the token for a single-use socket ticket (the token in
    // a header) and opens the socket with the ticket: the token never travels
    // in a URL, where proxies and access logs would keep it.
    function connect() {
      fetch(base + '/api/ws-ticket', { method: 'POST', headers: { Authorization: 'Bearer ' + self.token } })
        .then(async (r) => {
          const j = r.ok ? await r.json() : null;
          if (!j || typeof j.ticket !== 'string') throw Object.assign(new Error('HTTP ' + r.status), { status: r.status });
          return j.ticket;
        })
        .then((tk) => {
          wasLive = true; // this page's origin may reach the server
          if (!stopped) open(tk);
        }, (err) => {
          if (stopped) return;
          const a = ticketAction(err.status || 0, !!o.getToken, wasLive);
          if (a.stop) return status('offline', reason(a.why));
          again(a);
        });
    }

    // again schedules the next attempt after a, with back-off.
    function again(a) {
      refresh = refresh || !!a.refresh;
      status('reconnecting', reason(a.why));
      timer = setTimeout(retry, backoff(attempt++));
    }

    function open(ticket) {
      const u = base.replace(/^http/, 'ws') + '/ws?ticket=' + encodeURIComponent(ticket) +
        (lastId ? '&since=' + encodeURIComponent(lastId) : '');
      let opened = 0;
      try {
        ws = new WebSocket(u);
      } catch (e) {
        status('offline', e.message); // a malformed url: retrying will not help
        return;
      }
      const sock = ws;
      sock.onopen = () => { opened = Date.now(); };
      sock.onmessage = (e) => {
        let f;
        try { f = JSON.parse(e.data); } catch (err) { return; }
        if (f && typeof f === 'object') onFrame(f);
      };
      sock.onclose = (e) => {
        if (ws === sock) ws = null;
        if (stopped) return;
        if (opened && Date.now() - opened >= STABLE_MS) attempt = 0;
        const a = closeAction(e.code, !!opened, !!o.getToken);
        if (a.stop) return status('offline', reason(a.why));
        again(a);
      };
    }

    async function retry() {
      timer = 0;
      if (refresh) {
        try {
          const tk = await o.getToken();
          if (tk) self.token = tk;
          refresh = false;
        } catch (e) {
          if (!stopped) timer = setTimeout(retry, backoff(attempt++));
          return;
        }
      }
      if (!stopped) connect();
    }

    function onOnline() {
      if (!timer) return;
      clearTimeout(timer);
      attempt = 0;
      retry();
    }

    function emit(f) {
      if (typeof o.onEvent !== 'function') return;
      try { o.onEvent(f); } catch (e) { console.error('CallPop onEvent:', e); }
    }

    function onFrame(f) {
      if (f.type === 'hello') {
        user = f.user || '';
        lastId = afterHello(lastId, f);
        helloLast = f.last || null;
        status('live');
        set(reduce(cards, f, Date.now()));
        // No replay follows: ask for the unseen missed calls.
        if (!f.recovered) api(self, 'GET', '/api/calls?limit=30').then(feed, () => {});
      } else {
        if (f.id) {
          if (lastId && cmpId(f.id, lastId) <= 0) return; // already processed
          lastId = f.id;
        }
        feed(f);
        // Missed events replayed after a resume are already reflected in
        // hello's active calls: the host hears of them, the cards do not.
        if (!(helloLast && f.id && cmpId(f.id, helloLast) <= 0)) show(f);
      }
      if (panel) panel.frame(f);
      emit(f); // after the DOM is up to date
    }

    // show applies a live frame to the cards and acks, announces, rings.
    function show(f) {
      const now = Date.now();
      if (f.type === 'call') {
        // A live frame's "at" is now on the server: a clock off by more than
        // a few seconds would skew the timers.
        const off = now - ms(f.at);
        skew = ms(f.at) && Math.abs(off) > 3000 ? off : 0;
      }
      const was = cards.find((c) => c.callid === f.callid);
      set(reduce(cards, f, now));
      const c = cards.find((x) => x.callid === f.callid);
      if (c && !c.hidden && f.id && c.f === f && ws && ws.readyState === 1) {
        // An unstyled card is barely a card: the server counts those apart.
        ws.send(JSON.stringify(unstyled() ? { type: 'ack', id: f.id, unstyled: true } : { type: 'ack', id: f.id }));
      }
      if (c && c.f === f && c.state === 'ring' && f.event === 'INCOMING') {
        const ct = f.contact || {};
        say(live, t.ring + ': ' + fmtPhone(f.phone) + (ct.name ? ', ' + ct.name : ''));
        claim(c);
      }
      if (f.reason === 'answered_elsewhere' && f.answered_by && was && !was.hidden) {
        say(note, fmtPhone(f.phone) + ' \u2014 ' + t.by + (f.answered_by_name || f.answered_by), 3000);
      }
    }

    // A 1 s tick runs the timers, expires short-lived cards, keeps ringing.
    const iv = setInterval(() => {
      cards = expire(cards, Date.now());
      render();
      const ringing = (id) => cards.some((c) => c.callid === id && c.state === 'ring' && !c.hidden);
      for (const id of owned) if (!cards.some((c) => c.callid === id)) owned.delete(id);
      for (const [id, n] of notes) if (!ringing(id)) { n.close(); notes.delete(id); }
      if (o.sound && ++tick % 3 === 0 && [...owned].some(ringing)) beep();
    }, 1000);

    function stop() {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(noteTimer);
      clearInterval(iv);
      if (ws) { ws.onclose = null; ws.close(1000); ws = null; }
      document.removeEventListener('keydown', gesture, true);
      document.removeEventListener('pointerdown', gesture, true);
      document.removeEventListener('click', onTel);
      G.removeEventListener('online', onOnline);
      if (bc) bc.close();
      if (ac) ac.close().catch(() => {});
      for (const n of notes.values()) n.close();
      host.remove();
    }

    root.addEventListener('keydown', onKey);
    // Any key or pointer on the page is a user gesture (sound, notification
    // permission); gesture never acts on the event.
    document.addEventListener('keydown', gesture, true);
    document.addEventListener('pointerdown', gesture, true);
    if (o.telLinks) document.addEventListener('click', onTel);
    G.addEventListener('online', onOnline);
    status('reconnecting', t.connecting);
    connect();
    return self;
  }

  // api calls the page API as s's user: it resolves to the JSON answer, or
  // rejects with an Error carrying the answer's "error" and status. An
  // expired token is refreshed once through getToken.
  function api(s, method, path, body) {
    const req = () => fetch(s.base + path, {
      method,
      headers: { Authorization: 'Bearer ' + s.token, 'Content-Type': 'application/json' },
      body: body && JSON.stringify(body),
    });
    return req()
      .then((r) => (r.status === 401 && s.o.getToken
        ? Promise.resolve(s.o.getToken()).then((tk) => { if (tk) s.token = tk; return req(); })
        : r))
      .then(async (r) => {
        const j = await r.json().catch(() => ({}));
        if (!r.ok) throw Object.assign(new Error((j && j.error) || 'HTTP ' + r.status), { status: r.status });
        return j;
      });
  }

  // destroy disconnects (no reconnect) and removes the element.
  function destroy() {
    if (S) S.stop();
    S = null;
  }

  G.CallPop = {
    // init starts the widget; a second init replaces the first.
    init(opts) {
      if (!opts || !opts.token) throw new Error('CallPop.init: token is required');
      destroy();
      S = start(Object.assign({}, opts));
    },

    // call places a call through the server (POST /api/call); see api.
    call(phone) {
      return S ? S.call(phone) : Promise.reject(new Error('CallPop: call init() first'));
    },

    destroy,
  };
})(typeof window !== 'undefined' ? window : globalThis);
