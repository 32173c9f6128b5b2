/**
 * Reads the CPU profiles `node bench/messages.ts --cpu-prof DIR` leaves in DIR (one `.cpuprofile` per router and
 * shard process, and DIR/phases.json with each phase's window and count) and prints, per process and phase, the
 * CPU ms per message by component: self time grouped by package or source file, the top functions by self time,
 * and the inclusive time of each component (a sample counts once for every component on its stack).
 *
 *   node bench/messages-profile.ts /tmp/prof [--top 25] [--phase send|inbound] [--callers <function>] [--threads]
 *
 * Windows: a profile's sample timestamps are V8 TimeTicks (µs, CLOCK_MONOTONIC on Linux), the clock of
 * `process.hrtime` in the bench, so a phase's samples are those inside its window.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  parent?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}
interface Phase {
  name: string;
  startUs: number;
  endUs: number;
  count: number;
}

const args = process.argv.slice(2);
const dir = args[0];
if (dir === undefined) {
  process.stderr.write('usage: node bench/messages-profile.ts DIR [--top N] [--phase name]\n');
  process.exit(2);
}
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const TOP = Number(opt('top') ?? 25);
const onlyPhase = opt('phase');
/** `--callers <function name substring>`: the stacks (by component) leading to that function's self time. */
const callersOf = opt('callers');
/** Frames that do work on someone's behalf: their time goes to the nearest caller that is not one of them. */
const isRuntime = (c: string): boolean => c === 'native' || c.startsWith('node:') || c === '(program)' || c === '(garbage collector)';
const info = JSON.parse(readFileSync(path.join(dir, 'phases.json'), 'utf8')) as { router: number; shards: number[]; phases: Phase[] };

/** The component a frame belongs to: a package of node_modules, one of ours by file, node's internals, V8's own. */
export function componentOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName.startsWith('(')) return functionName; // (garbage collector), (program), (idle)
    return 'native';
  }
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pnpm) return pnpm[1] as string;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm) return nm[1] as string;
  const ours = /\/packages\/([^/]+)\/src\/(.+)$/.exec(url);
  if (ours) return `@wagw/${ours[1] as string}/${ours[2] as string}`;
  if (url.startsWith('node:')) {
    const m = /^node:(?:internal\/)?([^/]+(?:\/[^/]+)?)/.exec(url);
    return `node:${m?.[1] ?? url.slice(5)}`;
  }
  return url;
}

/** The parts a message's CPU is reported by (docs/benchmarks.md "Where a send's CPU goes"), from the attributed components. */
export function partOf(component: string): string {
  const c = component;
  if (/^(pg|pg-protocol|pg-pool|pg-types|postgres-|@wagw\/stores\/sql)/.test(c)) return 'PostgreSQL client (pg)';
  if (/^(koa|@koa\/|koa-compose|helmet|koa-helmet|delegates|on-finished|ee-first|statuses|content-type|type-is|mime|accepts|negotiator|http-errors|depd|cookies|vary|encodeurl|escape-html|parseurl|fresh|only|node:_http|node:http|node:streams|node:stream_base|node:net)/.test(c)) return 'HTTP (node http, koa, router, helmet)';
  if (/^(pino|@pinojs|sonic-boom|fast-redact|@wagw\/shard\/sessions\/baileys-logger)/.test(c)) return 'logging (pino)';
  if (/^(zod|@wagw\/router\/security\/limits|@wagw\/router\/api\/define-route|@wagw\/shared\/phone|libphonenumber)/.test(c)) return 'body read + zod validation';
  if (/^(@wagw\/router\/supervisor|@wagw\/shared\/ipc|node:child_process|@wagw\/shard\/handler|@wagw\/shard\/main)/.test(c)) return 'IPC (JSON, pipe)';
  if (/^(@wagw\/router\/security|prom-client|@wagw\/router\/metrics|@wagw\/router\/app)/.test(c)) return 'auth, rate limit, metrics, request context';
  if (/^@wagw\/router\/(messages|api|sessions)/.test(c)) return 'router messaging (routes, sender, ingest, group commit)';
  if (/^(@wagw\/stores\/blobs|@wagw\/shard\/auth|node:fs)/.test(c)) return 'auth-state writes (blob store)';
  if (/^(@whiskeysockets|libsignal|ws$|async-mutex|lru-cache|@hapi|protobufjs|@cacheable|whatsapp-rust-bridge|wasm:|node:crypto)/.test(c)) return 'Baileys (encrypt, relay, receipts)';
  if (/^@wagw\/shard\/(messaging|sessions|groups)/.test(c)) return 'shard messaging (send, inbound, governor, runner)';
  if (c === '(garbage collector)') return 'GC';
  if (c === 'native' || c === '(program)' || c.startsWith('node:')) return 'runtime (microtasks, timers, buffers)';
  return 'other';
}

