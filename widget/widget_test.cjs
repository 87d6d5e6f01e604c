// Unit tests for the widget's pure logic: node --test widget/
'use strict';
process.env.TZ = 'UTC'; // before any Date: the panel shows local times
const test = require('node:test');
const assert = require('node:assert/strict');
const W = require('./widget.js');
const P = require('./panel.js');

test('fmtPhone formats Russian 11-digit numbers and leaves others alone', () => {
  assert.equal(W.fmtPhone('79101234567'), '+7 910 123-45-67');
  assert.equal(W.fmtPhone('89101234567'), '+7 910 123-45-67');
  assert.equal(W.fmtPhone('+79101234567'), '+7 910 123-45-67');
  assert.equal(W.fmtPhone(' +7 (910) 123-45-67 '), '+7 910 123-45-67');
  assert.equal(W.fmtPhone('701'), '701');
  assert.equal(W.fmtPhone('+8 910 123 45 67'), '+8 910 123 45 67'); // not Russian
  assert.equal(W.fmtPhone('+442071234567'), '+442071234567');
  assert.equal(W.fmtPhone('anonymous'), 'anonymous');
  assert.equal(W.fmtPhone(undefined), '');
  assert.equal(W.fmtPhone(79101234567), '+7 910 123-45-67');
});

test('cmpId compares ids numerically by ms, then seq', () => {
  assert.equal(W.cmpId('1700000000000-0', '1700000000000-0'), 0);
  assert.equal(W.cmpId('1700000000000-1', '1700000000000-0'), 1);
  assert.equal(W.cmpId('1700000000000-9', '1700000000000-10'), -1); // not as strings
  assert.equal(W.cmpId('999-5', '1000-0'), -1);
  assert.equal(W.cmpId('1000-0', '999-5'), 1);
  assert.equal(W.cmpId('0001000-0', '1000-0'), 0);
  assert.equal(W.cmpId('18446744073709551615-1', '18446744073709551615-0'), 1); // past 2^53
  assert.equal(W.cmpId(null, '1-0'), -1);
  assert.equal(W.cmpId('1-0', 'junk'), 1);
  assert.equal(W.cmpId(undefined, ''), 0);
});

test('backoff is full jitter under an exponential cap', () => {
  const max = () => 0.999999;
  assert.equal(W.backoff(0, () => 0), 0);
  assert.ok(W.backoff(0, max) < W.BASE_MS);
  assert.ok(W.backoff(0, max) >= W.BASE_MS - 1);
  assert.ok(W.backoff(3, max) >= 8 * W.BASE_MS - 1 && W.backoff(3, max) < 8 * W.BASE_MS);
  assert.ok(W.backoff(20, max) < W.CAP_MS);
  assert.ok(W.backoff(1000, max) < W.CAP_MS); // no overflow to Infinity
  assert.equal(W.backoff(5, () => 0.5), Math.floor(0.5 * 32 * W.BASE_MS));
  for (let n = 0; n < 50; n++) {
    const d = W.backoff(n);
    assert.ok(d >= 0 && d < W.CAP_MS && Number.isInteger(d));
  }
});

