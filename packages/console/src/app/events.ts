// The live event monitor: the stream of every visible session (or one), pausable, filtered by type.
import { useState } from 'preact/hooks';
import type { SseEvent } from './api.ts';
import { html } from './html.ts';
import type { Ctx } from './state.ts';
import { time } from './state.ts';

const TYPES = ['status', 'qr', 'message', 'message-status', 'deleted'];

export function EventsPage(props: { ctx: Ctx }) {
  const { ctx } = props;
  const [paused, setPaused] = useState<SseEvent[] | null>(null);
  const [types, setTypes] = useState<Set<string>>(new Set(TYPES));
  const [session, setSession] = useState('');
  const source = paused ?? ctx.events;
  const shown = source
    .filter((e) => types.has(e.type))
    .filter((e) => session === '' || e.data['id'] === session || e.data['sessionId'] === session)
    .slice(-200)
    .reverse();
  const toggle = (t: string): void => {
    const next = new Set(types);
    if (next.has(t)) next.delete(t);
    else next.add(t);
    setTypes(next);
  };
  return html`<section aria-labelledby="ev-h">
    <h2 id="ev-h">Live events</h2>
    <div class="row">
      <button type="button" aria-pressed=${paused !== null} onClick=${() => setPaused(paused === null ? ctx.events.slice() : null)}>${paused === null ? 'Pause' : `Resume (${ctx.events.length - paused.length} new)`}</button>
      <label for="ev-session">Session</label>
      <select id="ev-session" value=${session} onChange=${(e: Event) => setSession((e.target as HTMLSelectElement).value)}>
        <option value="">all sessions</option>
        ${[...ctx.sessions.keys()].sort().map((id) => html`<option value=${id}>${id}</option>`)}
      </select>
    </div>
    <fieldset class="row">
      <legend>Event types</legend>
      ${TYPES.map((t) => html`<label><input type="checkbox" checked=${types.has(t)} onChange=${() => toggle(t)} /> ${t}</label>`)}
    </fieldset>
    <p role="status">${ctx.live ? 'Streaming' : 'Reconnecting…'} · ${shown.length} shown</p>
    <ol class="events">
      ${shown.map((e) => html`<li data-type=${e.type}><span class="ev-time">${time(e.at)}</span> <strong>${e.type}</strong> <code>${JSON.stringify(e.type === 'qr' ? { ...e.data, qr: '…' } : e.data).slice(0, 300)}</code></li>`)}
    </ol>
  </section>`;
}
