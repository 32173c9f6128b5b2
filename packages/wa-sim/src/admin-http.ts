// HTTP admin API (JSON) mirroring the in-process control surface; served on the simulator's main port.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { proto } from '@whiskeysockets/baileys';
import type { FaultSpec } from './faults.ts';
import type { ReceivedMessage, SentMessage, SimPhone } from './phone.ts';
import type { KickMode, ProvisionKeys, WaSimulator } from './simulator.ts';

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const messageJson = (m: proto.IMessage | undefined): unknown =>
  m ? proto.Message.toObject(proto.Message.fromObject(m), { longs: String, bytes: String, enums: String }) : undefined;

const receivedJson = (r: ReceivedMessage): unknown => ({ ...r, message: messageJson(r.message) });
const sentJson = (s: SentMessage): unknown => ({ ...s, message: messageJson(s.message) });

const phoneJson = (p: SimPhone): unknown => ({
  number: p.number,
  jid: p.jid,
  lid: p.lidJid,
  name: p.name,
  linkedDevices: p.linkedDevices().map(d => ({ jid: d.pnJid, lid: d.lidJid, live: d.conns.size, platform: d.platform })),
});

const readBody = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (!chunks.length) return {};
  try {
    const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new HttpError(400, 'body must be a JSON object');
};

const str = (body: Record<string, unknown>, key: string): string => {
  const v = body[key];
  if (typeof v !== 'string' || !v) throw new HttpError(400, `"${key}" (string) is required`);
  return v;
};

const optStr = (body: Record<string, unknown>, key: string): string | undefined => {
  const v = body[key];
  return typeof v === 'string' && v ? v : undefined;
};

const b64 = (v: unknown, what: string, len?: number): Buffer => {
  if (typeof v !== 'string' || !v) throw new HttpError(400, `${what} (base64 string) is required`);
  const b = Buffer.from(v, 'base64');
  if (len !== undefined && b.length !== len) throw new HttpError(400, `${what} must be ${len} bytes, got ${b.length}`);
  return b;
};

const keyId = (v: unknown, what: string): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= 2 ** 24) throw new HttpError(400, `${what} must be an integer in [0, 2^24)`);
  return v;
};

const MAX_PROVISION = 10_000;

/** `POST /provision`: either bare Noise keys or devices with their public Signal keys (see provisionDevice). */
const provisionBody = (body: Record<string, unknown>): ProvisionKeys[] => {
  const { noiseKeys, devices } = body;
  const list = Array.isArray(devices) ? devices : Array.isArray(noiseKeys) ? noiseKeys.map(noiseKey => ({ noiseKey })) : undefined;
  if (!list) throw new HttpError(400, '"noiseKeys" (base64 string[]) or "devices" (object[]) is required');
  if (list.length > MAX_PROVISION) throw new HttpError(400, `at most ${MAX_PROVISION} devices per call, got ${list.length}`);
  return list.map((d: unknown, i): ProvisionKeys => {
    if (!d || typeof d !== 'object') throw new HttpError(400, `devices[${i}] must be an object`);
    const o = d as Record<string, unknown>;
    const keys: ProvisionKeys = { noiseKey: b64(o.noiseKey, `devices[${i}].noiseKey`, 32) };
    if (o.identityKey !== undefined) keys.identityKey = b64(o.identityKey, `devices[${i}].identityKey`, 32);
    if (o.registrationId !== undefined) keys.registrationId = keyId(o.registrationId, `devices[${i}].registrationId`);
    if (o.signedPreKey !== undefined) {
      const s = o.signedPreKey as Record<string, unknown> | null;
      if (!s || typeof s !== 'object') throw new HttpError(400, `devices[${i}].signedPreKey must be an object`);
      keys.signedPreKey = { id: keyId(s.id, `devices[${i}].signedPreKey.id`), public: b64(s.public, `devices[${i}].signedPreKey.public`, 32), signature: b64(s.signature, `devices[${i}].signedPreKey.signature`, 64) };
    }
    if (o.preKeys !== undefined) {
      if (!Array.isArray(o.preKeys)) throw new HttpError(400, `devices[${i}].preKeys must be an array`);
      keys.preKeys = o.preKeys.map((k: unknown, j) => {
        const kk = (k ?? {}) as Record<string, unknown>;
        return { id: keyId(kk.id, `devices[${i}].preKeys[${j}].id`), public: b64(kk.public, `devices[${i}].preKeys[${j}].public`, 32) };
      });
    }
    return keys;
  });
};

export const ROUTES = [
  'GET    /                          urls, root key, routes',
  'GET    /stats                     counters, live sockets per device, violations',
  'GET    /config                    Baileys client settings (ws url, media CA, root key)',
  'PUT    /config                    {receiptDelayMs}',
  'GET    /phones                    list phones',
  'POST   /phones                    {number?, name?, lid?} create a phone',
  'GET    /phones/:number            one phone',
  'POST   /phones/:number/scan       {qr} phone scans a QR string',
  'POST   /phones/:number/pairing-code  {code} phone enters a pairing code',
  'POST   /phones/:number/send       {to, text} or {to, message: proto.Message JSON}',
  'GET    /phones/:number/received   messages the phone received (decrypted) with receipts sent',
  'GET    /phones/:number/sent       messages the phone sent with their receipts',
  'POST   /phones/:number/read       {ids: [...]} send read receipts',
  'POST   /phones/:number/presence   {type: available|unavailable}',
  'POST   /phones/:number/devices    {noiseKey: base64} provision a linked device without pairing (raw clients)',
  'POST   /provision                 {noiseKeys: base64[]} | {devices: [{noiseKey, identityKey?, registrationId?, signedPreKey?: {id, public, signature}, preKeys?: [{id, public}]}]} (base64 keys) bulk phones + provisioned devices',
  'GET    /devices                   all devices',
  'POST   /devices/:jid/kick         {mode: close|terminate|replaced|unlink|restart|timeout|server-error}',
  'GET    /faults                    active faults',
  'POST   /faults                    {kind: rate-limit, target?, code?, count?} | {kind: latency, target?, ms}',
  'DELETE /faults[/:id]              clear faults',
];