test('closeAction follows the close-code table', () => {
  assert.deepEqual(W.closeAction(1012, true, false), { why: 1012 });
  assert.deepEqual(W.closeAction(1008, true, true), { why: 1008 }); // too many frames: back off, reconnect
  assert.deepEqual(W.closeAction(1009, true, true), { why: 1009 }); // frame too big
  assert.deepEqual(W.closeAction(4000, true, true), { why: 4000 });
  assert.deepEqual(W.closeAction(4002, true, true), { why: 4002 });
  assert.deepEqual(W.closeAction(4003, true, true), { why: 4003 });
  assert.deepEqual(W.closeAction(4499, true, true), { why: 4499 });
  assert.deepEqual(W.closeAction(1006, true, true), { why: 1006 }); // dropped after open
  assert.deepEqual(W.closeAction(4001, true, true), { refresh: true, why: 4001 });
  assert.deepEqual(W.closeAction(4001, true, false), { stop: true, why: 4001 });
  assert.deepEqual(W.closeAction(4500, true, true), { stop: true, why: 4500 });
  assert.deepEqual(W.closeAction(4501, true, true), { stop: true, why: 4501 });
  assert.deepEqual(W.closeAction(4502, true, true), { stop: true, why: 4502 }); // tenant disabled: no reconnect loop
  assert.deepEqual(W.closeAction(4999, true, true), { stop: true, why: 4999 });
  assert.deepEqual(W.closeAction(5000, true, true), { stop: true, why: 5000 });
  // A refused upgrade: the browser sees 1006 before open. The ticket was
  // just accepted, so a new one is tried, the token left alone.
  assert.deepEqual(W.closeAction(1006, false, true), { why: 'unreachable' });
  assert.deepEqual(W.closeAction(1006, false, false), { why: 'unreachable' });
});

test('ticketAction tells a refused token from a refused page and a busy server', () => {
  assert.deepEqual(W.ticketAction(401, true), { refresh: true, why: 'token' });
  assert.deepEqual(W.ticketAction(401, false), { stop: true, why: 'token' });
  assert.deepEqual(W.ticketAction(403, true), { stop: true, why: 'origin' });
  // No readable answer: network down, or CORS refused the page's origin.
  // Before any ticket came through the page cannot tell which, so the reason
  // names both; after one did, the origin is evidently allowed.
  assert.deepEqual(W.ticketAction(0, true, false), { why: 'reach' });
  assert.deepEqual(W.ticketAction(0, true, true), { why: 'unreachable' });
  assert.deepEqual(W.ticketAction(429, true), { why: 'busy' });
  assert.deepEqual(W.ticketAction(503, true), { why: 4002 });
});

test('afterHello resumes from hello.last unless the gap is being replayed', () => {
  assert.equal(W.afterHello(null, { type: 'hello', last: '5-0' }), '5-0');
  assert.equal(W.afterHello(null, { type: 'hello' }), null);
  assert.equal(W.afterHello('3-0', { type: 'hello', recovered: true, last: '5-0' }), '3-0');
  assert.equal(W.afterHello('9-0', { type: 'hello', recovered: false, last: '5-0' }), '5-0');
  assert.equal(W.afterHello('9-0', { type: 'hello', recovered: false }), null);
});

test('fmtDur shows mm:ss, and hours when it must', () => {
  assert.equal(W.fmtDur(0), '00:00');
  assert.equal(W.fmtDur(-5000), '00:00');
  assert.equal(W.fmtDur(65999), '01:05');
  assert.equal(W.fmtDur(59 * 60000 + 59000), '59:59');
  assert.equal(W.fmtDur(3600000 + 61000), '1:01:01');
});

test('crmHref substitutes the URL-encoded phone', () => {
  assert.equal(W.crmHref('https://crm/c?phone={phone}', '+79101234567'), 'https://crm/c?phone=%2B79101234567');
  assert.equal(W.crmHref('https://crm/{phone}/{phone}', '1 2'), 'https://crm/1%202/1%202');
  assert.equal(W.crmHref('', '1'), '');
  assert.equal(W.crmHref(undefined, '1'), '');
});

// ---- the card reducer

const T0 = Date.parse('2026-03-01T10:00:00Z');
const iso = (ms) => new Date(ms).toISOString();
let seq = 0;
function frame(event, callid, extra) {
  return Object.assign({
    type: 'call', id: `${T0}-${seq++}`, event, callid, phone: '79101234567', user: 'andy',
    direction: event === 'OUTGOING' ? 'out' : 'in', started: iso(T0), at: iso(T0 + 1000),
  }, extra);
}
const ids = (cards) => cards.map((c) => `${c.callid}:${c.state}`);

