// Sessions: the live list with filter and search, create, and one session's QR, pairing code and actions.
import { useEffect, useState } from 'preact/hooks';
import { api, apiObjectUrl } from './api.ts';
import { html } from './html.ts';
import type { Ctx } from './state.ts';
import { can, errorText, time } from './state.ts';

export interface Session {
  id: string;
  status: string;
  reason?: string;
  me?: { phone: string; jid: string; lid?: string; name?: string };
  shard: number | null;
  host: string | null;
  desired?: string;
  metadata?: Record<string, unknown>;
  webhookUrl?: string | null;
  createdAt?: string;
  updatedAt: string;
}

/** One entry of GET /api/v1/sessions/:id/history. */
interface StatusChange {
  seq: number;
  status: string;
  reason: string | null;
  host: string | null;
  shard: number | null;
  epoch: number | null;
  at: string;
}

const STATUSES = ['starting', 'qr', 'pairing', 'connected', 'reconnecting', 'disconnected', 'logged_out', 'failed'];

function StatusBadge(props: { status: string }) {
  return html`<span class=${`badge s-${props.status}`}>${props.status.replace('_', ' ')}</span>`;
}

function CreateForm(props: { ctx: Ctx }) {
  const [id, setId] = useState('');
  const [webhookUrl, setWebhookUrl] = useState('');
  const [metadata, setMetadata] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError('');
    const body: Record<string, unknown> = {};
    if (id.trim() !== '') body['id'] = id.trim();
    if (webhookUrl.trim() !== '') body['webhookUrl'] = webhookUrl.trim();
    if (metadata.trim() !== '') {
      try {
        body['metadata'] = JSON.parse(metadata) as unknown;
      } catch {
        setError('Metadata must be a JSON object, e.g. {"customer": "acme"}.');
        return;
      }
    }
    setBusy(true);
    try {
      const created = await api<{ id: string }>('POST', '/api/v1/sessions', body);
      await props.ctx.reload();
      setId('');
      setWebhookUrl('');
      setMetadata('');
      location.hash = `#/sessions/${encodeURIComponent(created.id)}`;
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<section aria-labelledby="create-h" class="card">
    <h3 id="create-h">Create a session</h3>
    <form onSubmit=${submit} class="grid">
      <label for="new-id">Session id (optional)</label>
      <input id="new-id" value=${id} onInput=${(e: Event) => setId((e.target as HTMLInputElement).value)} placeholder="card-123" />
      <label for="new-webhook">Webhook URL (optional)</label>
      <input id="new-webhook" type="url" value=${webhookUrl} onInput=${(e: Event) => setWebhookUrl((e.target as HTMLInputElement).value)} placeholder="https://backend.example/hooks" />
      <label for="new-meta">Metadata, JSON (optional)</label>
      <textarea id="new-meta" rows="2" value=${metadata} onInput=${(e: Event) => setMetadata((e.target as HTMLTextAreaElement).value)}></textarea>
      <div><button type="submit" disabled=${busy}>Create session</button></div>
    </form>
    ${error ? html`<p role="alert" class="error">${error}</p>` : null}
  </section>`;
}

function Qr(props: { ctx: Ctx; session: Session }) {
  const { ctx, session } = props;
  const latest = ctx.qr.get(session.id);
  const [url, setUrl] = useState<string | null>(null);
  const [qrText, setQrText] = useState<string | null>(null);
  const [note, setNote] = useState('');
  const waiting = session.status === 'qr' || session.status === 'starting';
  // A QR exists once the status is qr or the stream sent one; before that the API answers 404.
  const ready = session.status === 'qr' || latest !== undefined;
  useEffect(() => {
    if (!waiting || !ready) return;
    let gone = false;
    let made: string | null = null;
    // The stream says a new QR exists; the image comes from the API (same credential), refreshed per rotation.
    Promise.all([apiObjectUrl(`/api/v1/sessions/${encodeURIComponent(session.id)}/qr?format=svg`), api<{ qr: string }>('GET', `/api/v1/sessions/${encodeURIComponent(session.id)}/qr?format=json`)]).then(
      ([u, j]) => {
        made = u;
        if (gone) URL.revokeObjectURL(u);
        else {
          setUrl(u);
          setQrText(j.qr);
          setNote('');
        }
      },
      (err: unknown) => {
        if (!gone) setNote(errorText(err));
      },
    );
    return () => {
      gone = true;
      if (made !== null) URL.revokeObjectURL(made);
    };
  }, [session.id, latest?.qr, waiting, ready]);
  if (!waiting) return null;
  const scan = async (): Promise<void> => {
    const qr = latest?.qr ?? qrText;
    if (qr === null || qr === undefined) return;
    setNote('The simulated phone is scanning…');
    try {
      const r = await api<{ phone: string }>('POST', '/api/v1/simulator/scan', { qr });
      setNote(`Scanned by simulated phone +${r.phone}.`);
    } catch (err) {
      setNote(errorText(err));
    }
  };
  return html`<section aria-labelledby="qr-h" class="card">
    <h3 id="qr-h">Scan to link</h3>
    ${url ? html`<img class="qr" src=${url} alt=${`QR code to link session ${session.id}`} width="264" height="264" data-qr=${latest?.qr ?? qrText ?? ''} />` : html`<p>Waiting for a QR code…</p>`}
    <p class="hint">Open WhatsApp on the phone, Linked devices, Link a device. The code refreshes as it rotates.</p>
    ${ctx.simulator && can(ctx.me, 'sessions:write') ? html`<button type="button" onClick=${scan} disabled=${url === null}>Scan with simulated phone</button>` : null}
    ${note ? html`<p role="status">${note}</p>` : null}
  </section>`;
}

function Actions(props: { ctx: Ctx; session: Session; onDeleting: (on: boolean) => void }) {
  const { ctx, session, onDeleting } = props;
  const id = encodeURIComponent(session.id);
  const [note, setNote] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [phone, setPhone] = useState('');
  const [code, setCode] = useState('');
  const [shard, setShard] = useState('');
  const [host, setHost] = useState('');
  const run = async (label: string, fn: () => Promise<unknown>): Promise<void> => {
    setNote(`${label}…`);
    try {
      await fn();
      setNote(`${label}: done.`);
      await ctx.reload();
    } catch (err) {
      setNote(`${label}: ${errorText(err)}`);
    }
  };
  const pairing = async (e: Event): Promise<void> => {
    e.preventDefault();
    setCode('');
    try {
      const r = await api<{ code: string }>('POST', `/api/v1/sessions/${id}/pairing-code`, { phone: phone.trim() });
      setCode(r.code);
      setNote('');
    } catch (err) {
      setNote(`Pairing code: ${errorText(err)}`);
    }
  };
  const migrate = (e: Event): Promise<void> => {
    e.preventDefault();
    const body: Record<string, unknown> = {};
    if (shard.trim() !== '') body['shard'] = Number(shard);
    if (host.trim() !== '') body['host'] = host.trim();
    return run('Migrate', () => api('POST', `/api/v1/sessions/${id}/migrate`, body));
  };
  return html`<section aria-labelledby="act-h" class="card">
    <h3 id="act-h">Actions</h3>
    <div class="row">
      <button type="button" onClick=${() => run('Restart', () => api('POST', `/api/v1/sessions/${id}/restart`))}>Restart</button>
      <button type="button" onClick=${() => run('Logout', () => api('POST', `/api/v1/sessions/${id}/logout`))}>Logout</button>
      ${confirming
        ? html`<span role="group" aria-label="Confirm delete">Delete ${session.id} and all its state?
            <button type="button" class="danger" onClick=${() => {
              setConfirming(false);
              onDeleting(true);
              void run('Delete', async () => {
                try {
                  await api('DELETE', `/api/v1/sessions/${id}`);
                } catch (err) {
                  onDeleting(false);
                  throw err;
                }
                location.hash = '#/sessions';
              });
            }}>Confirm delete</button>
            <button type="button" onClick=${() => setConfirming(false)}>Cancel</button></span>`
        : html`<button type="button" class="danger" onClick=${() => setConfirming(true)}>Delete…</button>`}
    </div>
    ${session.status !== 'connected'
      ? html`<form onSubmit=${pairing} class="row">
          <label for="pair-phone">Phone for a pairing code</label>
          <input id="pair-phone" inputMode="tel" value=${phone} onInput=${(e: Event) => setPhone((e.target as HTMLInputElement).value)} placeholder="+6287733760363" />
          <button type="submit">Get pairing code</button>
          ${code ? html`<output class="code" aria-label="Pairing code">${code}</output>` : null}
        </form>`
      : null}
    <form onSubmit=${migrate} class="row">
      <label for="mig-shard">Migrate to shard</label>
      <input id="mig-shard" type="number" min="0" max="255" value=${shard} onInput=${(e: Event) => setShard((e.target as HTMLInputElement).value)} />
      <label for="mig-host">or host</label>
      <input id="mig-host" value=${host} onInput=${(e: Event) => setHost((e.target as HTMLInputElement).value)} />
      <button type="submit">Migrate</button>
    </form>
    ${note ? html`<p role="status">${note}</p>` : null}
  </section>`;
}

/**
 * The stored status history (any host answers from the database), read again on each status event of the session;
 * not while this page deletes the session (its last status events arrive as its rows go).
 */
function History(props: { ctx: Ctx; id: string; deleting: boolean }) {
  const { ctx, id, deleting } = props;
  const changes = ctx.history.get(id)?.length ?? 0;
  const [rows, setRows] = useState<StatusChange[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState('');
  const path = `/api/v1/sessions/${encodeURIComponent(id)}/history?limit=50`;
  useEffect(() => {
    if (deleting) return;
    let gone = false;
    api<{ data: StatusChange[]; nextCursor: number | null }>('GET', path).then(
      (page) => {
        if (gone) return;
        setRows(page.data);
        setNext(page.nextCursor);
        setError('');
      },
      (err: unknown) => {
        if (!gone) setError(errorText(err));
      },
    );
    return () => {
      gone = true;
    };
  }, [id, changes, deleting]);
  const older = async (): Promise<void> => {
    if (next === null) return;
    try {
      const page = await api<{ data: StatusChange[]; nextCursor: number | null }>('GET', `${path}&cursor=${next}`);
      setRows((prev) => [...prev, ...page.data]);
      setNext(page.nextCursor);
    } catch (err) {
      setError(errorText(err));
    }
  };
  return html`<section aria-labelledby="hist-h" class="card">
    <h3 id="hist-h">Status history</h3>
    ${error ? html`<p role="alert" class="error">${error}</p>` : null}
    ${rows.length === 0
      ? html`<p>No status change stored yet.</p>`
      : html`<table class="history">
          <caption>Stored status changes, newest first (the newest 200 are kept)</caption>
          <thead><tr><th scope="col">Time</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Host / shard</th><th scope="col">Epoch</th></tr></thead>
          <tbody>
            ${rows.map(
              (r) => html`<tr data-seq=${r.seq}><td>${new Date(r.at).toLocaleString()}</td><td><${StatusBadge} status=${r.status} /></td><td>${r.reason ?? '—'}</td>
                <td>${r.host ?? '—'} / ${r.shard ?? '—'}</td><td>${r.epoch ?? '—'}</td></tr>`,
            )}
          </tbody>
        </table>`}
    ${next !== null ? html`<button type="button" onClick=${older}>Show older</button>` : null}
  </section>`;
}

function Detail(props: { ctx: Ctx; id: string }) {
  const { ctx, id } = props;
  const session = ctx.sessions.get(id);
  const [deleting, setDeleting] = useState(false);
  if (session === undefined) {
    return html`<section><h2>Session ${id}</h2><p>No such session, or not visible with this credential.</p><p><a href="#/sessions">Back to sessions</a></p></section>`;
  }
  return html`<section aria-labelledby="detail-h">
    <p><a href="#/sessions">← All sessions</a></p>
    <h2 id="detail-h">Session ${session.id}</h2>
    <dl class="facts">
      <dt>Status</dt><dd aria-live="polite" data-testid="session-status"><${StatusBadge} status=${session.status} />${session.reason ? ` (${session.reason})` : ''}</dd>
      <dt>Phone</dt><dd>${session.me ? `+${session.me.phone}${session.me.name ? ` · ${session.me.name}` : ''}` : '—'}</dd>
      <dt>Placement</dt><dd>${session.host ?? '—'} / shard ${session.shard ?? '—'}</dd>
      <dt>Webhook</dt><dd>${session.webhookUrl ?? '—'}</dd>
      <dt>Metadata</dt><dd><code>${JSON.stringify(session.metadata ?? {})}</code></dd>
      <dt>Updated</dt><dd>${time(session.updatedAt)}</dd>
    </dl>
    ${session.status === 'connected' && can(ctx.me, 'messages:read') ? html`<p><a href=${`#/chats/${encodeURIComponent(session.id)}`}>Open chats</a></p>` : null}
    <${Qr} ctx=${ctx} session=${session} />
    ${can(ctx.me, 'sessions:write') ? html`<${Actions} ctx=${ctx} session=${session} onDeleting=${setDeleting} />` : null}
    <${History} ctx=${ctx} id=${session.id} deleting=${deleting} />
  </section>`;
}

export function SessionsPage(props: { ctx: Ctx; selected: string | undefined }) {
  const { ctx } = props;
  const [search, setSearch] = useState('');
  const [status, setStatus] = useState('');
  if (props.selected !== undefined) return html`<${Detail} ctx=${ctx} id=${props.selected} />`;
  const q = search.trim().toLowerCase();
  const rows = [...ctx.sessions.values()]
    .filter((s) => status === '' || s.status === status)
    .filter((s) => q === '' || s.id.toLowerCase().includes(q) || (s.me?.phone ?? '').includes(q) || (s.me?.name ?? '').toLowerCase().includes(q))
    .sort((a, b) => a.id.localeCompare(b.id));
  return html`<section aria-labelledby="sessions-h">
    <h2 id="sessions-h">Sessions</h2>
    <p role="status" class=${ctx.live ? 'live on' : 'live'}>${ctx.live ? 'Live updates on' : 'Connecting to live updates…'}</p>
    ${ctx.listError ? html`<p role="alert" class="error">${ctx.listError}</p>` : null}
    <div class="row">
      <label for="search">Search</label>
      <input id="search" type="search" value=${search} onInput=${(e: Event) => setSearch((e.target as HTMLInputElement).value)} placeholder="id, phone or name" />
      <label for="status-filter">Status</label>
      <select id="status-filter" value=${status} onChange=${(e: Event) => setStatus((e.target as HTMLSelectElement).value)}>
        <option value="">any</option>
        ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
    </div>
    <table>
      <caption>${rows.length} of ${ctx.sessions.size} sessions</caption>
      <thead><tr><th scope="col">Session</th><th scope="col">Status</th><th scope="col">Phone</th><th scope="col">Host / shard</th><th scope="col">Updated</th></tr></thead>
      <tbody>
        ${rows.map(
          (s) => html`<tr data-session=${s.id}>
            <th scope="row"><a href=${`#/sessions/${encodeURIComponent(s.id)}`}>${s.id}</a></th>
            <td><${StatusBadge} status=${s.status} /></td>
            <td>${s.me ? `+${s.me.phone}` : '—'}</td>
            <td>${s.host ?? '—'} / ${s.shard ?? '—'}</td>
            <td>${time(s.updatedAt)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${can(ctx.me, 'sessions:write') ? html`<${CreateForm} ctx=${ctx} />` : null}
  </section>`;
}
