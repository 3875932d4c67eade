// underling web UI: a small dependency-free application over the JSON API (/api/v1) and its
// event stream. Everything shown is built with DOM calls that set text (never innerHTML), so
// job args, notes, names and error messages cannot run as script.
'use strict';
(() => {
  const main = document.getElementById('main');
  const flash = document.getElementById('flash');
  const live = document.getElementById('live');
  const logoutButton = document.getElementById('logout');
  const dialog = document.getElementById('confirm');
  const EVENTS = ['enqueued', 'started', 'noted', 'finished', 'failed', 'retried', 'rescued', 'removed'];
  const STATES = ['inactive', 'active', 'finished', 'failed', 'scheduled', 'retryable', 'waiting'];
  let session = { token_required: false, access: null };
  let stream = null;
  let onEvent = null; // the current page's live-update handler
  let onResync = null; // the current page's handler for "events may have been missed"
  let generation = 0; // which render is current (older ones drop their results)

  // ---- DOM helpers: text only ------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    add(el, children);
    return el;
  }
  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.setAttribute('class', v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  function add(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }
  function svg(tag, attrs, ...children) {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    add(el, children);
    return el;
  }
  function show(...children) {
    main.replaceChildren();
    add(main, children);
  }
  function say(text, error) {
    flash.replaceChildren(h('p', { class: error ? 'error' : null, 'data-kind': error ? 'error' : 'ok' }, text));
  }
  function time(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return h('time', { datetime: iso, title: iso }, d.toISOString().replace('T', ' ').slice(0, 19));
  }
  function ago(iso) {
    const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${Math.round(s / 3600)} h`;
    return `${Math.round(s / 86400)} d`;
  }
  function until(iso) {
    const s = Math.max(0, Math.round((new Date(iso).getTime() - Date.now()) / 1000));
    return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
  }
  function json(value) {
    return h('pre', {}, value === undefined ? 'null' : JSON.stringify(value, null, 2));
  }
  function stateBadge(job) {
    const derived = (job.derived || []).length ? ` (${job.derived.join(', ')})` : '';
    return h('span', { class: `state ${job.state}` }, job.state + derived);
  }
  function jobLink(id) {
    return h('a', { href: `#/jobs/${Number(id)}` }, `#${Number(id)}`);
  }
  function canAct() {
    return session.access === 'full';
  }
  function table(headers, rows, attrs) {
    return h('div', { class: 'scroll' }, h('table', attrs || {},
      h('thead', {}, h('tr', {}, headers.map((x) => (typeof x === 'string' ? h('th', { scope: 'col' }, x) : x)))),
      h('tbody', {}, rows)));
  }

  // ---- the API ---------------------------------------------------------------------------
  class ApiError extends Error {}
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    // Changes by session cookie must prove they come from this page (CSRF).
    if (method !== 'GET') headers['X-Underling-CSRF'] = '1';
    const opts = { method, headers, credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(`/api/v1${path}`, opts);
    } catch (e) {
      throw new ApiError(`the server cannot be reached (${e.message})`);
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (res.status === 401) {
      session.access = null;
      loginPage('Your session has ended: log in again.');
      throw new ApiError('not logged in');
    }
    if (!res.ok) {
      const detail = data && data.error ? `${data.error.message} (${data.error.code})` : text.slice(0, 200);
      throw new ApiError(`${method} ${path} failed with HTTP ${res.status}: ${detail}`);
    }
    return data;
  }
  const get = (path) => api('GET', path);

  // Asks first (every action changes something), then runs `action` and says what it did.
  function confirmThen(question, action) {
    return new Promise((resolve) => {
      document.getElementById('confirm-text').textContent = question;
      dialog.returnValue = '';
      const done = async () => {
        dialog.removeEventListener('close', done);
        if (dialog.returnValue !== 'ok') { say('Cancelled: nothing was changed.'); resolve(false); return; }
        try {
          say(await action());
          resolve(true);
        } catch (e) {
          say(e.message, true);
          resolve(false);
        }
      };
      dialog.addEventListener('close', done);
      dialog.showModal();
      document.getElementById('confirm-cancel').focus();
    });
  }
  function actionButton(label, question, action, attrs) {
    return h('button', Object.assign({ type: 'button', disabled: !canAct(), title: canAct() ? null : 'read-only access' }, attrs || {}, {
      onclick: async () => { if (await confirmThen(question, action)) render(); },
    }), label);
  }

  // ---- live updates ----------------------------------------------------------------------
  function connectEvents() {
    if (stream) return;
    stream = new EventSource('/api/v1/events');
    // Events that came while the stream was not open (before it first opened, or while it
    // reconnected) never arrive: a page that follows them reads its data again.
    stream.onopen = () => { live.textContent = 'live'; live.classList.add('on'); if (onResync) onResync(); };
    stream.onerror = () => { live.textContent = 'reconnecting'; live.classList.remove('on'); };
    stream.addEventListener('gap', () => { if (onResync) onResync(); });
    for (const name of EVENTS) {
      stream.addEventListener(name, (e) => {
        let event = null;
        try { event = JSON.parse(e.data); } catch (_) { return; }
        if (onEvent) onEvent(event);
      });
    }
  }
  // Follows page `gen` live: `load` reads the page's data and shows it. It runs now, and again
  // after each event that `matters` picks and whenever events may have been missed. The handler
  // is in place before the first read, so that an event that comes while a read is on its way
  // is not lost: it makes one more read once the current one is done (the current read may
  // predate it). Reads never overlap, so an older answer never replaces a newer one.
  function follow(gen, matters, load) {
    let loading = null;
    let again = false;
    const run = () => {
      if (loading) { again = true; return loading; }
      loading = (async () => {
        try {
          do { again = false; await load(); } while (again && gen === generation);
        } finally { loading = null; }
      })();
      return loading;
    };
    onEvent = (event) => { if (gen === generation && matters(event)) run().catch(failed(gen)); };
    onResync = () => { if (gen === generation) run().catch(failed(gen)); };
    return run();
  }

  // Re-renders at most every `ms` while events come in.
  function throttled(ms, fn) {
    let timer = null;
    return () => {
      if (timer) return;
      timer = setTimeout(() => { timer = null; fn(); }, ms);
    };
  }

  // ---- charts ----------------------------------------------------------------------------
  // Stacked bars of finished and failed jobs; `points` are {label, finished, failed}.
  function chart(points, title, id) {
    const width = 720, height = 180, pad = 28, n = Math.max(points.length, 1);
    const max = Math.max(1, ...points.map((p) => p.finished + p.failed));
    const bw = (width - pad * 2) / n;
    const scale = (v) => (v / max) * (height - pad * 2);
    const bars = points.map((p, i) => {
      const x = pad + i * bw + 1, fh = scale(p.finished), xh = scale(p.failed);
      const base = height - pad;
      return svg('g', { class: 'bar', 'data-finished': p.finished, 'data-failed': p.failed },
        svg('title', {}, `${p.label}: ${p.finished} finished, ${p.failed} failed`),
        svg('rect', { class: 'finished', x, y: base - fh, width: Math.max(bw - 2, 1), height: fh }),
        svg('rect', { class: 'failed', x, y: base - fh - xh, width: Math.max(bw - 2, 1), height: xh }),
        i % Math.ceil(n / 8) === 0 ? svg('text', { x, y: height - 10 }, p.label) : null);
    });
    return h('figure', { class: 'chartbox', id },
      svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title },
        svg('text', { x: pad, y: 14 }, `max ${max}`), bars),
      h('figcaption', { class: 'legend' }, h('span', { class: 'f' }, '■ finished'), h('span', { class: 'x' }, '■ failed'), title));
  }
  function hourly(history) {
    return history.map((p) => ({ label: `${new Date(p.hour).toISOString().slice(11, 13)}h`, finished: p.finished, failed: p.failed }));
  }
  function minutely(minutes) {
    return minutes.map((p) => ({ label: new Date(p.minute).toISOString().slice(11, 16), finished: p.finished, failed: p.failed }));
  }

  // ---- pages -----------------------------------------------------------------------------
  async function dashboard(gen) {
    const [stats, queues, due, workers, history, minutes] = await Promise.all([
      get('/stats'), get('/queues'), get('/queues/due'), get('/workers'), get('/history'), get('/history/minutes')]);
    if (gen !== generation) return;
    const dueBy = new Map(due.map((d) => [d.queue, d.oldest_due]));
    const card = (id, n, label) => h('div', { class: 'card' }, h('span', { class: 'n', id, 'data-count': n }, n), h('span', { class: 'l' }, label));
    show(
      h('h1', {}, 'Dashboard'),
      h('section', { class: 'cards', 'aria-label': 'Counts' },
        card('count-inactive', stats.inactive_jobs, 'inactive'),
        card('count-active', stats.active_jobs, 'active'),
        card('count-finished', stats.finished_jobs, 'finished'),
        card('count-failed', stats.failed_jobs, 'failed'),
        card('count-delayed', stats.delayed_jobs, 'delayed'),
        card('count-workers', workers.length, 'workers alive'),
        card('count-locks', stats.active_locks, 'locks held')),
      h('h2', {}, 'Queues'),
      table(['Queue', 'Paused', h('th', { class: 'num' }, 'Inactive'), h('th', { class: 'num' }, 'Active'),
        h('th', { class: 'num' }, 'Finished'), h('th', { class: 'num' }, 'Failed'), 'Oldest ready job waits'],
      queues.map((q) => h('tr', { 'data-queue': q.name },
        h('td', {}, h('a', { href: `#/jobs?queue=${encodeURIComponent(q.name)}` }, q.name)),
        h('td', {}, q.paused ? 'paused' : '—'),
        h('td', { class: 'num' }, q.inactive), h('td', { class: 'num' }, q.active),
        h('td', { class: 'num' }, q.finished), h('td', { class: 'num' }, q.failed),
        h('td', {}, dueBy.has(q.name) ? ago(dueBy.get(q.name)) : '—'))), { id: 'queues' }),
      h('h2', {}, 'Finished and failed per minute, last hour'),
      chart(minutely(minutes), 'jobs per minute (UTC)', 'chart-minutes'),
      h('h2', {}, 'Finished and failed per hour, last 24 h'),
      chart(hourly(history), 'jobs per hour (UTC)', 'chart-hours'));
    onEvent = throttled(1000, () => { if (gen === generation) dashboard(gen).catch(failed(gen)); });
  }

  function params() {
    const q = location.hash.split('?')[1] || '';
    return new URLSearchParams(q);
  }

  async function jobsPage(gen) {
    const p = params();
    const query = new URLSearchParams();
    for (const key of ['state', 'queue', 'task', 'note', 'id', 'before']) {
      const v = (p.get(key) || '').trim();
      if (v) query.set(key, v);
    }
    query.set('limit', '50');
    const page = await get(`/jobs?${query}`);
    if (gen !== generation) return;
    const input = (name, label, attrs) => h('label', {}, label, h('input', Object.assign({ name, id: `filter-${name}`, value: p.get(name) || '' }, attrs || {})));
    const form = h('form', { class: 'filters', id: 'filters', onsubmit: (e) => {
      e.preventDefault();
      const next = new URLSearchParams();
      for (const el of form.elements) if (el.name && el.value.trim()) next.set(el.name, el.value.trim());
      location.hash = `#/jobs?${next}`;
    } },
    h('label', {}, 'State', h('select', { name: 'state', id: 'filter-state' },
      h('option', { value: '' }, 'any'),
      STATES.map((s) => h('option', { value: s, selected: p.get('state') === s }, s)))),
    input('queue', 'Queue'), input('task', 'Task'), input('note', 'Note key'),
    input('id', 'Ids (1,2,3)', { inputmode: 'numeric' }), input('before', 'Ids below', { inputmode: 'numeric' }),
    h('button', { type: 'submit', class: 'primary', id: 'apply-filters' }, 'Filter'),
    h('a', { href: '#/jobs' }, 'Clear'));
    const boxes = [];
    const rows = page.jobs.map((job) => {
      const box = h('input', { type: 'checkbox', value: job.id, 'aria-label': `select job ${job.id}`, class: 'pick' });
      boxes.push(box);
      return h('tr', { 'data-job': job.id },
        h('td', {}, box), h('td', {}, jobLink(job.id)), h('td', {}, job.task), h('td', {}, job.queue),
        h('td', {}, stateBadge(job)), h('td', { class: 'num hide-narrow' }, `${job.retries}/${job.attempts}`),
        h('td', { class: 'hide-narrow' }, time(job.created)), h('td', { class: 'hide-narrow' }, time(job.finished)));
    });
    const picked = () => boxes.filter((b) => b.checked).map((b) => Number(b.value));
    const all = h('input', { type: 'checkbox', 'aria-label': 'select all jobs on this page', id: 'select-all',
      onchange: () => { for (const b of boxes) b.checked = all.checked; } });
    const bulk = (label, verb, fn) => h('button', { type: 'button', id: `bulk-${verb}`, disabled: !canAct(), onclick: async () => {
      const ids = picked();
      if (!ids.length) { say('Select jobs first (the boxes in the first column).', true); return; }
      if (await confirmThen(`${label} ${ids.length} job(s): ${ids.map((i) => `#${i}`).join(', ')}?`, () => fn(ids))) render();
    } }, label);
    const stopAll = async (ids) => {
      const out = await Promise.allSettled(ids.map((id) => api('POST', `/jobs/${id}/stop`)));
      const bad = out.map((r, i) => (r.status === 'rejected' ? `#${ids[i]}: ${r.reason.message}` : null)).filter(Boolean);
      if (bad.length) throw new ApiError(`Stop sent to ${ids.length - bad.length} job(s); failed for ${bad.join('; ')}`);
      return `Stop sent to ${ids.length} job(s).`;
    };
    const older = page.next ? (() => { const n = new URLSearchParams(p); n.set('before', page.next); return h('a', { href: `#/jobs?${n}`, id: 'older' }, 'Older jobs →'); })() : null;
    show(
      h('h1', {}, 'Jobs'), form,
      h('div', { class: 'actions' },
        h('span', { id: 'total', 'data-total': page.total }, `${page.total} job(s) match`),
        bulk('Retry', 'retry', async (ids) => `Retried ${(await api('POST', '/jobs/retry', { ids })).retried} job(s).`),
        bulk('Remove', 'remove', async (ids) => `Removed ${(await api('POST', '/jobs/remove', { ids })).removed} job(s).`),
        bulk('Stop', 'stop', stopAll)),
      table([h('th', {}, all), 'Id', 'Task', 'Queue', 'State', h('th', { class: 'num hide-narrow' }, 'Tries'),
        h('th', { class: 'hide-narrow' }, 'Created'), h('th', { class: 'hide-narrow' }, 'Ended')], rows, { id: 'jobs' }),
      h('div', { class: 'actions' }, p.get('before') ? h('a', { href: '#/jobs?' + (() => { const n = new URLSearchParams(p); n.delete('before'); return n; })() }, '← Newest') : null, older));
    onEvent = null; // a list the operator is selecting in must not move under the cursor
  }

  // The attempts of a job from its audit entries (oldest first): each start, with its worker,
  // and how it ended.
  function attempts(entries) {
    const out = [];
    for (const e of entries.slice().reverse()) {
      if (e.event === 'started') out.push({ n: e.job.retries + 1, worker: e.job.worker_id, started: e.at, ended: null, outcome: 'running' });
      else if (['finished', 'failed', 'rescued'].includes(e.event) && out.length && !out[out.length - 1].ended) {
        Object.assign(out[out.length - 1], { ended: e.at, outcome: e.event });
      }
    }
    return out;
  }

  function jobPage(gen, id) {
    let shown = null;
    return follow(gen, (event) => event.job && event.job.id === Number(id), async () => {
      const [job, audit] = await Promise.all([get(`/jobs/${id}`), get(`/audit?job=${id}&limit=200`)]);
      if (gen !== generation) return;
      // A read that finds nothing new leaves the page (and the keyboard focus) as it is.
      const seen = JSON.stringify([job, audit]);
      if (seen === shown) return;
      shown = seen;
      showJob(job, audit);
    });
  }

  function showJob(job, audit) {
    const progress = job.notes && typeof job.notes.progress === 'number' && job.notes.progress >= 0 && job.notes.progress <= 100
      ? h('p', {}, h('label', {}, 'Progress ', h('progress', { id: 'progress', max: 100, value: job.notes.progress }, `${job.notes.progress}%`)), ` ${job.notes.progress}%`) : null;
    const field = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
    const tries = attempts(audit.entries);
    show(
      h('h1', {}, `Job ${job.id} `, stateBadge(job)),
      h('div', { class: 'actions' },
        actionButton('Retry', `Retry job #${job.id} (${job.task})?`, async () => { await api('POST', `/jobs/${job.id}/retry`); return `Job #${job.id} retried.`; }, { id: 'job-retry' }),
        actionButton('Stop', `Stop job #${job.id} (${job.task})? Its task is told to stop.`, async () => { const r = await api('POST', `/jobs/${job.id}/stop`); return `Stop sent to worker ${r.worker} for job #${job.id}.`; }, { id: 'job-stop', disabled: !canAct() || job.state !== 'active' }),
        actionButton('Kill', `Kill job #${job.id} (${job.task})? Its task is dropped at once, without the time to stop that a stop gives it.`, async () => { const r = await api('POST', `/jobs/${job.id}/kill`); return `Kill sent to worker ${r.worker} for job #${job.id}.`; }, { id: 'job-kill', class: 'danger', disabled: !canAct() || job.state !== 'active' }),
        h('button', { type: 'button', id: 'job-remove', class: 'danger', disabled: !canAct() || job.state === 'active', onclick: async () => {
          if (await confirmThen(`Remove job #${job.id} (${job.task}) for good?`, async () => { await api('DELETE', `/jobs/${job.id}`); return `Job #${job.id} removed.`; })) location.hash = '#/jobs';
        } }, 'Remove')),
      progress,
      h('div', { class: 'grid2' },
        h('dl', { class: 'fields', id: 'job-fields' },
          field('Task', job.task), field('Queue', h('a', { href: `#/jobs?queue=${encodeURIComponent(job.queue)}` }, job.queue)),
          field('State', h('span', { id: 'job-state' }, job.state)), field('Priority', job.priority),
          field('Tries', `${job.retries + 1} of ${job.attempts}`), field('Created', time(job.created)),
          field('Due', time(job.delayed)), field('Started', time(job.started)), field('Ended', time(job.finished)),
          field('Retried', time(job.retried)), field('Expires', time(job.expires)), field('Worker', job.worker_id === null ? '—' : job.worker_id),
          field('Parents', job.parents.length ? job.parents.map((p) => [jobLink(p), ' ']) : '—'),
          field('Children', job.children.length ? job.children.map((c) => [jobLink(c), ' ']) : '—')),
        h('div', {}, h('h2', {}, 'Result'), h('div', { id: 'job-result' }, json(job.result)))),
      h('h2', {}, 'Args'), h('div', { id: 'job-args' }, json(job.args)),
      h('h2', {}, 'Notes'), h('div', { id: 'job-notes' }, json(job.notes)),
      h('h2', {}, 'Attempts'),
      audit.enabled || tries.length
        ? table(['Attempt', 'Worker', 'Started', 'Ended', 'Outcome'], tries.map((t) => h('tr', {},
          h('td', {}, t.n), h('td', {}, t.worker === null ? '—' : t.worker), h('td', {}, time(t.started)), h('td', {}, time(t.ended)), h('td', {}, t.outcome))), { id: 'attempts' })
        : h('p', { class: 'muted' }, 'The audit log is off, so only the latest attempt is known (turn it on with `underling audit enable`).'));
  }

  async function queuesPage(gen) {
    const [queues, due, throughput] = await Promise.all([get('/queues'), get('/queues/due'), get('/queues/throughput')]);
    if (gen !== generation) return;
    const dueBy = new Map(due.map((d) => [d.queue, d.oldest_due]));
    const none = { finished_last_hour: 0, failed_last_hour: 0, finished_last_5m: 0, failed_last_5m: 0 };
    const rate = new Map(throughput.map((t) => [t.queue, t]));
    // Jobs that ended per minute, over the last five minutes.
    const perMinute = (t) => { const n = (t.finished_last_5m + t.failed_last_5m) / 5; return n >= 10 ? String(Math.round(n)) : String(Math.round(n * 10) / 10); };
    show(h('h1', {}, 'Queues'),
      table(['Queue', 'State', h('th', { class: 'num' }, 'Inactive'), h('th', { class: 'num' }, 'Active'), h('th', { class: 'num' }, 'Finished'),
        h('th', { class: 'num' }, 'Failed'), h('th', { class: 'num', title: 'Jobs finished in the last hour' }, 'Finished, 1 h'),
        h('th', { class: 'num', title: 'Jobs failed for good in the last hour' }, 'Failed, 1 h'),
        h('th', { class: 'num', title: 'Jobs that ended per minute over the last five minutes' }, 'Per min, 5 min'), 'Oldest ready job waits', 'Action'],
      queues.map((q) => { const t = rate.get(q.name) || none; return h('tr', { 'data-queue': q.name },
        h('td', {}, h('a', { href: `#/jobs?queue=${encodeURIComponent(q.name)}` }, q.name)),
        h('td', { class: 'paused' }, q.paused ? 'paused' : 'running'),
        h('td', { class: 'num' }, q.inactive), h('td', { class: 'num' }, q.active), h('td', { class: 'num' }, q.finished), h('td', { class: 'num' }, q.failed),
        h('td', { class: 'num throughput', 'data-finished': t.finished_last_hour }, t.finished_last_hour),
        h('td', { class: 'num throughput', 'data-failed': t.failed_last_hour }, t.failed_last_hour),
        h('td', { class: 'num throughput' }, perMinute(t)),
        h('td', {}, dueBy.has(q.name) ? ago(dueBy.get(q.name)) : '—'),
        h('td', {}, q.paused
          ? actionButton('Resume', `Resume queue ${q.name}? Workers claim its jobs again.`, async () => { await api('POST', `/queues/${encodeURIComponent(q.name)}/resume`); return `Queue ${q.name} resumed.`; }, { class: 'queue-resume' })
          : actionButton('Pause', `Pause queue ${q.name}? No worker claims its jobs until it is resumed.`, async () => { await api('POST', `/queues/${encodeURIComponent(q.name)}/pause`); return `Queue ${q.name} paused.`; }, { class: 'queue-pause' }))); }), { id: 'queues' }));
    onEvent = throttled(2000, () => { if (gen === generation) queuesPage(gen).catch(failed(gen)); });
  }

  async function workersPage(gen) {
    const workers = await get('/workers');
    if (gen !== generation) return;
    const commandForm = (w) => {
      const select = h('select', { 'aria-label': `command for worker ${w.id}` },
        ['pause', 'resume', 'jobs', 'stop', 'kill'].map((c) => h('option', { value: c }, c)));
      const arg = h('input', { size: 6, 'aria-label': 'argument (jobs: N; stop, kill: a job id)', placeholder: 'N / job' });
      return h('form', { class: 'inline', onsubmit: (e) => {
        e.preventDefault();
        const command = select.value;
        const args = ['jobs', 'stop', 'kill'].includes(command) ? [Number(arg.value)] : [];
        confirmThen(`Send ${command} ${args.join(' ')} to worker ${w.id} (${w.host}:${w.pid})?`, async () => {
          const r = await api('POST', `/workers/${w.id}/commands`, { command, args });
          return `Sent ${r.command} to ${r.sent} worker(s).`;
        });
      } }, select, ' ', arg, ' ', h('button', { type: 'submit', disabled: !canAct() }, 'Send'));
    };
    show(h('h1', {}, 'Workers'),
      workers.length ? table(['Id', 'Host', 'Pid', 'Started', 'Last heartbeat', 'Running jobs', 'Queues', 'Command'],
        workers.map((w) => h('tr', { 'data-worker': w.id },
          h('td', {}, w.id), h('td', {}, w.host), h('td', {}, w.pid), h('td', {}, time(w.started)),
          h('td', {}, `${ago(w.last_heartbeat)} ago`), h('td', {}, w.jobs.length ? w.jobs.map((j) => [jobLink(j), ' ']) : '—'),
          h('td', {}, Array.isArray(w.status && w.status.queues) ? w.status.queues.join(', ') : '—'),
          h('td', {}, commandForm(w)))), { id: 'workers' })
        : h('p', {}, 'No worker is registered.'));
    onEvent = null;
  }

  async function locksPage(gen) {
    const locks = await get('/locks');
    if (gen !== generation) return;
    show(h('h1', {}, 'Locks'),
      locks.length ? table(['Name', 'Hold', 'Expires', 'Action'], locks.map((l) => h('tr', { 'data-lock': l.name },
        h('td', {}, l.name), h('td', {}, l.id), h('td', {}, time(l.expires), ` (in ${until(l.expires)})`),
        h('td', {}, actionButton('Release', `Release the hold on lock ${l.name} that expires first?`, async () => {
          const r = await api('DELETE', `/locks/${encodeURIComponent(l.name)}`);
          return r.released ? `Lock ${l.name}: a hold was released.` : `Lock ${l.name} was not held.`;
        }, { class: 'lock-release' })))), { id: 'locks' })
        : h('p', { id: 'no-locks' }, 'No lock is held.'));
    onEvent = null;
  }

  async function historyPage(gen) {
    const history = await get('/history');
    if (gen !== generation) return;
    show(h('h1', {}, 'History'), chart(hourly(history), 'jobs per hour (UTC), last 24 h'),
      table(['Hour (UTC)', h('th', { class: 'num' }, 'Finished'), h('th', { class: 'num' }, 'Failed for good'), h('th', { class: 'num' }, 'Failed attempts')],
        history.slice().reverse().map((p) => h('tr', {}, h('td', {}, time(p.hour)), h('td', { class: 'num' }, p.finished),
          h('td', { class: 'num' }, p.failed), h('td', { class: 'num' }, p.failed_attempts))), { id: 'history' }));
    onEvent = throttled(5000, () => { if (gen === generation) historyPage(gen).catch(failed(gen)); });
  }

  function loginPage(message) {
    generation += 1;
    onEvent = null;
    onResync = null;
    logoutButton.hidden = true;
    const failedLogin = new URLSearchParams(location.search).get('login') === 'failed';
    show(h('form', { class: 'login', method: 'post', action: '/ui/login', id: 'login' },
      h('h1', {}, 'Log in'),
      failedLogin ? h('p', { class: 'error', id: 'login-error', role: 'alert' }, 'That token is not valid for this server.') : null,
      message ? h('p', {}, message) : null,
      h('label', { for: 'token' }, 'Token (full or read-only)'),
      h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true }),
      h('button', { type: 'submit', class: 'primary', id: 'login-submit' }, 'Log in')));
    document.getElementById('token').focus();
  }

  const failed = (gen) => (e) => {
    if (gen !== generation || e.message === 'not logged in') return;
    say(e.message, true);
  };

  const routes = [
    [/^#?\/?$/, dashboard],
    [/^#\/jobs\/(\d+)$/, jobPage],
    [/^#\/jobs(\?.*)?$/, jobsPage],
    [/^#\/queues$/, queuesPage],
    [/^#\/workers$/, workersPage],
    [/^#\/locks$/, locksPage],
    [/^#\/history$/, historyPage],
  ];

  async function render() {
    if (session.token_required && !session.access) { loginPage(); return; }
    generation += 1;
    const gen = generation;
    // The page sets its own handlers (a page that follows events, before it reads its data).
    onEvent = null;
    onResync = null;
    const hash = location.hash || '#/';
    for (const a of document.querySelectorAll('#nav a')) {
      const target = a.getAttribute('href');
      const current = target === '#/' ? hash === '#/' : hash.startsWith(target);
      if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    for (const [pattern, page] of routes) {
      const m = hash.split('?')[0].match(pattern) || hash.match(pattern);
      if (m) {
        const began = performance.now();
        try {
          await page(gen, m[1]);
          if (gen === generation) {
            // When the page's data is on screen: since the navigation began (a fresh load), and
            // for this render alone (its API calls and DOM).
            main.setAttribute('data-ready-ms', String(Math.round(performance.now())));
            main.setAttribute('data-render-ms', String(Math.round(performance.now() - began)));
            main.setAttribute('data-ready', String(gen));
          }
        } catch (e) { failed(gen)(e); }
        return;
      }
    }
    show(h('h1', {}, 'Not found'), h('p', {}, 'No page here: '), h('a', { href: '#/' }, 'go to the dashboard'));
  }

  async function start() {
    try {
      const res = await fetch('/ui/session', { credentials: 'same-origin' });
      session = await res.json();
    } catch (e) {
      say(`The server cannot be reached: ${e.message}`, true);
      return;
    }
    if (session.token_required && !session.access) { loginPage(); return; }
    if (location.search) history.replaceState(null, '', `/${location.hash}`);
    logoutButton.hidden = !session.token_required;
    connectEvents();
    window.addEventListener('hashchange', () => { flash.replaceChildren(); render(); main.focus(); });
    render();
  }

  // A page left for another (kept in the back/forward cache) gives its event stream up, so that
  // it holds no connection of the browser's few per server; it takes it again when shown.
  window.addEventListener('pagehide', () => { if (stream) { stream.close(); stream = null; } });
  window.addEventListener('pageshow', (e) => { if (e.persisted && session.access) { connectEvents(); render(); } });

  logoutButton.addEventListener('click', async () => {
    await fetch('/ui/logout', { method: 'POST', headers: { 'X-Underling-CSRF': '1' }, credentials: 'same-origin' });
    location.href = '/';
  });

  start();
})();
