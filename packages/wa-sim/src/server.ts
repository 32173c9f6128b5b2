// The simulator's main port: plain HTTP for the admin API, and WebSocket upgrades (any path, e.g. /ws/chat)
// for Baileys sockets.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';

export interface Listening {
  readonly http: Server;
  readonly wss: WebSocketServer;
  readonly port: number;
  close(): Promise<void>;
}

export const listen = async (
  host: string,
  port: number,
  onSocket: (ws: WebSocket, req: IncomingMessage) => void,
  onHttp: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Listening> => {
  const http = createServer(onHttp);
  http.keepAliveTimeout = 1000;
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024, clientTracking: true });
  http.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    wss.handleUpgrade(req, socket, head, ws => onSocket(ws, req));
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen({ host, port, backlog: 4096 }, () => resolve());
  });
  const addr = http.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  return {
    http,
    wss,
    port: bound,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>(resolve => wss.close(() => resolve()));
      http.closeAllConnections();
      await new Promise<void>(resolve => http.close(() => resolve()));
    },
  };
};