test('reduce: incoming rings, accepted talks, completed goes', () => {
  let cards = W.reduce([], frame('INCOMING', 'a', { contact: { name: 'ООО Рога', responsible: 'andy' } }), T0);
  assert.deepEqual(ids(cards), ['a:ring']);
  assert.equal(cards[0].event, 'INCOMING');
  assert.equal(cards[0].t0, T0);
  assert.equal(cards[0].f.contact.name, 'ООО Рога');
  cards = W.reduce(cards, frame('ACCEPTED', 'a', { answered: iso(T0 + 5000) }), T0 + 5000);
  assert.deepEqual(ids(cards), ['a:talk']);
  assert.equal(cards[0].event, 'ACCEPTED');
  assert.equal(cards[0].t1, T0 + 5000);
  cards = W.reduce(cards, frame('COMPLETED', 'a'), T0 + 9000);
  assert.deepEqual(cards, []);
});

test('reduce: an unanswered incoming call shows "missed" briefly', () => {
  let cards = W.reduce([], frame('INCOMING', 'a'), T0);
  cards = W.reduce(cards, frame('CANCELLED', 'a'), T0 + 2000);
  assert.deepEqual(ids(cards), ['a:missed']);
  assert.equal(cards[0].event, 'CANCELLED');
  assert.equal(W.expire(cards, T0 + 2000 + W.MISSED_MS - 1), cards);
  assert.deepEqual(W.expire(cards, T0 + 2000 + W.MISSED_MS), []);
});

test('reduce: answered elsewhere, or closed by history, goes at once', () => {
  let cards = W.reduce([], frame('INCOMING', 'a'), T0);
  assert.deepEqual(W.reduce(cards, frame('CANCELLED', 'a', { reason: 'answered_elsewhere', answered_by: 'mike' }), T0), []);
  assert.deepEqual(W.reduce(cards, frame('CANCELLED', 'a', { reason: 'history' }), T0), []);
  // A cancelled call that was not ringing (outgoing, or in talk) goes too.
  cards = W.reduce([], frame('OUTGOING', 'b'), T0);
  assert.deepEqual(ids(cards), ['b:out']);
  assert.deepEqual(W.reduce(cards, frame('CANCELLED', 'b'), T0), []);
  // And one we never showed does not appear.
  assert.deepEqual(W.reduce([], frame('CANCELLED', 'c'), T0), []);
});

test('reduce: transferred says so briefly, then goes', () => {
  let cards = W.reduce([], frame('INCOMING', 'a'), T0);
  cards = W.reduce(cards, frame('ACCEPTED', 'a'), T0 + 1000);
  cards = W.reduce(cards, frame('TRANSFERRED', 'a', { second_callid: 'a2' }), T0 + 2000);
  assert.deepEqual(ids(cards), ['a:xfer']);
  assert.deepEqual(W.expire(cards, T0 + 2000 + W.XFER_MS), []);
  assert.deepEqual(W.reduce([], frame('TRANSFERRED', 'z'), T0), []);
});

test('reduce: calls stack newest first and keep their place', () => {
  let cards = W.reduce([], frame('INCOMING', 'a'), T0);
  cards = W.reduce(cards, frame('INCOMING', 'b'), T0);
  cards = W.reduce(cards, frame('OUTGOING', 'c'), T0);
  assert.deepEqual(ids(cards), ['c:out', 'b:ring', 'a:ring']);
  cards = W.reduce(cards, frame('ACCEPTED', 'a'), T0);
  assert.deepEqual(ids(cards), ['c:out', 'b:ring', 'a:talk']);
  cards = W.reduce(cards, frame('COMPLETED', 'b'), T0);
  assert.deepEqual(ids(cards), ['c:out', 'a:talk']);
});

