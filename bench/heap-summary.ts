/**
 * Summarises a V8 heap snapshot without loading it as one JSON string (a shard's snapshot can pass V8's string
 * limit): count and self size per constructor (or node type), and for the biggest groups the retainers that hold
 * them (retainer constructor . edge name). Used by bench/shard-memory.ts; also runs alone:
 *
 *   node bench/heap-summary.ts <file.heapsnapshot> [--per N] [--top 25] [--retainers 8]
 *
 * `--per N` divides sizes by N (sessions) to print bytes per session.
 */
import { readFileSync } from 'node:fs';

export interface HeapGroup {
  name: string;
  count: number;
  selfSize: number;
  retainers: { name: string; count: number; selfSize: number }[];
}

export interface HeapSummary {
  totalSize: number;
  nodeCount: number;
  groups: HeapGroup[];
}

function findAfter(buf: Buffer, marker: string, from = 0): number {
  const at = buf.indexOf(marker, from, 'latin1');
  if (at < 0) throw new Error(`heap snapshot: ${marker} not found`);
  return at + marker.length;
}

/** The unsigned integers of a `[1,2,3]` array starting at `at` (just past `[`). */
function readNumbers(buf: Buffer, at: number, expected: number): Float64Array {
  const out = new Float64Array(expected);
  let n = 0;
  let cur = 0;
  let inNum = false;
  for (let i = at; i < buf.length; i++) {
    const c = buf[i] as number;
    if (c >= 48 && c <= 57) {
      cur = cur * 10 + (c - 48);
      inNum = true;
    } else {
      if (inNum) {
        out[n++] = cur;
        cur = 0;
        inNum = false;
      }
      if (c === 93) break; // ]
    }
  }
  if (n !== expected) throw new Error(`heap snapshot: read ${n} numbers, expected ${expected}`);
  return out;
}

/** Offsets of each JSON string of the `strings` array (decoded on demand). */
function stringOffsets(buf: Buffer, at: number): { start: Uint32Array | number[]; end: number[] } {
  const start: number[] = [];
  const end: number[] = [];
  let i = at;
  for (;;) {
    while (i < buf.length && buf[i] !== 34 && buf[i] !== 93) i++;
    if (i >= buf.length || buf[i] === 93) break;
    const s = i++;
    while (i < buf.length) {
      const c = buf[i];
      if (c === 92) i += 2;
      else if (c === 34) break;
      else i++;
    }
    start.push(s);
    end.push(++i);
  }
  return { start, end };
}

