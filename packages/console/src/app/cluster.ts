// Cluster: hosts of the registry (drain one, with a confirm step), this host's shards (sessions, restarts, health
// probe) and the shard count.
import { useEffect, useState } from 'preact/hooks';
import { api, authHeaders, credential } from './api.ts';
import { html } from './html.ts';
import type { Ctx } from './state.ts';
import { can, errorText, time } from './state.ts';

interface Host {
  hostId: string;
  url: string;
  state: 'alive' | 'draining' | 'dead';
  shards: number;
  sessions: number;
  updatedAt: string;
}
/** The answer of POST /api/v1/admin/hosts/:id/drain. */
interface Drained {
  hostId: string;
  moved: number;
  remaining: number;
}
interface Shard {
  index: number;
  state: string;
  pid: number | null;
  sessions: number;
  maxSessions: number;
  draining: boolean;
  restarts: number;
}
interface ShardHealth {
  index: number;
  responsive: boolean;
  rttMs: number | null;
}
interface ShardStats {
  index: number;
  ok: boolean;
  rssBytes?: number;
  heapUsedBytes?: number;
  lagP99Ms?: number;
  loopUtilization?: number;
}

const mib = (n: number | undefined): string => (n === undefined ? '—' : `${(n / 1024 / 1024).toFixed(0)} MiB`);

export function ClusterPage(props: { ctx: Ctx }) {
  const [hosts, setHosts] = useState<Host[]>([]);
  const [shards, setShards] = useState<{ hostId: string; shards: Shard[] } | null>(null);
  const [health, setHealth] = useState<Map<number, ShardHealth>>(new Map());
  const [stats, setStats] = useState<Map<number, ShardStats>>(new Map());
  const [count, setCount] = useState('');
  const [note, setNote] = useState('');
  const [tick, setTick] = useState(0);
  /** The host whose drain waits for its confirm step. */
  const [confirmDrain, setConfirmDrain] = useState<string | null>(null);
  /** Drain results by host (this page's, until reload): sessions moved and left. */
  const [drained, setDrained] = useState<Map<string, Drained>>(new Map());
  const admin = can(props.ctx.me, 'admin');
  useEffect(() => {
    let gone = false;
    const load = async (): Promise<void> => {
      try {
        const [h, s, st, hl] = await Promise.all([
          api<{ hosts: Host[] }>('GET', '/api/v1/admin/hosts'),
          api<{ hostId: string; shards: Shard[] }>('GET', '/api/v1/admin/shards'),
          api<{ shards: ShardStats[] }>('GET', '/api/v1/admin/shards/stats'),
          // /health answers 503 when unhealthy: its body is still the report.
          fetch('/health', { headers: authHeaders(credential()) }).then((r) => r.json() as Promise<{ shards?: ShardHealth[] }>),
        ]);
        if (gone) return;
        setHosts(h.hosts);
        setShards(s);
        setStats(new Map(st.shards.map((x) => [x.index, x])));
        setHealth(new Map((hl.shards ?? []).map((x) => [x.index, x])));
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
  }, [tick]);
  const apply = async (e: Event): Promise<void> => {
    e.preventDefault();
    setNote('Changing the shard count (shrinking migrates sessions first)…');
    try {
      await api('PUT', '/api/v1/admin/shards', { count: Number(count) });
      setNote('Shard count changed.');
      setTick((t) => t + 1);
      await props.ctx.reload();
    } catch (err) {
      setNote(errorText(err));
    }
  };
  const drain = async (hostId: string): Promise<void> => {
    setConfirmDrain(null);
    setNote(`Draining host ${hostId}…`);
    try {
      const r = await api<Drained>('POST', `/api/v1/admin/hosts/${encodeURIComponent(hostId)}/drain`);
      setDrained((prev) => new Map(prev).set(hostId, r));
      setNote(`Host ${hostId} drained: ${r.moved} sessions moved, ${r.remaining} left.`);
      setTick((t) => t + 1);
      await props.ctx.reload();
    } catch (err) {
      setNote(`Drain ${hostId}: ${errorText(err)}`);
    }
  };
  const drainCell = (h: Host) => {
    const done = drained.get(h.hostId);
    const result = done ? html`<span data-testid="drain-result">moved ${done.moved} · left ${done.remaining}</span>` : null;
    // Admin only (the page is, and the API refuses anyone else); a draining or dead host has nothing to drain.
    if (!admin || h.state !== 'alive') return result ?? '—';
    if (confirmDrain === h.hostId) {
      return html`<span role="group" aria-label=${`Confirm drain of host ${h.hostId}`}>Stop placing sessions on ${h.hostId} and hand its ${h.sessions} sessions to the other live hosts?
        <button type="button" class="danger" onClick=${() => void drain(h.hostId)}>Confirm drain</button>
        <button type="button" onClick=${() => setConfirmDrain(null)}>Cancel</button></span>`;
    }
    return html`<button type="button" onClick=${() => setConfirmDrain(h.hostId)} aria-label=${`Drain host ${h.hostId}`}>Drain</button>`;
  };
  return html`<section aria-labelledby="cluster-h">
    <h2 id="cluster-h">Cluster</h2>
    <table>
      <caption>Hosts (routers) in the registry</caption>
      <thead><tr><th scope="col">Host</th><th scope="col">URL</th><th scope="col">State</th><th scope="col">Shards</th><th scope="col">Sessions</th><th scope="col">Heartbeat</th><th scope="col">Drain</th></tr></thead>
      <tbody>${hosts.map(
        (h) => html`<tr data-host=${h.hostId}><th scope="row">${h.hostId}</th><td>${h.url}</td><td>${h.state}</td><td>${h.shards}</td><td>${h.sessions}</td><td>${time(h.updatedAt)}</td>
          <td>${drainCell(h)}</td></tr>`,
      )}</tbody>
    </table>
    ${shards
      ? html`<table>
          <caption>Shards of host ${shards.hostId}</caption>
          <thead><tr><th scope="col">Shard</th><th scope="col">State</th><th scope="col">PID</th><th scope="col">Sessions</th><th scope="col">Restarts</th><th scope="col">Memory (RSS / heap)</th><th scope="col">Event-loop lag p99</th><th scope="col">Loop busy</th><th scope="col">Ping</th></tr></thead>
          <tbody>
            ${shards.shards.map((s) => {
              const hl = health.get(s.index);
              const st = stats.get(s.index);
              return html`<tr data-shard=${s.index}><th scope="row">${s.index}</th><td>${s.state}${s.draining ? ' (draining)' : ''}</td><td>${s.pid ?? '—'}</td><td>${s.sessions} / ${s.maxSessions}</td><td>${s.restarts}</td>
                <td>${mib(st?.rssBytes)} / ${mib(st?.heapUsedBytes)}</td><td>${st?.lagP99Ms === undefined ? '—' : `${st.lagP99Ms.toFixed(1)} ms`}</td>
                <td>${st?.loopUtilization === undefined ? '—' : `${Math.round(st.loopUtilization * 100)} %`}</td><td>${hl?.responsive ? `${hl.rttMs ?? '?'} ms` : 'no answer'}</td></tr>`;
            })}
          </tbody>
        </table>
        <form onSubmit=${apply} class="row">
          <label for="shard-count">Shard count of this host</label>
          <input id="shard-count" type="number" min="1" max="256" required value=${count || String(shards.shards.length)} onInput=${(e: Event) => setCount((e.target as HTMLInputElement).value)} />
          <button type="submit">Apply</button>
        </form>`
      : null}
    ${note ? html`<p role="status">${note}</p>` : null}
  </section>`;
}