function analyse(file: string, label: string, phase: Phase): void {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) (byId.get(c) as ProfileNode).parent = n.id;
  const self = new Map<string, number>();
  const fnSelf = new Map<string, number>();
  const incl = new Map<string, number>();
  const attributed = new Map<string, number>();
  const callers = new Map<string, number>();
  let t = p.startTime;
  let total = 0;
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < phase.startUs || t > phase.endUs) continue;
    // The sample's weight: the time until the next sample (what V8's own tools use), capped against gaps.
    const w = Math.min(p.timeDeltas[i + 1] ?? dt, 10_000) / 1000;
    const node = byId.get(p.samples[i] as number) as ProfileNode;
    const comp = componentOf(node.callFrame);
    if (comp === '(idle)') {
      idle += w;
      continue;
    }
    total += w;
    self.set(comp, (self.get(comp) ?? 0) + w);
    const fn = `${node.callFrame.functionName || '(anonymous)'} ${comp}:${node.callFrame.lineNumber + 1}`;
    fnSelf.set(fn, (fnSelf.get(fn) ?? 0) + w);
    const seen = new Set<string>();
    let owner: string | undefined;
    const stack: string[] = [];
    for (let n: ProfileNode | undefined = node; n !== undefined; n = n.parent === undefined ? undefined : byId.get(n.parent)) {
      const c = componentOf(n.callFrame);
      if (owner === undefined && !isRuntime(c) && c !== '(root)') owner = c;
      if (callersOf !== undefined && stack.length < 8 && c !== '(root)') {
        const f = `${n.callFrame.functionName || '(anon)'}@${c}`;
        if (stack.at(-1) !== f) stack.push(f);
      }
      if (c === '(root)' || seen.has(c)) continue;
      seen.add(c);
      incl.set(c, (incl.get(c) ?? 0) + w);
    }
    const own = owner ?? comp;
    attributed.set(own, (attributed.get(own) ?? 0) + w);
    if (callersOf !== undefined && node.callFrame.functionName.includes(callersOf)) {
      const key = stack.join(' < ');
      callers.set(key, (callers.get(key) ?? 0) + w);
    }
  }
  const per = (ms: number): string => (ms / phase.count).toFixed(3);
  const out: string[] = [];
  out.push(`\n== ${label}, phase ${phase.name}: ${phase.count} messages, ${total.toFixed(0)} ms busy (${per(total)} ms per message), idle ${idle.toFixed(0)} ms`);
  const sorted = (m: Map<string, number>): [string, number][] => [...m.entries()].sort((a, b) => b[1] - a[1]);
  out.push('-- self time by component (ms per message)');
  for (const [k, v] of sorted(self).slice(0, TOP)) out.push(`  ${per(v).padStart(7)}  ${k}`);
  out.push('-- self time with the runtime (native, node:*, GC) charged to its nearest library or source file (ms per message)');
  for (const [k, v] of sorted(attributed).slice(0, TOP)) out.push(`  ${per(v).padStart(7)}  ${k}`);
  const parts = new Map<string, number>();
  for (const [k, v] of attributed) parts.set(partOf(k), (parts.get(partOf(k)) ?? 0) + v);
  out.push('-- by part (attributed self time, ms per message)');
  for (const [k, v] of sorted(parts)) out.push(`  ${per(v).padStart(7)}  ${k}`);
  out.push('-- inclusive time by component (ms per message)');
  for (const [k, v] of sorted(incl).slice(0, TOP)) out.push(`  ${per(v).padStart(7)}  ${k}`);
  out.push('-- top functions by self time (ms per message)');
  for (const [k, v] of sorted(fnSelf).slice(0, TOP)) out.push(`  ${per(v).padStart(7)}  ${k}`);
  if (callersOf !== undefined) {
    out.push(`-- stacks of ${callersOf} (ms per message)`);
    for (const [k, v] of sorted(callers).slice(0, TOP)) out.push(`  ${per(v).padStart(7)}  ${k}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
const pidOf = (f: string): number => Number(/^CPU\.\d+\.\d+\.(\d+)\./.exec(f)?.[1]);
for (const phase of info.phases) {
  if (onlyPhase !== undefined && phase.name !== onlyPhase) continue;
  for (const f of files) {
    const pid = pidOf(f);
    const label = pid === info.router ? `router (${pid})` : info.shards.includes(pid) ? `shard (${pid})` : undefined;
    // Thread 0 is the process's main thread; the shard's piscina workers (QR images, media) are idle in a send.
    if (label === undefined || (!args.includes('--threads') && !/^CPU\.\d+\.\d+\.\d+\.0\./.test(f))) continue;
    analyse(path.join(dir, f), `${label} ${f}`, phase);
  }
}
