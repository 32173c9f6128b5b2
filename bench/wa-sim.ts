/**
 * The WhatsApp simulator's own capacity: concurrent sockets held, messages relayed per second and the
 * simulator's CPU per relayed message.
 *
 *   node bench/wa-sim.ts                 # 1,000 sockets, 10 s of relay; writes `## wa-sim` in docs/benchmarks.md
 *   node bench/wa-sim.ts --no-write      # print only
 *   WA_SIM_BENCH_SOCKETS=2000 WA_SIM_BENCH_SECONDS=20 WA_SIM_BENCH_WINDOW=8 node bench/wa-sim.ts
 *   WA_SIM_BENCH_SOCKETS=10000 WA_SIM_BENCH_IDLE_SECONDS=60 WA_SIM_CPU_PROF=/tmp/prof node bench/wa-sim.ts --no-write
 *
 * Between connect and relay, an idle phase: every socket sends Baileys' keepalive (`<iq xmlns=w:p><ping/>`)
 * every 30 s, spread evenly, and the simulator's RSS and CPU per socket are taken (what it costs per idle
 * session in bench/scale.ts). WA_SIM_CPU_PROF=<dir> runs the simulator under --cpu-prof.
 *
 * The simulator runs alone in a child process (bench/wa-sim-server.ts) and reports its own process.cpuUsage();
 * the clients (bench/wa-sim-client.ts) run here: real Noise + binary frames but no Signal crypto (payloads are
 * opaque pre-encrypted bytes, which is all the server ever sees), so client crypto does not hide the server's
 * cost. Every relayed message is: client send -> server ack -> delivery to the partner device -> its receipt
 * -> server ack of the receipt -> receipt forwarded to the sender (after the receipt delay) -> sender's ack.
 */
import { writeBenchSection } from './report.ts';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Curve, WA_CERT_DETAILS } from '@whiskeysockets/baileys';
import type { BinaryNode, KeyPair } from '@whiskeysockets/baileys';
import { RawClient } from './wa-sim-client.ts';

const SOCKETS = Number(process.env.WA_SIM_BENCH_SOCKETS ?? 1000);
const SECONDS = Number(process.env.WA_SIM_BENCH_SECONDS ?? 10);
const WINDOW = Number(process.env.WA_SIM_BENCH_WINDOW ?? 4);
/** Sockets that take part in the relay phase (pairs among the first ones): 1,000 whatever SOCKETS is, so the
 * relay figures stay comparable and 10,000 sockets x window 4 does not flood one shared core (at 10,000 the
 * simulator's HTTP /stats answered 408 behind 40,000 messages in flight). */
const RELAY_SOCKETS = Math.min(SOCKETS, Number(process.env.WA_SIM_BENCH_RELAY_SOCKETS ?? 1000));
const IDLE_SECONDS = Number(process.env.WA_SIM_BENCH_IDLE_SECONDS ?? 30);
const PAYLOAD = 160;
/** Baileys' keepAliveIntervalMs default. */
const KEEPALIVE_MS = 30_000;
const write = !process.argv.includes('--no-write');

interface SimStats {
  socketsAuthenticated: number;
  messagesRelayed: number;
  messagesIn: number;
  receiptsIn: number;
  receiptsForwarded: number;
  acksIn: number;
  pendingUnacked: number;
  concurrentLoginViolations: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  rssBytes: number;
  heapUsedBytes: number;
}

const key = (): KeyPair => Curve.generateKeyPair();

