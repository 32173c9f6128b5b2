// The console's entry: sign-in, the shell (header, navigation) and the hash router over the pages.
import { h, render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, credential, openEvents, setCredential } from './api.ts';
import type { Credential, CredentialKind, SseEvent } from './api.ts';
import { html } from './html.ts';
import { ChatsPage } from './chats.ts';
import { ClusterPage } from './cluster.ts';
import { EventsPage } from './events.ts';
import { SessionsPage } from './sessions.ts';
import type { Session } from './sessions.ts';
import { WebhooksPage } from './webhooks.ts';
import type { Ctx, Me, StatusData } from './state.ts';
import { applyStatus, can, errorText, mergeSessions } from './state.ts';

const MAX_EVENTS = 500;

function useHashRoute(): string[] {
  const parse = (): string[] =>
    location.hash
      .replace(/^#\/?/, '')
      .split('/')
      .filter((p) => p !== '')
      .map((p) => decodeURIComponent(p));
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = (): void => setRoute(parse());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

function SignIn(props: { onSignedIn: (me: Me) => void }) {
  const [kind, setKind] = useState<CredentialKind>('api-key');
  const [value, setValue] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError('');
    const c: Credential = { kind, value: value.trim() };
    setCredential(c);
    try {
      props.onSignedIn(await api<Me>('GET', '/api/v1/me'));
    } catch (err) {
      setCredential(null);
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<main id="main" class="signin">
    <h1>WhatsApp gateway console</h1>
    <form onSubmit=${submit} aria-describedby="signin-help">
      <p id="signin-help">Sign in with an API key or a JWT. It is kept in this tab's session storage only.</p>
      <fieldset>
        <legend>Credential type</legend>
        <label><input type="radio" name="kind" value="api-key" checked=${kind === 'api-key'} onChange=${() => setKind('api-key')} /> API key</label>
        <label><input type="radio" name="kind" value="jwt" checked=${kind === 'jwt'} onChange=${() => setKind('jwt')} /> JWT (bearer token)</label>
      </fieldset>
      <label for="credential">${kind === 'api-key' ? 'API key' : 'Token'}</label>
      <input id="credential" type="password" autocomplete="off" required value=${value} onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)} />
      <button type="submit" disabled=${busy}>Sign in</button>
      ${error ? html`<p role="alert" class="error">${error}</p>` : null}
    </form>
  </main>`;
}

const PAGES: { key: string; label: string; visible: (me: Me) => boolean }[] = [
  { key: 'sessions', label: 'Sessions', visible: (me) => can(me, 'sessions:read') },
  { key: 'chats', label: 'Chats', visible: (me) => can(me, 'messages:read') },
  { key: 'cluster', label: 'Cluster', visible: (me) => can(me, 'admin') },
  { key: 'webhooks', label: 'Webhooks', visible: (me) => can(me, 'admin') },
  { key: 'events', label: 'Events', visible: (me) => can(me, 'sessions:read') },
];

function Shell(props: { me: Me; onSignOut: () => void }) {
  const { me } = props;
  const route = useHashRoute();
  const [sessions, setSessions] = useState<Map<string, Session>>(new Map());
  const [events, setEvents] = useState<SseEvent[]>([]);
  const [qr, setQr] = useState<Map<string, { qr: string; at: number }>>(new Map());
  const [history, setHistory] = useState<Map<string, SseEvent[]>>(new Map());
  const [messageTick, setMessageTick] = useState<Map<string, number>>(new Map());
  const [live, setLive] = useState(false);
  const [simulator, setSimulator] = useState(false);
  const [listError, setListError] = useState('');

  const reload = useCallback(async (): Promise<void> => {
    if (!can(me, 'sessions:read')) return;
    try {
      const all: Session[] = [];
      let after: string | null = null;
      do {
        const page: { data: Session[]; nextCursor: string | null } = await api('GET', `/api/v1/sessions?limit=500${after ? `&after=${encodeURIComponent(after)}` : ''}`);
        all.push(...page.data);
        after = page.nextCursor;
      } while (after !== null && all.length < 5000);
      setSessions((held) => mergeSessions(held, all));
      setListError('');
    } catch (err) {
      setListError(errorText(err));
    }
  }, [me]);

  useEffect(() => {
    void api<{ simulator: boolean }>('GET', '/console/config.json').then(
      (c) => setSimulator(c.simulator === true),
      () => setSimulator(false),
    );
  }, []);

  useEffect(() => {
    if (!can(me, 'sessions:read')) return;
    const onEvent = (e: SseEvent): void => {
      const id = String(e.data['id'] ?? e.data['sessionId'] ?? '');
      setEvents((prev) => {
        const next = [...prev, e];
        return next.length > MAX_EVENTS ? next.slice(next.length - MAX_EVENTS) : next;
      });
      if (id === '') return;
      if (e.type === 'status') {
        setSessions((prev) => {
          const s = prev.get(id);
          const next = new Map(prev);
          const d = e.data as StatusData;
          if (s === undefined) {
            // A session created elsewhere: read the list again for its full row.
            void reload();
            return prev;
          }
          next.set(id, applyStatus(s, d));
          return next;
        });
        setHistory((prev) => new Map(prev).set(id, [...(prev.get(id) ?? []), e].slice(-50)));
        if (e.data['status'] === 'connected') setQr((prev) => {
          const next = new Map(prev);
          next.delete(id);
          return next;
        });
      } else if (e.type === 'qr' && typeof e.data['qr'] === 'string') {
        setQr((prev) => new Map(prev).set(id, { qr: e.data['qr'] as string, at: e.at }));
      } else if (e.type === 'deleted') {
        setSessions((prev) => {
          const next = new Map(prev);
          next.delete(id);
          return next;
        });
      } else if (e.type === 'message' || e.type === 'message-status') {
        setMessageTick((prev) => new Map(prev).set(id, (prev.get(id) ?? 0) + 1));
      }
    };
    // Subscribe first, then read the list: a change between the two is in the stream, not lost.
    const stream = openEvents('/api/v1/events', onEvent, (up) => {
      setLive(up);
      if (up) void reload();
    });
    // The stream covers every host's sessions (relayed between the routers in a cluster), but the relay is at most
    // once: the list is read again now and then as a safety net.
    const timer = setInterval(() => void reload(), 60_000);
    return () => {
      stream.close();
      clearInterval(timer);
    };
  }, [me, reload]);

  const visible = PAGES.filter((p) => p.visible(me));
  const page = route[0] ?? visible[0]?.key ?? 'sessions';
  const ctx: Ctx = { me, sessions, reload, qr, history, messageTick, events, live, simulator, listError };
  let body;
  if (page === 'sessions' && can(me, 'sessions:read')) body = h(SessionsPage, { ctx, selected: route[1] });
  else if (page === 'chats' && can(me, 'messages:read')) body = h(ChatsPage, { ctx, session: route[1], chat: route[2] });
  else if (page === 'cluster' && can(me, 'admin')) body = h(ClusterPage, { ctx });
  else if (page === 'webhooks' && can(me, 'admin')) body = h(WebhooksPage, { ctx });
  else if (page === 'events' && can(me, 'sessions:read')) body = h(EventsPage, { ctx });
  else body = html`<h2>Nothing to show</h2><p>This credential has no scope for this page.</p>`;

  const mainRef = useRef<HTMLElement>(null);
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${(e: Event) => { e.preventDefault(); mainRef.current?.focus(); }}>Skip to content</a>
    <header class="top">
      <p class="brand">WhatsApp gateway</p>
      <p class="who">Signed in as <strong>${me.subject}</strong> (${me.kind}) · scopes: ${me.scopes.join(', ') || 'none'}${me.sessions ? html` · sessions: ${me.sessions.join(', ')}` : null}</p>
      <button type="button" onClick=${props.onSignOut}>Sign out</button>
    </header>
    <nav aria-label="Main">
      <ul>
        ${visible.map((p) => html`<li><a href=${`#/${p.key}`} aria-current=${page === p.key ? 'page' : undefined}>${p.label}</a></li>`)}
        <li><a href="/docs">API reference</a></li>
      </ul>
    </nav>
    <main id="main" tabIndex=${-1} ref=${mainRef}>${body}</main>
  </div>`;
}

function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(credential() !== null);
  useEffect(() => {
    if (credential() === null) return;
    api<Me>('GET', '/api/v1/me').then(
      (m) => {
        setMe(m);
        setChecking(false);
      },
      () => {
        setCredential(null);
        setChecking(false);
      },
    );
  }, []);
  if (checking) return html`<main id="main"><p>Checking the saved credential…</p></main>`;
  if (me === null) return h(SignIn, { onSignedIn: setMe });
  return h(Shell, {
    me,
    onSignOut: () => {
      setCredential(null);
      setMe(null);
      location.hash = '';
    },
  });
}

const root = document.getElementById('root');
if (root !== null) {
  root.textContent = '';
  render(h(App, {}), root);
}
