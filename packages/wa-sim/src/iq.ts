// `<iq>` queries from logged-in clients: prekeys, key bundles, usync (devices, LIDs, contacts), media_conn,
// app-state sync, props, privacy, pings, logout, pairing-code stages.
import type { Logger } from 'pino';
import type { Device, Registry } from './accounts.ts';
import type { Connection } from './connection.ts';
import type { Groups } from './groups.ts';
import type { MediaStore } from './media.ts';
import { beBytes, child, childBytes, children, childrenOf, node, text, uintBE, unixNow } from './nodes.ts';
import type { Pairing } from './pairing.ts';
import type { Stats } from './stats.ts';
import type { BinaryNode, PreKeyBundle } from './types.ts';

export interface IqContext {
  readonly registry: Registry;
  readonly pairing: Pairing;
  readonly stats: Stats;
  readonly media: MediaStore;
  readonly logger: Logger;
  readonly groups: Groups;
  /** The client logged itself out (remove-companion-device). */
  unlink(device: Device, reason: string, notifyClient: boolean): void;
}

const S_WHATSAPP_NET = 's.whatsapp.net';
const LOW_PREKEYS = 5;

const result = (iq: BinaryNode, content?: BinaryNode[]): BinaryNode =>
  node('iq', { type: 'result', id: iq.attrs.id, from: S_WHATSAPP_NET }, content);

const error = (iq: BinaryNode, code: number, txt: string): BinaryNode =>
  node('iq', { type: 'error', id: iq.attrs.id, from: S_WHATSAPP_NET }, [node('error', { code: String(code), text: txt })]);

const bundleNode = (jid: string, b: PreKeyBundle): BinaryNode =>
  node('user', { jid }, [
    node('registration', {}, beBytes(b.registrationId, 4)),
    node('type', {}, Buffer.from([5])),
    node('identity', {}, b.identityKey),
    node('skey', {}, [
      node('id', {}, beBytes(b.signedPreKey.id, 3)),
      node('value', {}, b.signedPreKey.public),
      node('signature', {}, b.signedPreKey.signature),
    ]),
    ...(b.preKey ? [node('key', {}, [node('id', {}, beBytes(b.preKey.id, 3)), node('value', {}, b.preKey.public)])] : []),
  ]);

const APP_STATE_OK = (iq: BinaryNode): BinaryNode => {
  const collections = childrenOf(child(iq, 'sync'), 'collection').map(c => node('collection', { name: c.attrs.name, version: c.attrs.version ?? '0' }));
  return result(iq, [node('sync', {}, collections)]);
};

export const handleIq = (ctx: IqContext, conn: Connection, iq: BinaryNode): void => {
  ctx.stats.iqs++;
  const dev = conn.device;
  const xmlns = iq.attrs.xmlns ?? '';
  const first = children(iq)[0];
  const send = (n: BinaryNode): void => conn.send(n);
  if (!dev) {
    // before login only pairing-code stages are valid
    if (xmlns === 'md' && first?.tag === 'link_code_companion_reg') ctx.pairing.onLinkCodeIq(conn, iq, first);
    else if (xmlns === 'w:p') send(result(iq));
    else send(error(iq, 401, 'not-authorized'));
    return;
  }
  switch (xmlns) {
    case 'encrypt':
      return handleEncrypt(ctx, conn, dev, iq, first);
    case 'usync':
      return send(usync(ctx, iq));
    case 'w:g2':
      return send(ctx.groups.handleIq(dev, iq));
    case 'passive':
    case 'w:p':
    case 'urn:xmpp:whatsapp:dirty':
    case 'w:stats':
    case 'disappearing_mode':
    case 'status':
    case 'bot':
      return send(result(iq));
    case 'w:m':
      return send(result(iq, [
        node('media_conn', { auth: ctx.media.auth, ttl: '3600', auth_ttl: '21600', max_buckets: '12' }, [
          node('host', { hostname: ctx.media.hostPort, maxContentLengthBytes: '104857600' }),
        ]),
      ]));
    case 'abt':
      return send(result(iq, [node('props', { protocol: '1', hash: 'wa-sim-1' }, [])]));
    case 'blocklist':
      return send(iq.attrs.type === 'get' ? result(iq, [node('list', {}, [])]) : result(iq));
    case 'privacy':
      if (iq.attrs.type === 'get' && first?.tag === 'privacy') {
        const cats = ['last', 'online', 'profile', 'status', 'groupadd', 'readreceipts', 'calladd', 'messages'];
        const values: Record<string, string> = { readreceipts: 'all', online: 'all', groupadd: 'all', calladd: 'all', messages: 'all' };
        return send(result(iq, [node('privacy', {}, cats.map(name => node('category', { name, value: values[name] ?? 'contacts' })))]));
      }
      return send(result(iq));
    case 'w:sync:app:state':
      return send(APP_STATE_OK(iq));
    case 'w:profile:picture':
      if (iq.attrs.target?.endsWith('@g.us')) return send(ctx.groups.handlePictureIq(dev, iq));
      return send(iq.attrs.type === 'get' ? error(iq, 404, 'item-not-found') : result(iq));
    case 'w:mex':
      return send(result(iq, [node('result', {}, Buffer.from('{"data":{}}'))]));
    case 'md':
      if (first?.tag === 'link_code_companion_reg') return ctx.pairing.onLinkCodeIq(conn, iq, first);
      if (first?.tag === 'remove-companion-device') {
        send(result(iq));
        const jid = first.attrs.jid ?? dev.pnJid;
        const target = ctx.registry.device(jid);
        if (target && target.account === dev.account) ctx.unlink(target, first.attrs.reason ?? 'user_initiated', target !== dev);
        return;
      }
      return send(result(iq));
    default:
      ctx.stats.unhandledIqs++;
      ctx.logger.debug({ xmlns, tag: first?.tag, device: dev.pnJid }, 'unhandled iq answered with an empty result');
      return send(result(iq));
  }
};