test('reduce: hello is the truth', () => {
  let cards = W.reduce([], frame('INCOMING', 'gone'), T0);
  cards = W.reduce(cards, frame('INCOMING', 'kept'), T0);
  cards[0] = Object.assign({}, cards[0], { hidden: true }); // dismissed locally
  const hello = {
    type: 'hello', user: 'andy', last: `${T0}-99`,
    active: [
      { type: 'call', event: 'ACCEPTED', callid: 'kept', phone: '1', user: 'andy', direction: 'in',
        started: iso(T0), answered: iso(T0 + 3000), at: iso(T0 + 3000) },
      { type: 'call', event: 'OUTGOING', callid: 'new', phone: '2', user: 'andy', direction: 'out',
        started: iso(T0 + 4000), at: iso(T0 + 4000) },
    ],
  };
  cards = W.reduce(cards, hello, T0 + 10000);
  assert.deepEqual(ids(cards), ['new:out', 'kept:talk']);
  assert.equal(cards[1].t0, T0);
  assert.equal(cards[1].t1, T0 + 3000);
  assert.equal(cards[1].hidden, true);
  assert.equal(cards[0].hidden, false);
  assert.deepEqual(W.reduce(cards, { type: 'hello', user: 'andy', active: [] }, T0), []);
});

test('reduce: history closes an open card but lets a short state run out', () => {
  let cards = W.reduce([], frame('ACCEPTED', 'a'), T0);
  const hist = { type: 'history', id: `${T0}-50`, callid: 'a', status: 'Success', duration: 5 };
  assert.deepEqual(W.reduce(cards, hist, T0), []);
  cards = W.reduce(W.reduce([], frame('INCOMING', 'a'), T0), frame('CANCELLED', 'a'), T0);
  assert.equal(W.reduce(cards, hist, T0), cards);
  assert.deepEqual(W.reduce([], hist, T0), []);
});

test('reduce: unknown frames and events change nothing', () => {
  const cards = W.reduce([], frame('INCOMING', 'a'), T0);
  assert.equal(W.reduce(cards, frame('RINGING_BACK', 'a'), T0), cards);
  assert.equal(W.reduce(cards, { type: 'pong' }, T0), cards);
  assert.equal(W.reduce(cards, null, T0), cards);
});

test('reduce: timers fall back to "at", and a zero time is not a time', () => {
  const cards = W.reduce([], frame('INCOMING', 'a', { started: '0001-01-01T00:00:00Z' }), T0 + 5);
  assert.equal(cards[0].t0, T0 + 1000);
  const c2 = W.reduce([], frame('ACCEPTED', 'b', { started: undefined, at: undefined }), T0 + 5);
  assert.equal(c2[0].t0, T0 + 5);
  assert.equal(c2[0].t1, T0 + 5);
});

test('call back is offered on missed cards only', () => {
  const card = (state, phone = '79101234567') => ({ state, f: { phone } });
  for (const state of ['ring', 'talk', 'out', 'xfer']) assert.equal(W.canCallBack(card(state)), false, state);
  assert.equal(W.canCallBack(card('missed')), true);
  assert.equal(W.canCallBack(card('missed', 'anonymous')), false);
  assert.equal(W.canCallBack(card('missed', '')), false);
  // The card a CANCELLED frame leaves after ringing is the missed one.
  const [c] = W.reduce(W.reduce([], frame('INCOMING', 'a'), T0), frame('CANCELLED', 'a'), T0 + 1);
  assert.equal(c.state, 'missed');
  assert.equal(W.canCallBack(c), true);
});

test('the widget has every text in both languages', () => {
  const keys = (o) => Object.keys(o).sort();
  assert.deepEqual(keys(W.TEXT.ru), keys(W.TEXT.en));
  for (const lang of ['ru', 'en']) {
    for (const [k, v] of Object.entries(W.TEXT[lang])) assert.ok(typeof v === 'string' && v, `${lang}.${k}`);
  }
  // The reasons ticketAction and checkStyle put on the status dot.
  for (const k of ['token', 'origin', 'reach', 'unreachable', 'busy', 'csp']) assert.ok(W.TEXT.en[k] && W.TEXT.ru[k], k);
  assert.match(W.TEXT.en.token, /token refused/);
  assert.match(W.TEXT.en.csp, /Content-Security-Policy/);
});