export function summarizeHeap(file: string, opts: { top?: number; retainers?: number } = {}): HeapSummary {
  const buf = readFileSync(file);
  const metaEnd = findAfter(buf, '"nodes":') - '"nodes":'.length;
  const head = JSON.parse(`${buf.toString('utf8', 0, metaEnd).replace(/,\s*$/, '')}}`) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] }; node_count: number; edge_count: number };
  };
  const { meta, node_count: nodeCount, edge_count: edgeCount } = head.snapshot;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const nodes = readNumbers(buf, findAfter(buf, '[', metaEnd), nodeCount * nf);
  const edgesAt = findAfter(buf, '"edges":[', metaEnd);
  const edges = readNumbers(buf, edgesAt, edgeCount * ef);
  const strs = stringOffsets(buf, findAfter(buf, '"strings":[', edgesAt));
  const cache = new Map<number, string>();
  const str = (i: number): string => {
    let s = cache.get(i);
    if (s === undefined) {
      s = JSON.parse(buf.toString('utf8', strs.start[i] as number, strs.end[i])) as string;
      if (s.length > 60) s = `${s.slice(0, 57)}...`;
      cache.set(i, s);
    }
    return s;
  };
  const T = meta.node_fields.indexOf('type');
  const N = meta.node_fields.indexOf('name');
  const S = meta.node_fields.indexOf('self_size');
  const EC = meta.node_fields.indexOf('edge_count');
  const ET = meta.edge_fields.indexOf('type');
  const EN = meta.edge_fields.indexOf('name_or_index');
  const ETO = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const groupOf = (node: number): string => {
    const type = nodeTypes[nodes[node * nf + T] as number] ?? '?';
    const name = str(nodes[node * nf + N] as number);
    if (type === 'object' || type === 'native') return type === 'native' ? `(native) ${name}` : name;
    if (type === 'closure') return '(closure)';
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') return '(string)';
    if (type === 'code') return '(code)';
    if (type === 'array') return `(array) ${name}`;
    if (type === 'hidden') return `(hidden) ${name}`;
    return `(${type})`;
  };
  const groupIds = new Int32Array(nodeCount);
  const names: string[] = [];
  const index = new Map<string, number>();
  const count: number[] = [];
  const size: number[] = [];
  let total = 0;
  for (let n = 0; n < nodeCount; n++) {
    const g = groupOf(n);
    let id = index.get(g);
    if (id === undefined) {
      id = names.length;
      index.set(g, id);
      names.push(g);
      count.push(0);
      size.push(0);
    }
    groupIds[n] = id;
    count[id] = (count[id] as number) + 1;
    const s = nodes[n * nf + S] as number;
    size[id] = (size[id] as number) + s;
    total += s;
  }
  const order = names.map((_, i) => i).sort((a, b) => (size[b] as number) - (size[a] as number));
  const topIds = order.slice(0, opts.top ?? 25);
  const wanted = new Set(topIds);
  // First strong retainer of each node of a top group.
  const retainedBy = new Int32Array(nodeCount).fill(-1);
  const retEdgeName = new Array<string>(nodeCount);
  let e = 0;
  for (let n = 0; n < nodeCount; n++) {
    const edgesOfNode = nodes[n * nf + EC] as number;
    for (let k = 0; k < edgesOfNode; k++, e++) {
      const type = edgeTypes[edges[e * ef + ET] as number];
      if (type === 'weak' || type === 'shortcut') continue;
      const to = (edges[e * ef + ETO] as number) / nf;
      if (retainedBy[to] !== -1 || !wanted.has(groupIds[to] as number)) continue;
      retainedBy[to] = n;
      const nameOrIndex = edges[e * ef + EN] as number;
      // Element, hidden and numbered internal edges (hash table slots) all read as `[]`.
      const edgeName = type === 'element' || type === 'hidden' ? '[]' : str(nameOrIndex);
      retEdgeName[to] = /^\d+$/.test(edgeName) ? '[]' : edgeName;
    }
  }
  const rets = new Map<number, Map<string, { count: number; selfSize: number }>>();
  for (let n = 0; n < nodeCount; n++) {
    const g = groupIds[n] as number;
    if (!wanted.has(g)) continue;
    const r = retainedBy[n] as number;
    const key = r < 0 ? '(none)' : `${groupOf(r)} .${retEdgeName[n] ?? '?'}`;
    let m = rets.get(g);
    if (!m) rets.set(g, (m = new Map()));
    const cur = m.get(key) ?? { count: 0, selfSize: 0 };
    cur.count++;
    cur.selfSize += nodes[n * nf + S] as number;
    m.set(key, cur);
  }
  const groups = topIds.map((g) => ({
    name: names[g] as string,
    count: count[g] as number,
    selfSize: size[g] as number,
    retainers: [...(rets.get(g) ?? new Map<string, { count: number; selfSize: number }>())]
      .map(([name, v]) => ({ name, ...v }))
      .sort((a, b) => b.selfSize - a.selfSize)
      .slice(0, opts.retainers ?? 8),
  }));
  return { totalSize: total, nodeCount, groups };
}

export function formatSummary(s: HeapSummary, per = 1): string {
  const kb = (b: number): string => (b / per / 1024).toFixed(per === 1 ? 0 : 2);
  const unit = per === 1 ? 'KB' : 'KB/session';
  const lines = [`total self size ${kb(s.totalSize)} ${unit}, ${s.nodeCount} nodes`];
  for (const g of s.groups) {
    lines.push(`${kb(g.selfSize).padStart(10)} ${unit}  ${String(Math.round(g.count / per)).padStart(7)}/n  ${g.name}`);
    for (const r of g.retainers) lines.push(`${''.padStart(14)}${kb(r.selfSize).padStart(9)}  ${String(Math.round(r.count / per)).padStart(6)}/n  <- ${r.name}`);
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const file = args[0];
  if (file === undefined) throw new Error('usage: heap-summary.ts <file.heapsnapshot> [--per N] [--top 25] [--retainers 8]');
  console.log(formatSummary(summarizeHeap(file, { top: Number(opt('top') ?? '25'), retainers: Number(opt('retainers') ?? '6') }), Number(opt('per') ?? '1')));
}
