// Chats: a session's chats from the message store, one conversation with statuses and media previews, and
// a composer (text, file upload, reply, react). New messages and status changes arrive on the event stream.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, apiObjectUrl, uploadFile } from './api.ts';
import { html } from './html.ts';
import type { Ctx } from './state.ts';
import { can, errorText, time } from './state.ts';

interface Message {
  id: string;
  chat: string;
  from?: string;
  fromMe: boolean;
  timestamp: string;
  type: string;
  status: string;
  text?: string;
  caption?: string;
  media?: { mimetype?: string; fileName?: string };
  reaction?: { messageId: string; emoji: string; removed: boolean };
  reactions?: { from: string; fromMe: boolean; emoji: string; at: string }[];
  quotedId?: string;
}

const MEDIA = new Set(['image', 'sticker']);

function chatLabel(jid: string): string {
  const user = jid.split('@')[0] ?? jid;
  return jid.endsWith('@g.us') ? `Group ${user}` : `+${user.split(':')[0] ?? user}`;
}

/** The quoted message's text when it is in view, else its id. */
function quotedText(messages: readonly Message[], id: string): string {
  const q = messages.find((x) => x.id === id);
  const text = q?.text ?? q?.caption;
  return text === undefined ? id : `“${text.slice(0, 60)}”`;
}

function Preview(props: { session: string; message: Message }) {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    let made: string | null = null;
    let gone = false;
    apiObjectUrl(`/api/v1/sessions/${encodeURIComponent(props.session)}/messages/${encodeURIComponent(props.message.id)}/media`).then(
      (u) => {
        made = u;
        if (gone) URL.revokeObjectURL(u);
        else setUrl(u);
      },
      () => undefined,
    );
    return () => {
      gone = true;
      if (made !== null) URL.revokeObjectURL(made);
    };
  }, [props.session, props.message.id]);
  if (url === null) return html`<span class="media-note">[${props.message.type}${props.message.media?.fileName ? `: ${props.message.media.fileName}` : ''}]</span>`;
  return html`<img class="preview" src=${url} alt=${props.message.caption ? `Image: ${props.message.caption}` : `${props.message.type} sent ${time(props.message.timestamp)}`} />`;
}