test('the browser part stays out of node', () => {
  assert.equal(typeof globalThis.CallPop, 'undefined');
  assert.equal(typeof W.reduce, 'function');
});

// ---- click-to-call

test('normPhone makes tel: links and typed numbers dialable', () => {
  assert.equal(W.normPhone('tel:+79101234567'), '+79101234567');
  assert.equal(W.normPhone('TEL:+7 (910) 123-45-67'), '+79101234567');
  assert.equal(W.normPhone('tel:%2B7%20910%20123%2045%2067'), '+79101234567');
  assert.equal(W.normPhone('tel:+7.910.123.45.67;ext=12'), '+79101234567');
  assert.equal(W.normPhone('tel:+442071234567?foo=1'), '+442071234567');
  assert.equal(W.normPhone('tel:8-800/555-35-35'), '88005553535');
  assert.equal(W.normPhone(' 8 910 123 45 67 '), '89101234567');
  assert.equal(W.normPhone('701'), '701');
  assert.equal(W.normPhone(79101234567), '79101234567');
  assert.equal(W.normPhone('tel:%E0%A4%A'), ''); // bad escape, not a number
  for (const bad of ['', 'tel:', 'anonymous', 'tel:+', '1', '+7 910 abc', '123456789012345678901', 'tel:1+2', null, undefined]) {
    assert.equal(W.normPhone(bad), '', String(bad));
  }
});

// ---- the unseen-missed badge

const rec = (callid, extra) => Object.assign({
  callid, user: 'andy', phone: '79101234567', direction: 'in', status: 'Missed',
  start: '2026-03-01T10:00:00Z', duration: 0,
}, extra);
const unseenIds = (m) => [...m].filter(([, v]) => v).map(([k]) => k).sort();

test('missed is an incoming call nobody took', () => {
  assert.equal(W.missed(rec('a')), true);
  assert.equal(W.missed(rec('a', { status: 'Busy' })), true);
  assert.equal(W.missed(rec('a', { status: 'NotAvailable' })), true);
  assert.equal(W.missed(rec('a', { status: 'Success' })), false);
  assert.equal(W.missed(rec('a', { status: 'success' })), false);
  assert.equal(W.missed(rec('a', { direction: 'out', status: 'Busy' })), false);
});

test('unseen counts what GET /api/calls counts as unseen_missed', () => {
  const answer = {
    calls: [rec('a'), rec('b', { seen: true }), rec('c', { status: 'Success' }),
      rec('d', { direction: 'out', status: 'Cancel' }), rec('e', { status: 'Cancel' })],
    unseen_missed: 2,
  };
  const m = W.unseen(new Map(), answer);
  assert.deepEqual(unseenIds(m), ['a', 'e']);
  assert.equal(unseenIds(m).length, answer.unseen_missed);
  assert.equal(m.get('b'), false); // remembered as seen
  assert.equal(m.has('c'), false);
  assert.equal(m.has('d'), false);
});

test('unseen follows history and seen frames, and never un-sees', () => {
  const m0 = new Map();
  let m = W.unseen(m0, { type: 'history', id: '5-0', ...rec('a') });
  assert.deepEqual(unseenIds(m), ['a']);
  assert.equal(m0.size, 0, 'the map it was given is left alone');
  m = W.unseen(m, { type: 'history', id: '6-0', ...rec('ok', { status: 'Success' }) });
  m = W.unseen(m, { type: 'history', id: '7-0', ...rec('a') }); // again: still one
  assert.deepEqual(unseenIds(m), ['a']);
  m = W.unseen(m, { type: 'seen', id: '8-0', callid: 'a' });
  assert.deepEqual(unseenIds(m), []);
  // A stale list (asked before the mark) or a repeated record cannot bring it back.
  m = W.unseen(m, { calls: [rec('a')] });
  m = W.unseen(m, { type: 'history', ...rec('a') });
  assert.deepEqual(unseenIds(m), []);
  // A seen frame for a call we never counted is remembered, so its record stays seen.
  m = W.unseen(m, { type: 'seen', callid: 'z' });
  m = W.unseen(m, { calls: [rec('z')] });
  assert.deepEqual(unseenIds(m), []);
  // Frames the badge does not care about change nothing.
  for (const f of [{ type: 'call', event: 'INCOMING', callid: 'q' }, { type: 'hello', active: [] }, {}]) {
    assert.deepEqual([...W.unseen(m, f)], [...m]);
  }
});

