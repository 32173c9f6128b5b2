/**
 * A TCP proxy on 127.0.0.1 the test controls, between the gateway and one of its dependencies (Redis,
 * PostgreSQL, the blob store), to cut it off without killing it:
 * - `pass`: bytes flow both ways;
 * - `refuse`: every open connection is reset and new ones are reset at once (a server that is down);
 * - `blackhole`: connections stay open but nothing flows either way, and new ones are accepted and never
 *   answered (a partition: the worst case, since only timeouts notice it).
 * Back to `pass`, new connections flow again; connections that were black-holed stay dead (reset), as after a
 * real partition the peers would have timed them out.
 */
import net from 'node:net';
import type { Cleanup } from './util.ts';

export type ProxyMode = 'pass' | 'refuse' | 'blackhole';

export interface TcpProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  /** Connections accepted so far. */
  readonly accepted: number;
  set(mode: ProxyMode): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket | null;
}

/**
 * Closes a socket with a reset (RST) where Node can: not once its writable side has ended. After `end()` libuv has a
 * shutdown pending, `uv_tcp_close_reset` refuses it (EINVAL), and Node 24's `TCPWrap::Reset` then marks the handle
 * closing without closing it: the socket emits an EINVAL error, and the process that owns it never exits, spinning
 * in Node's exit cleanup (`CleanupHandles` waits for that handle forever). That is the PostgreSQL outage suite's
 * hang in CI as far as it was reproduced (docs/reliability.md): the proxy can reset a socket in that window when
 * one side of a pair ends (the gateway's pooled connections at its shutdown) and its pipe `end()`s the other just
 * before a `close` resets it; that proxy-level race itself was not reproduced. Such a socket is destroyed instead: its FIN is sent or on
 * its way, so there is nothing left to reset.
 */
export function closeHard(socket: net.Socket): void {
  if (socket.writableEnded || socket.destroyed) socket.destroy();
  else socket.resetAndDestroy();
}

export async function startTcpProxy(t: Cleanup, target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: ProxyMode = 'pass';
  let accepted = 0;
  const pairs = new Set<Pair>();
  const kill = (p: Pair): void => {
    closeHard(p.client);
    if (p.upstream !== null) closeHard(p.upstream);
    pairs.delete(p);
  };
  const server = net.createServer((client) => {
    accepted++;
    const pair: Pair = { client, upstream: null };
    pairs.add(pair);
    client.on('error', () => kill(pair));
    client.on('close', () => kill(pair));
    if (mode === 'refuse') return kill(pair);
    if (mode === 'blackhole') {
      client.pause();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    pair.upstream = upstream;
    upstream.on('error', () => kill(pair));
    upstream.on('close', () => kill(pair));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('tcp proxy: no address');
  const proxy: TcpProxy = {
    port: address.port,
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    set(next: ProxyMode) {
      const was = mode;
      mode = next;
      if (next === 'refuse' || (next === 'pass' && was === 'blackhole')) {
        for (const p of [...pairs]) kill(p);
      } else if (next === 'blackhole') {
        for (const p of pairs) {
          p.client.unpipe();
          p.upstream?.unpipe();
          p.client.pause();
          p.upstream?.pause();
        }
      }
    },
    async close() {
      for (const p of [...pairs]) kill(p);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  t.after(() => proxy.close());
  return proxy;
}