const main = async (): Promise<void> => {
  // Each socket is one descriptor here and one in the simulator.
  const soft = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? '0';
  if (soft !== 'unlimited' && Number(soft) < SOCKETS + 1024) {
    throw new Error(`ulimit -n is ${soft}; ${SOCKETS} sockets need at least ${SOCKETS + 1024} descriptors per process. Raise it first (ulimit -n ${Math.max(SOCKETS + 1024, 65536)}).`);
  }
  const prof = process.env.WA_SIM_CPU_PROF;
  const server = spawn(process.execPath, [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), fileURLToPath(new URL('./wa-sim-server.ts', import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: server.stdout });
    rl.once('line', resolve);
    server.once('exit', code => reject(new Error(`simulator exited early (${String(code)})`)));
  });
  const { admin, ws, rootPublicKey } = JSON.parse(first) as { admin: string; ws: string; rootPublicKey: string };
  // The simulator signs its Noise certificates with its own root; Baileys' initiator checks them against this.
  (WA_CERT_DETAILS as { PUBLIC_KEY: Buffer }).PUBLIC_KEY = Buffer.from(rootPublicKey, 'base64');
  const api = async <T>(path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${admin}${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const stats = (): Promise<SimStats> => api<SimStats>('/stats');

  try {
    // ---- concurrent sockets ----
    const noise = Array.from({ length: SOCKETS }, key);
    const devices: Array<{ number: string; jid: string; device: number }> = [];
    for (let i = 0; i < SOCKETS; i += 500) {
      devices.push(...(await api<typeof devices>('/provision', { noiseKeys: noise.slice(i, i + 500).map(k => Buffer.from(k.public).toString('base64')) })));
    }
    const base = await stats();
    const t0 = performance.now();
    const clients: RawClient[] = new Array<RawClient>(SOCKETS);
    let next = 0;
    const connector = async (): Promise<void> => {
      while (next < SOCKETS) {
        const i = next++;
        const d = devices[i];
        const k = noise[i];
        if (!d || !k) throw new Error('provisioning mismatch');
        clients[i] = await RawClient.connect({ url: ws, number: d.number, device: d.device, noiseKey: k, ephemeral: key() });
      }
    };
    const progress = setInterval(() => process.stderr.write(`  connect: ${next}/${SOCKETS} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`), 5000);
    await Promise.all(Array.from({ length: 64 }, connector)).finally(() => clearInterval(progress));
    const connectMs = performance.now() - t0;
    const held = await stats();
    const connectCpu = held.cpuUserMs + held.cpuSystemMs - (base.cpuUserMs + base.cpuSystemMs);

    // ---- idle: keepalive pings only, spread over the interval as independent clients would be ----
    let pongs = 0;
    for (const c of clients) {
      c.onNode = (n: BinaryNode) => {
        if (n.tag === 'iq' && n.attrs.type === 'result') pongs++;
      };
    }
    let pingSeq = 0;
    const pingTimers = clients.map((c, i) => {
      const ping = (): void => c.send({ tag: 'iq', attrs: { id: `P${(pingSeq++).toString(36)}`, to: 's.whatsapp.net', type: 'get', xmlns: 'w:p' }, content: [{ tag: 'ping', attrs: {} }] });
      let interval: NodeJS.Timeout | undefined;
      const first = setTimeout(() => {
        ping();
        interval = setInterval(ping, KEEPALIVE_MS);
      }, (i / SOCKETS) * KEEPALIVE_MS);
      return () => {
        clearTimeout(first);
        clearInterval(interval);
      };
    });
    await new Promise(r => setTimeout(r, 2000));
    const i0 = await stats();
    await new Promise(r => setTimeout(r, IDLE_SECONDS * 1000));
    const i1 = await stats();
    for (const stopPing of pingTimers) stopPing();
    const idleCpuPct = ((i1.cpuUserMs + i1.cpuSystemMs - (i0.cpuUserMs + i0.cpuSystemMs)) / (IDLE_SECONDS * 1000)) * 100;
    process.stderr.write(
      `  held ${held.socketsAuthenticated} sockets after ${(connectMs / 1000).toFixed(1)} s (simulator CPU ${(connectCpu / SOCKETS).toFixed(2)} ms/socket), RSS ${(held.rssBytes / 2 ** 20).toFixed(0)} MiB` +
        ` (${((held.rssBytes - base.rssBytes) / SOCKETS / 1024).toFixed(1)} KiB/socket), idle CPU ${idleCpuPct.toFixed(2)} % over ${IDLE_SECONDS} s, ${pongs} pings answered; load ${os.loadavg()[0]?.toFixed(1)}\n`,
    );

    // ---- relay: pairs (0,1), (2,3), ... send to each other with a window of un-acked sends ----
    let sentTotal = 0;
    let receiptsBack = 0;
    let stop = false;
    const payload = randomBytes(PAYLOAD);
    const pumps: Array<Promise<void>> = [];
    for (let i = 0; i + 1 < RELAY_SOCKETS; i++) {
      const me = clients[i];
      const peerIdx = i % 2 === 0 ? i + 1 : i - 1;
      const peer = devices[peerIdx];
      const self = devices[i];
      if (!me || !peer || !self) continue;
      const peerUser = `${peer.number}@s.whatsapp.net`;
      let inflight = 0;
      let wake: (() => void) | undefined;
      let seq = 0;
      me.onNode = (n: BinaryNode) => {
        if (n.tag === 'ack' && n.attrs.class === 'message') {
          inflight--;
          wake?.();
        } else if (n.tag === 'message') {
          me.send({ tag: 'receipt', attrs: { id: n.attrs.id ?? '', to: (n.attrs.from ?? '').replace(/:\d+@/, '@') } });
        } else if (n.tag === 'receipt') {
          receiptsBack++;
          me.send({ tag: 'ack', attrs: { id: n.attrs.id ?? '', to: n.attrs.from ?? '', class: 'receipt' } });
        }
      };
      pumps.push((async () => {
        while (!stop) {
          while (inflight < WINDOW && !stop) {
            inflight++;
            sentTotal++;
            me.send({
              tag: 'message',
              attrs: { id: `B${i.toString(36)}X${(seq++).toString(36)}`, to: peerUser, type: 'text' },
              content: [{ tag: 'participants', attrs: {}, content: [{ tag: 'to', attrs: { jid: peer.jid }, content: [{ tag: 'enc', attrs: { v: '2', type: 'msg' }, content: payload }] }] }],
            });
          }
          await new Promise<void>(r => (wake = r));
        }
      })());
    }
    // warm-up, then measure a steady window
    await new Promise(r => setTimeout(r, 1000));
    const s0 = await stats();
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    await new Promise(r => setTimeout(r, SECONDS * 1000));
    const s1 = await stats();
    const c1 = process.cpuUsage(c0);
    const wallS = (performance.now() - w0) / 1000;
    stop = true;
    for (const c of clients) c.close();
    await Promise.race([Promise.all(pumps.map(p => p.catch(() => undefined))), new Promise(r => setTimeout(r, 200))]);

    const relayed = s1.messagesRelayed - s0.messagesRelayed;
    const simCpuMs = s1.cpuUserMs + s1.cpuSystemMs - (s0.cpuUserMs + s0.cpuSystemMs);
    const frames = relayed * 7;
    const rows: Array<[string, string]> = [
      ['Node', process.version],
      ['CPU', `${os.cpus()[0]?.model ?? '?'} x ${os.availableParallelism()}`],
      ['concurrent sockets held (logged in)', `${held.socketsAuthenticated.toLocaleString('en-US')}`],
      ['connect + Noise handshake + login, all sockets', `${(connectMs / 1000).toFixed(2)} s (simulator CPU ${(connectCpu / SOCKETS).toFixed(2)} ms per socket)`],
      ['simulator RSS with all sockets', `${(held.rssBytes / 2 ** 20).toFixed(0)} MiB (${((held.rssBytes - base.rssBytes) / SOCKETS / 1024).toFixed(1)} KiB per socket over the provisioned, unconnected state; heap ${((held.heapUsedBytes - base.heapUsedBytes) / SOCKETS / 1024).toFixed(1)} KiB per socket)`],
      ['simulator idle CPU, keepalive every 30 s per socket', `${idleCpuPct.toFixed(2)} % of a core over ${IDLE_SECONDS} s (${(idleCpuPct / SOCKETS * 1000).toFixed(3)} % per 1,000 sockets; ${pongs.toLocaleString('en-US')} pings answered)`],
      ['messages relayed per second (measured)', `${Math.round(relayed / wallS).toLocaleString('en-US')} msg/s over ${wallS.toFixed(1)} s, ${Math.floor(RELAY_SOCKETS / 2)} pairs, window ${WINDOW}`],
      ['simulator CPU per relayed message', `${(simCpuMs / relayed).toFixed(3)} ms (${relayed.toLocaleString('en-US')} messages, ~${frames.toLocaleString('en-US')} frames incl. acks and receipts)`],
      ['simulator capacity on one core (1000 / CPU ms per message)', `${Math.round(relayed / (simCpuMs / 1000)).toLocaleString('en-US')} msg/s`],
      ['simulator core utilisation during the run', `${((simCpuMs / (wallS * 1000)) * 100).toFixed(0)} %`],
      ['client process CPU during the run', `${(((c1.user + c1.system) / 1000 / (wallS * 1000)) * 100).toFixed(0)} % of a core (the load generator)`],
      ['receipts forwarded / back at senders', `${(s1.receiptsForwarded - s0.receiptsForwarded).toLocaleString('en-US')} / ${receiptsBack.toLocaleString('en-US')} total`],
      ['concurrent-login violations', String(s1.concurrentLoginViolations)],
    ];
    const table = ['| measure | value |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
    const body = [
      `\`node bench/wa-sim.ts\` (${new Date().toISOString().slice(0, 10)}): the simulator alone in a child process; ${SOCKETS.toLocaleString('en-US')} raw protocol clients`,
      `(Noise + binary nodes, pre-encrypted payloads) in the bench process; load average ${os.loadavg().map(l => l.toFixed(1)).join(' / ')} at the end (shared box). Goal: >= 10,000 sockets, below the gateway's cost per session (bench/scale), and >= 2,000 relayed msg/s.`,
      '',
      table,
      '',
      `Sent ${sentTotal.toLocaleString('en-US')} messages in total. A relayed message costs the simulator 3 inbound and 4 outbound encrypted frames.`,
      'When the measured rate is below the one-core capacity, the load generator (same 2 cores) is the limit, not the simulator.',
    ].join('\n');
    process.stdout.write(`\n${body}\n`);
    if (write) process.stdout.write(`\nwrote the ## wa-sim section of ${writeBenchSection('wa-sim', body)}\n`);
  } finally {
    server.stdin.end();
    await new Promise<void>(resolve => {
      // Under --cpu-prof the simulator writes its profile at exit: give it time.
      const t = setTimeout(() => {
        server.kill('SIGKILL');
        resolve();
      }, process.env.WA_SIM_CPU_PROF ? 60_000 : 5000);
      server.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
};


await main();