function Conversation(props: { ctx: Ctx; session: string; chat: string }) {
  const { ctx, session, chat } = props;
  const sid = encodeURIComponent(session);
  const [messages, setMessages] = useState<Message[]>([]);
  const [error, setError] = useState('');
  const [text, setText] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [replyTo, setReplyTo] = useState<Message | null>(null);
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const fileRef = useRef<HTMLInputElement>(null);
  const tick = ctx.messageTick.get(session) ?? 0;
  useEffect(() => {
    let gone = false;
    api<{ data: Message[] }>('GET', `/api/v1/sessions/${sid}/messages?chat=${encodeURIComponent(chat)}&limit=100`).then(
      (page) => {
        if (!gone) {
          setMessages(page.data.slice().reverse());
          setError('');
        }
      },
      (err: unknown) => {
        if (!gone) setError(errorText(err));
      },
    );
    return () => {
      gone = true;
    };
  }, [session, chat, tick]);
  const send = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (text.trim() === '' && file === null) return;
    setBusy(true);
    setNote('Sending…');
    try {
      const common: Record<string, unknown> = { to: chat };
      if (replyTo !== null) common['quotedId'] = replyTo.id;
      if (file !== null) {
        const up = await uploadFile<{ upload: string; mimetype: string }>(`/api/v1/sessions/${sid}/uploads`, file);
        const mime = up.mimetype || file.type;
        const type = mime.startsWith('image/') ? 'image' : mime.startsWith('video/') ? 'video' : mime.startsWith('audio/') ? 'audio' : 'document';
        const body: Record<string, unknown> = { ...common, type, media: { upload: up.upload } };
        if (text.trim() !== '' && type !== 'audio') body['caption'] = text;
        if (type === 'document') body['fileName'] = file.name;
        await api('POST', `/api/v1/sessions/${sid}/messages`, body);
      } else {
        await api('POST', `/api/v1/sessions/${sid}/messages`, { ...common, type: 'text', text });
      }
      setText('');
      setFile(null);
      if (fileRef.current) fileRef.current.value = '';
      setReplyTo(null);
      setNote('Sent.');
    } catch (err) {
      setNote(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  const react = async (m: Message): Promise<void> => {
    try {
      await api('POST', `/api/v1/sessions/${sid}/messages`, { to: chat, type: 'reaction', messageId: m.id, emoji: '👍' });
      setNote('Reacted.');
    } catch (err) {
      setNote(errorText(err));
    }
  };
  const canSend = can(ctx.me, 'messages:send');
  const shown = messages.filter((m) => m.type !== 'reaction');
  return html`<section aria-labelledby="conv-h" class="conversation">
    <h3 id="conv-h">Chat with ${chatLabel(chat)}</h3>
    ${error ? html`<p role="alert" class="error">${error}</p>` : null}
    <ol class="messages" aria-live="polite">
      ${shown.map(
        (m) => html`<li class=${m.fromMe ? 'msg me' : 'msg them'} data-message=${m.id}>
          <p class="meta">${m.fromMe ? 'You' : chatLabel(m.from ?? chat)} · ${time(m.timestamp)} · <span class="status" data-status=${m.status}>${m.status}</span></p>
          ${m.quotedId ? html`<p class="quoted">Reply to ${quotedText(shown, m.quotedId)}</p>` : null}
          ${MEDIA.has(m.type) ? html`<${Preview} session=${session} message=${m} />` : m.media ? html`<span class="media-note">[${m.type}]</span>` : null}
          ${m.text ?? m.caption ? html`<p class="text">${m.text ?? m.caption}</p>` : null}
          ${m.reactions && m.reactions.length > 0 ? html`<p class="reactions" aria-label="Reactions">${m.reactions.map((r) => r.emoji).join(' ')}</p>` : null}
          ${canSend
            ? html`<div class="msg-actions">
                <button type="button" onClick=${() => setReplyTo(m)} aria-label=${`Reply to message ${m.id}`}>Reply</button>
                <button type="button" onClick=${() => react(m)} aria-label=${`React with thumbs up to message ${m.id}`}>👍</button>
              </div>`
            : null}
        </li>`,
      )}
    </ol>
    ${canSend
      ? html`<form onSubmit=${send} class="composer">
          ${replyTo ? html`<p class="replying">Replying to “${(replyTo.text ?? replyTo.caption ?? replyTo.type).slice(0, 60)}” <button type="button" onClick=${() => setReplyTo(null)}>Cancel reply</button></p>` : null}
          <label for="compose-text">Message</label>
          <textarea id="compose-text" rows="2" value=${text} onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea>
          <label for="compose-file">Attach a file</label>
          <input id="compose-file" type="file" ref=${fileRef} onChange=${(e: Event) => setFile((e.target as HTMLInputElement).files?.[0] ?? null)} />
          <button type="submit" disabled=${busy}>Send</button>
          ${note ? html`<p role="status">${note}</p>` : null}
        </form>`
      : null}
  </section>`;
}

export function ChatsPage(props: { ctx: Ctx; session: string | undefined; chat: string | undefined }) {
  const { ctx } = props;
  const sessions = [...ctx.sessions.values()].sort((a, b) => a.id.localeCompare(b.id));
  const session = props.session ?? sessions.find((s) => s.status === 'connected')?.id ?? sessions[0]?.id;
  const [chats, setChats] = useState<{ chat: string; last: Message }[]>([]);
  const [error, setError] = useState('');
  const [to, setTo] = useState('');
  const [contacts, setContacts] = useState<{ number: string; name: string }[]>([]);
  const tick = session === undefined ? 0 : (ctx.messageTick.get(session) ?? 0);
  useEffect(() => {
    if (session === undefined) return;
    let gone = false;
    api<{ data: Message[] }>('GET', `/api/v1/sessions/${encodeURIComponent(session)}/messages?limit=100`).then(
      (page) => {
        if (gone) return;
        const latest = new Map<string, Message>();
        // Protocol traffic the gateway stores as `unsupported` (key shares, app-state syncs) makes no chat.
        for (const m of page.data) if (m.type !== 'unsupported' && !latest.has(m.chat)) latest.set(m.chat, m);
        setChats([...latest.entries()].map(([chat, last]) => ({ chat, last })));
        setError('');
      },
      (err: unknown) => {
        if (!gone) setError(errorText(err));
      },
    );
    return () => {
      gone = true;
    };
  }, [session, tick]);
  useEffect(() => {
    if (!ctx.simulator) return;
    api<{ data: { number: string; name: string }[] }>('GET', '/api/v1/simulator/contacts').then(
      (r) => setContacts(r.data),
      () => setContacts([]),
    );
  }, [ctx.simulator]);
  const open = (chat: string): void => {
    if (session !== undefined) location.hash = `#/chats/${encodeURIComponent(session)}/${encodeURIComponent(chat)}`;
  };
  return html`<section aria-labelledby="chats-h">
    <h2 id="chats-h">Chats</h2>
    <div class="row">
      <label for="chat-session">Session</label>
      <select id="chat-session" value=${session ?? ''} onChange=${(e: Event) => (location.hash = `#/chats/${encodeURIComponent((e.target as HTMLSelectElement).value)}`)}>
        ${sessions.map((s) => html`<option value=${s.id}>${s.id} (${s.status})</option>`)}
      </select>
    </div>
    ${error ? html`<p role="alert" class="error">${error}</p>` : null}
    <div class="chats">
      <nav aria-label="Chats of the session" class="chat-list">
        <ul>
          ${chats.map(
            (c) => html`<li><a href=${`#/chats/${encodeURIComponent(session ?? '')}/${encodeURIComponent(c.chat)}`} aria-current=${c.chat === props.chat ? 'page' : undefined}>
              <strong>${chatLabel(c.chat)}</strong><span class="last">${(c.last.text ?? c.last.caption ?? `[${c.last.type}]`).slice(0, 40)}</span></a></li>`,
          )}
        </ul>
        ${can(ctx.me, 'messages:send')
          ? html`<form class="new-chat" onSubmit=${(e: Event) => {
              e.preventDefault();
              const digits = to.replace(/[^0-9]/g, '');
              if (digits !== '') open(`${digits}@s.whatsapp.net`);
            }}>
              <label for="new-chat">New chat with (phone)</label>
              <input id="new-chat" inputMode="tel" value=${to} onInput=${(e: Event) => setTo((e.target as HTMLInputElement).value)} placeholder="+6281234567890" />
              <button type="submit">Open chat</button>
            </form>`
          : null}
        ${contacts.length > 0
          ? html`<h3>Simulated contacts</h3>
              <ul class="contacts">${contacts.map((c) => html`<li><button type="button" onClick=${() => open(`${c.number}@s.whatsapp.net`)}>Chat with ${c.name} (+${c.number})</button></li>`)}</ul>`
          : null}
      </nav>
      ${session !== undefined && props.chat !== undefined ? html`<${Conversation} ctx=${ctx} session=${session} chat=${props.chat} />` : html`<p>Pick a chat.</p>`}
    </div>
  </section>`;
}
