// Webhooks: the outbox (depth, oldest pending, failed, dead), the circuit breaker of each receiver origin (of the
// host the console talks to), deliveries by endpoint, dead letters with their last error, replay one or all.
import { useEffect, useState } from 'preact/hooks';
import { api, authHeaders, credential } from './api.ts';
import { html } from './html.ts';
import type { Ctx } from './state.ts';
import { errorText, time } from './state.ts';

interface Delivery {
  id: number;
  sessionId: string | null;
  topic: string;
  endpoint: string;
  status: string;
  attempts: number;
  lastError: string | null;
  lastStatus: number | null;
  nextAttemptAt: string;
  createdAt: string;
}
interface Stats {
  pending: number;
  inFlight: number;
  failed: number;
  dead: number;
  oldestPendingSeconds: number;
}

interface Breaker {
  origin: string;
  state: 'closed' | 'open' | 'half-open';
  consecutiveFailures: number;
  lastFailureAt: string | null;
  lastError: string | null;
  openedAt: string | null;
  nextTryAt: string | null;
  waitMs: number | null;
}

const FILTERS = ['failed', 'dead', 'pending', 'delivered'];

export function WebhooksPage(_props: { ctx: Ctx }) {
  const [stats, setStats] = useState<Stats | null>(null);
  const [configured, setConfigured] = useState(true);
  const [filter, setFilter] = useState('failed');
  const [rows, setRows] = useState<Delivery[]>([]);
  const [breakers, setBreakers] = useState<{ hostId: string; breakers: Breaker[] } | null>(null);
  const [note, setNote] = useState('');
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let gone = false;
    const load = async (): Promise<void> => {
      try {
        // /health shows its details (the outbox among them) only to admin credentials or METRICS_TOKEN.
        const health = (await fetch('/health', { headers: authHeaders(credential()) }).then((r) => r.json())) as { webhooks?: { stats?: Stats } };
        if (gone) return;
        setConfigured(health.webhooks !== undefined);
        setStats(health.webhooks?.stats ?? null);
        if (health.webhooks === undefined) return;
        const [list, br] = await Promise.all([
          api<{ data: Delivery[] }>('GET', `/api/v1/admin/webhooks?status=${filter}&limit=100`),
          api<{ hostId: string; breakers: Breaker[] }>('GET', '/api/v1/admin/webhooks/breakers'),
        ]);
        if (gone) return;
        setRows(list.data);
        setBreakers(br);
      } catch (err) {
        if (!gone) setNote(errorText(err));
      }
    };
    void load();
    const timer = setInterval(() => void load(), 5000);
    return () => {
      gone = true;
      clearInterval(timer);
    };
  }, [filter, tick]);
  const replay = async (path: string, body?: unknown): Promise<void> => {
    try {
      const r = await api<{ replayed: number }>('POST', path, body ?? {});
      setNote(`${r.replayed} deliveries pending again.`);
      setTick((t) => t + 1);
    } catch (err) {
      setNote(errorText(err));
    }
  };
  if (!configured) {
    return html`<section aria-labelledby="wh-h"><h2 id="wh-h">Webhooks</h2><p>No webhook outbox on this gateway (WEBHOOK_SECRET is not set), or these credentials lack the admin scope that shows it.</p></section>`;
  }
  const byEndpoint = new Map<string, number>();
  for (const r of rows) byEndpoint.set(r.endpoint, (byEndpoint.get(r.endpoint) ?? 0) + 1);
  return html`<section aria-labelledby="wh-h">
    <h2 id="wh-h">Webhooks</h2>
    ${stats
      ? html`<dl class="facts stats">
          <dt>Pending</dt><dd>${stats.pending}</dd><dt>In flight</dt><dd>${stats.inFlight}</dd><dt>Failed (retrying)</dt><dd>${stats.failed}</dd>
          <dt>Dead</dt><dd>${stats.dead}</dd><dt>Oldest pending</dt><dd>${Math.round(stats.oldestPendingSeconds)} s</dd>
        </dl>`
      : null}
    ${breakers
      ? html`<table class="breakers">
          <caption>Circuit breakers of host ${breakers.hostId}, per receiver origin (each host keeps its own)</caption>
          <thead><tr><th scope="col">Receiver</th><th scope="col">State</th><th scope="col">Consecutive failures</th><th scope="col">Last failure</th><th scope="col">Opened</th><th scope="col">Next try</th><th scope="col">Wait</th></tr></thead>
          <tbody>
            ${breakers.breakers.length === 0
              ? html`<tr><td colspan="7">No breaker: no delivery attempted recently.</td></tr>`
              : breakers.breakers.map(
                  (b) => html`<tr data-origin=${b.origin}>
                    <th scope="row">${b.origin}</th><td><span class=${`badge b-${b.state}`}>${b.state}</span></td><td>${b.consecutiveFailures}</td>
                    <td>${b.lastFailureAt ? `${time(b.lastFailureAt)} · ${b.lastError ?? ''}` : '—'}</td><td>${b.openedAt ? time(b.openedAt) : '—'}</td>
                    <td>${b.nextTryAt ? time(b.nextTryAt) : '—'}</td><td>${b.waitMs === null ? '—' : `${(b.waitMs / 1000).toFixed(1)} s`}</td>
                  </tr>`,
                )}
          </tbody>
        </table>`
      : null}
    <div class="row">
      <label for="wh-filter">Show deliveries</label>
      <select id="wh-filter" value=${filter} onChange=${(e: Event) => setFilter((e.target as HTMLSelectElement).value)}>
        ${FILTERS.map((f) => html`<option value=${f}>${f}</option>`)}
      </select>
      <button type="button" onClick=${() => replay('/api/v1/admin/webhooks/replay', { status: 'dead' })}>Replay all dead</button>
      <button type="button" onClick=${() => replay('/api/v1/admin/webhooks/replay', { status: 'failed' })}>Retry all failed now</button>
    </div>
    ${note ? html`<p role="status">${note}</p>` : null}
    <table>
      <caption>Shown deliveries by endpoint</caption>
      <thead><tr><th scope="col">Endpoint</th><th scope="col">Deliveries</th></tr></thead>
      <tbody>${[...byEndpoint].map(([e, n]) => html`<tr><th scope="row">${e}</th><td>${n}</td></tr>`)}</tbody>
    </table>
    <table class="deliveries">
      <caption>${rows.length} ${filter} deliveries, newest first</caption>
      <thead><tr><th scope="col">Id</th><th scope="col">Topic</th><th scope="col">Session</th><th scope="col">Endpoint</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Created</th><th scope="col">Replay</th></tr></thead>
      <tbody>
        ${rows.map(
          (r) => html`<tr>
            <th scope="row">${r.id}</th><td>${r.topic}</td><td>${r.sessionId ?? '—'}</td><td>${r.endpoint}</td><td>${r.attempts}</td>
            <td>${r.lastError ?? (r.lastStatus === null ? '—' : `HTTP ${r.lastStatus}`)}</td><td>${time(r.createdAt)}</td>
            <td>${r.status === 'delivered' ? '—' : html`<button type="button" onClick=${() => replay(`/api/v1/admin/webhooks/${r.id}/replay`)} aria-label=${`Replay delivery ${r.id}`}>Replay</button>`}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