const handleEncrypt = (ctx: IqContext, conn: Connection, dev: Device, iq: BinaryNode, first: BinaryNode | undefined): void => {
  const type = iq.attrs.type;
  if (type === 'get' && first?.tag === 'count') {
    conn.send(result(iq, [node('count', { value: String(dev.preKeys.length) })]));
    return;
  }
  if (type === 'get' && first?.tag === 'digest') {
    conn.send(result(iq, [node('digest', {}, [])]));
    return;
  }
  if (type === 'get' && first?.tag === 'key') {
    const users: BinaryNode[] = [];
    for (const u of childrenOf(first, 'user')) {
      const jid = u.attrs.jid;
      const target = jid ? ctx.registry.device(jid) : undefined;
      if (!jid || !target) continue;
      users.push(bundleNode(jid, target.takeBundle()));
      if (target.kind === 'companion' && target.preKeys.length < LOW_PREKEYS) {
        for (const c of target.conns) c.send(node('notification', { from: S_WHATSAPP_NET, type: 'encrypt', id: `pk-${Date.now()}-${c.id}`, t: unixNow() }, [node('count', { value: String(target.preKeys.length) })]));
      }
    }
    conn.send(result(iq, [node('list', {}, users)]));
    return;
  }
  if (type === 'set' && child(iq, 'list')) {
    ctx.stats.preKeyUploads++;
    const ident = childBytes(iq, 'identity');
    const reg = childBytes(iq, 'registration');
    if (ident) dev.identityKey = ident;
    if (reg) dev.registrationId = uintBE(reg);
    const skey = child(iq, 'skey');
    if (skey) {
      const value = childBytes(skey, 'value');
      const sig = childBytes(skey, 'signature');
      if (value && sig) dev.signedPreKey = { id: uintBE(childBytes(skey, 'id')), public: value, signature: sig };
    }
    for (const k of childrenOf(child(iq, 'list'), 'key')) {
      const value = childBytes(k, 'value');
      if (value) dev.preKeys.push({ id: uintBE(childBytes(k, 'id')), public: value });
    }
    conn.send(result(iq));
    return;
  }
  if (type === 'set' && first?.tag === 'rotate') {
    const skey = child(first, 'skey');
    const value = childBytes(skey, 'value');
    const sig = childBytes(skey, 'signature');
    if (value && sig) dev.signedPreKey = { id: uintBE(childBytes(skey, 'id')), public: value, signature: sig };
    conn.send(result(iq));
    return;
  }
  conn.send(result(iq));
};

const usync = (ctx: IqContext, iq: BinaryNode): BinaryNode => {
  const us = child(iq, 'usync');
  const protocols = children(child(us, 'query')).map(p => p.tag);
  const users: BinaryNode[] = [];
  for (const u of childrenOf(child(us, 'list'), 'user')) {
    let jid = u.attrs.jid;
    const phone = text(child(u, 'contact'));
    if (!jid && phone) jid = `${phone.replace(/[^0-9]/g, '')}@s.whatsapp.net`;
    if (!jid) continue;
    const resolved = ctx.registry.resolve(jid);
    const acc = resolved?.account;
    const content: BinaryNode[] = [];
    for (const p of protocols) {
      switch (p) {
        case 'devices': {
          const list = acc
            ? acc.activeDevices().map(d => node('device', d.id ? { id: String(d.id), 'key-index': String(d.keyIndex) } : { id: '0' }))
            : [];
          const kil = acc?.signedKeyIndexList();
          content.push(node('devices', {}, [
            node('device-list', {}, list),
            ...(kil ? [node('key-index-list', { ts: String(kil.ts) }, kil.bytes)] : []),
          ]));
          break;
        }
        case 'lid':
          if (acc) content.push(node('lid', { val: acc.lidJid }));
          break;
        case 'contact':
          content.push(node('contact', { type: acc ? 'in' : 'out' }));
          break;
        case 'disappearing_mode':
          content.push(node('disappearing_mode', { duration: '0', t: '0' }));
          break;
        case 'status':
          if (acc) content.push(node('status', { t: '0' }, Buffer.from('Hey there! I am using WhatsApp.')));
          break;
        default:
          break;
      }
    }
    users.push(node('user', { jid: resolved?.device === undefined ? jid : jid.replace(/:\d+@/, '@') }, content));
  }
  return result(iq, [
    node('usync', { sid: us?.attrs.sid, index: '0', last: 'true', mode: us?.attrs.mode, context: us?.attrs.context }, [
      node('result', {}, []),
      node('list', {}, users),
    ]),
  ]);
};