export const createAdminHandler = (sim: WaSimulator) => (req: IncomingMessage, res: ServerResponse): void => {
  route(sim, req)
    .then(value => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value, null, 2));
    })
    .catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
    });
};

const route = async (sim: WaSimulator, req: IncomingMessage): Promise<unknown> => {
  const url = new URL(req.url ?? '/', 'http://wa-sim');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const method = req.method ?? 'GET';
  const [head, id, action] = parts;
  const phone = (): SimPhone => {
    const p = id ? sim.phone(id) : undefined;
    if (!p) throw new HttpError(404, `no phone ${id ?? ''}`);
    return p;
  };
  if (!head && method === 'GET') return { urls: sim.urls, rootPublicKeyBase64: sim.rootPublicKey.toString('base64'), routes: ROUTES };
  if (head === 'health') return { ok: true };
  if (head === 'stats' && method === 'GET') return sim.snapshot();
  if (head === 'config') {
    if (method === 'PUT') {
      const body = await readBody(req);
      if (typeof body.receiptDelayMs === 'number') sim.receiptDelayMs = body.receiptDelayMs;
    }
    return {
      waWebSocketUrl: sim.urls.ws,
      mediaUrl: sim.urls.media,
      mediaCaPem: sim.mediaCaPem,
      rootPublicKeyBase64: sim.rootPublicKey.toString('base64'),
      rootPublicKeyHex: sim.rootPublicKey.toString('hex'),
      receiptDelayMs: sim.receiptDelayMs,
    };
  }
  if (head === 'phones') {
    if (!id) {
      if (method === 'POST') {
        const body = await readBody(req);
        return phoneJson(sim.createPhone({ number: optStr(body, 'number'), name: optStr(body, 'name'), lid: optStr(body, 'lid') }));
      }
      return sim.phones().map(phoneJson);
    }
    const p = phone();
    if (!action && method === 'GET') return phoneJson(p);
    if (action === 'received') return p.received().map(receivedJson);
    if (action === 'sent') return p.sent().map(sentJson);
    if (method !== 'POST') throw new HttpError(405, 'use POST');
    const body = await readBody(req);
    switch (action) {
      case 'scan': {
        const l = await sim.scanQr(p, str(body, 'qr'));
        return { jid: l.jid, lid: l.lid };
      }
      case 'pairing-code': {
        const l = await sim.enterPairingCode(p, str(body, 'code'));
        return { jid: l.jid, lid: l.lid };
      }
      case 'send': {
        const to = str(body, 'to');
        const text = optStr(body, 'text');
        const msg = body.message;
        if (text !== undefined) return sentJson(await p.sendText(to, text));
        if (msg && typeof msg === 'object') return sentJson(await p.sendMessage(to, proto.Message.fromObject(msg as Record<string, unknown>)));
        throw new HttpError(400, '"text" or "message" is required');
      }
      case 'read': {
        const ids = body.ids;
        if (!Array.isArray(ids) || !ids.every((x): x is string => typeof x === 'string')) throw new HttpError(400, '"ids" (string[]) is required');
        p.markRead(ids);
        return { ok: true };
      }
      case 'devices': {
        return sim.provisionDevice(p, { noiseKey: Buffer.from(str(body, 'noiseKey'), 'base64') });
      }
      case 'presence': {
        const type = str(body, 'type');
        if (type !== 'available' && type !== 'unavailable') throw new HttpError(400, 'type must be available or unavailable');
        sim.setPresence(p.account, type);
        return { ok: true };
      }
      default:
        throw new HttpError(404, `unknown action ${action ?? ''}`);
    }
  }
  if (head === 'provision' && method === 'POST') {
    const body = await readBody(req);
    const devices = provisionBody(body);
    return devices.map(keys => {
      const p = sim.createPhone();
      return { number: p.number, ...sim.provisionDevice(p, keys) };
    });
  }
  if (head === 'devices') {
    if (!id) return sim.devices();
    if (action === 'kick' && method === 'POST') {
      const body = await readBody(req);
      const mode = (optStr(body, 'mode') ?? 'close') as KickMode;
      if (!['close', 'terminate', 'replaced', 'unlink', 'restart', 'timeout', 'server-error'].includes(mode)) throw new HttpError(400, 'bad mode');
      try {
        return { sockets: sim.kickDevice(id, mode) };
      } catch (err) {
        throw new HttpError(404, err instanceof Error ? err.message : String(err));
      }
    }
  }
  if (head === 'faults') {
    if (method === 'GET') return sim.activeFaults();
    if (method === 'DELETE') {
      sim.clearFault(id === undefined ? undefined : Number(id));
      return { ok: true };
    }
    if (method === 'POST') {
      const body = await readBody(req);
      const kind = body.kind;
      const target = optStr(body, 'target');
      let spec: FaultSpec;
      if (kind === 'rate-limit') {
        spec = { kind, target, code: typeof body.code === 'number' ? body.code : undefined, count: typeof body.count === 'number' ? body.count : undefined };
      } else if (kind === 'latency' && typeof body.ms === 'number') {
        spec = { kind, target, ms: body.ms };
      } else {
        throw new HttpError(400, 'kind must be rate-limit or latency (with ms)');
      }
      return { id: sim.injectFault(spec) };
    }
  }
  throw new HttpError(404, `no route ${method} ${url.pathname}`);
};