test('unseen: mark all seen clears the badge and sticks', () => {
  let m = W.unseen(new Map(), { calls: [rec('a'), rec('b'), rec('c', { seen: true })] });
  assert.deepEqual(unseenIds(m), ['a', 'b']);
  m = W.unseen(m, { all: true });
  assert.deepEqual(unseenIds(m), []);
  assert.deepEqual([...m.keys()].sort(), ['a', 'b', 'c']);
  m = W.unseen(m, { calls: [rec('a'), rec('new')] });
  assert.deepEqual(unseenIds(m), ['new']);
});

// ---- the panel's pure logic

const ctx = (lang, miss) => ({
  t: P.TEXT[lang], lang, miss: miss || new Map(),
  fmtPhone: W.fmtPhone, fmtDur: W.fmtDur, normPhone: W.normPhone, missed: W.missed,
});
const NOW = Date.parse('2026-03-01T15:00:00Z');

test('view turns a record into a list item', () => {
  const v = P.view(rec('a', { contact: { name: 'ООО Рога', responsible: 'andy' }, link: 'https://pbx.example.com/rec/a.mp3' }),
    ctx('ru'), NOW);
  assert.deepEqual(v, {
    id: 'a', missed: true, seen: false, phone: '+7 910 123-45-67', dial: '79101234567',
    kind: 'Пропущенный', info: 'ООО Рога', when: '10:00', link: 'https://pbx.example.com/rec/a.mp3',
  });
  const out = P.view(rec('b', { direction: 'out', status: 'Success', duration: 65, start: '2026-02-27T09:05:00Z' }), ctx('en'), NOW);
  assert.equal(out.kind, 'Outgoing');
  assert.equal(out.missed, false);
  assert.equal(out.seen, false);
  assert.equal(out.info, '01:05');
  assert.match(out.when, /^27 Feb 09:05$/);
  assert.equal(out.link, '');
  const busy = P.view(rec('c', { direction: 'out', status: 'Busy' }), ctx('ru'), NOW);
  assert.equal(busy.kind, 'Исходящий');
  assert.equal(busy.info, 'занято');
  assert.equal(P.view(rec('d', { status: 'Success', duration: 3700 }), ctx('ru'), NOW).info, '1:01:40');
  assert.equal(P.view(rec('e', { status: 'Weird' }), ctx('en'), NOW).info, 'Weird');
  assert.equal(P.view(rec('f', { phone: 'anonymous' }), ctx('en'), NOW).dial, '');
});

test('view: seen on the server or in the badge map', () => {
  assert.equal(P.view(rec('a', { seen: true }), ctx('ru'), NOW).seen, true);
  assert.equal(P.view(rec('a'), ctx('ru', new Map([['a', false]])), NOW).seen, true);
  assert.equal(P.view(rec('a'), ctx('ru', new Map([['a', true]])), NOW).seen, false);
  // Only missed calls are ever seen.
  assert.equal(P.view(rec('a', { status: 'Success', seen: true }), ctx('ru'), NOW).seen, false);
});

test('safeLink lets only absolute http(s) links play', () => {
  assert.equal(P.safeLink('https://pbx.example.com/r.mp3?t=1'), 'https://pbx.example.com/r.mp3?t=1');
  assert.equal(P.safeLink('http://pbx/r.mp3'), 'http://pbx/r.mp3');
  for (const bad of ['', undefined, 'javascript:alert(1)', 'data:audio/mp3;base64,AAAA', '/rec/a.mp3', 'r.mp3', 'ftp://x/y']) {
    assert.equal(P.safeLink(bad), '', String(bad));
  }
});

