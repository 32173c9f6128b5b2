// Child process for bench/messages.ts: the WhatsApp simulator and its simulated phones, alone in a process so
// that the phones' Signal work (the inbound load generator) never shares the measured process's event loop.
// Driven over the fork IPC channel; see SimRequest. Prints nothing; exits when the channel closes.
import { WaSimulator } from '@wagw/wa-sim';
import type { SimPhone } from '@wagw/wa-sim';

export type SimCall =
  | { op: 'info' }
  | { op: 'phones'; n: number }
  | { op: 'scan'; index: number; qr: string }
  | { op: 'inbound'; perPair: number; window: number; tag: string }
  | { op: 'stats' };
export type SimRequest = SimCall & { seq: number };

export interface SimInfo {
  ws: string;
  rootPublicKey: string;
  mediaCaPem: string;
}

/** One session's phones: the business account the session is linked to, and a customer that talks to it. */
export interface SimPair {
  business: string;
  customer: string;
  customerJid: string;
}

export interface SimReply {
  seq: number;
  ok: boolean;
  error?: string;
  value?: unknown;
}

// libsignal reports replaced sessions on the console; the phones replace many (stderr stays for real errors).
console.log = () => undefined;
console.info = () => undefined;
console.warn = () => undefined;

const sim = await WaSimulator.create({ receiptDelayMs: Number(process.env['WA_SIM_RECEIPT_DELAY_MS'] ?? 300) });
const businesses: SimPhone[] = [];
const customers: SimPhone[] = [];

async function handle(req: SimRequest): Promise<unknown> {
  switch (req.op) {
    case 'info':
      return { ws: sim.urls.ws, rootPublicKey: sim.rootPublicKey.toString('base64'), mediaCaPem: sim.mediaCaPem } satisfies SimInfo;
    case 'phones': {
      const out: SimPair[] = [];
      for (let i = businesses.length; i < req.n; i++) {
        businesses.push(sim.createPhone({ name: `Business ${i}` }));
        customers.push(sim.createPhone({ name: `Customer ${i}` }));
      }
      for (let i = 0; i < req.n; i++) {
        const b = businesses[i];
        const c = customers[i];
        if (b === undefined || c === undefined) throw new Error('phone missing');
        out.push({ business: b.number, customer: c.number, customerJid: c.jid });
      }
      return out;
    }
    case 'scan': {
      const phone = businesses[req.index];
      if (phone === undefined) throw new Error(`no business phone ${req.index}`);
      return await sim.scanQr(phone, req.qr);
    }
    case 'inbound': {
      // Every customer sends perPair texts to its business, at most `window` of its sends being encrypted at once.
      const t0 = performance.now();
      await Promise.all(
        customers.map(async (c, i) => {
          const b = businesses[i];
          if (b === undefined) return;
          let next = 0;
          await Promise.all(
            Array.from({ length: Math.max(1, req.window) }, async () => {
              while (next < req.perPair) {
                const k = next++;
                await c.sendText(b.number, `${req.tag} ${i} ${k}`);
              }
            }),
          );
        }),
      );
      return { ms: performance.now() - t0 };
    }
    case 'stats':
      return sim.snapshot();
  }
}

process.on('message', (req: SimRequest) => {
  handle(req).then(
    (value) => process.send?.({ seq: req.seq, ok: true, value } satisfies SimReply),
    (err: unknown) => process.send?.({ seq: req.seq, ok: false, error: (err as Error).stack ?? String(err) } satisfies SimReply),
  );
});
process.on('disconnect', () => {
  sim.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
process.send?.({ seq: 0, ok: true, value: 'ready' } satisfies SimReply);