test('when shows the time today and the day before', () => {
  assert.equal(P.when('2026-03-01T00:01:00Z', NOW, 'ru'), '00:01');
  assert.equal(P.when('2026-02-28T23:59:00Z', NOW, 'en'), '28 Feb 23:59');
  assert.match(P.when('2026-02-28T23:59:00Z', NOW, 'ru'), /^28 февр?\.? 23:59$/);
  assert.equal(P.when('0001-01-01T00:00:00Z', NOW, 'ru'), '');
  assert.equal(P.when('', NOW, 'ru'), '');
  assert.equal(P.when(undefined, NOW, 'ru'), '');
  assert.equal(P.when('junk', NOW, 'ru'), '');
});

test('errText explains API failures in the user\'s language', () => {
  const e = (status, message) => Object.assign(new Error(message), { status });
  const ru = P.TEXT.ru, en = P.TEXT.en;
  assert.equal(P.errText(e(503, 'PBX not configured'), ru), 'АТС не подключена');
  assert.equal(P.errText(e(503, 'PBX unavailable'), en), 'PBX unavailable');
  assert.equal(P.errText(e(503, 'PBX unavailable'), ru), 'АТС недоступна');
  assert.equal(P.errText(e(503, 'Service unavailable'), en), 'Service temporarily unavailable');
  assert.equal(P.errText(e(502, 'PBX refused: Invalid user'), en), 'PBX refused: Invalid user');
  assert.equal(P.errText(e(502, 'PBX refused: '), ru), 'АТС отказала');
  assert.equal(P.errText(e(429, 'Too many requests'), en), en[429]);
  assert.equal(P.errText(e(401, 'Invalid token'), ru), ru[401]);
  assert.equal(P.errText(e(400, 'Invalid parameters'), ru), ru[400]);
  assert.equal(P.errText(e(403, 'Origin not allowed'), en), en[403]);
  assert.equal(P.errText(e(500, 'boom'), en), 'boom');
  assert.equal(P.errText(e(500, ''), en), 'HTTP 500');
  assert.equal(P.errText(new TypeError('Failed to fetch'), ru), 'Нет связи с сервером');
});

test('upsert keeps the list newest first, updates in place, and caps it', () => {
  let recs = [rec('b'), rec('a')];
  recs = P.upsert(recs, rec('c'));
  assert.deepEqual(recs.map((r) => r.callid), ['c', 'b', 'a']);
  const again = P.upsert(recs, rec('b', { link: 'https://x/b.mp3' }));
  assert.deepEqual(again.map((r) => r.callid), ['c', 'b', 'a']);
  assert.equal(again[1].link, 'https://x/b.mp3');
  assert.equal(recs[1].link, undefined, 'the array it was given is left alone');
  let many = [];
  for (let i = 0; i < P.LIMIT + 5; i++) many = P.upsert(many, rec('r' + i));
  assert.equal(many.length, P.LIMIT);
  assert.equal(many[0].callid, 'r' + (P.LIMIT + 4));
});

test('record strips a history frame to its record', () => {
  assert.deepEqual(P.record({ type: 'history', id: '9-1', ...rec('a') }), rec('a'));
});

test('both languages have every text', () => {
  const keys = (o) => Object.keys(o).sort();
  assert.deepEqual(keys(P.TEXT.ru), keys(P.TEXT.en));
  for (const lang of ['ru', 'en']) {
    for (const [k, v] of Object.entries(P.TEXT[lang])) assert.ok(typeof v === 'string' && v, `${lang}.${k}`);
  }
});

test('the panel stays out of node', () => {
  assert.equal(typeof globalThis.CallPop, 'undefined');
  assert.equal(typeof P.view, 'function');
});
