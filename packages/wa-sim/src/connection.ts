// One client WebSocket: the Noise handshake, then encrypted binary-node frames in both directions.
import { decodeBinaryNode, decodeDecompressedBinaryNode, encodeBinaryNode, proto } from '@whiskeysockets/baileys';
import * as constants from '@whiskeysockets/baileys/lib/WABinary/constants.js';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Device } from './accounts.ts';
import { FrameReader, frameRaw, NoiseResponder } from './noise.ts';
import type { NoiseTransport } from './noise.ts';
import { node } from './nodes.ts';
import type { BinaryNode, KeyPair } from './types.ts';

export interface Registration {
  readonly noiseKey: Buffer;
  readonly identityKey: Buffer;
  readonly registrationId: number;
  readonly signedPreKey: { id: number; public: Buffer; signature: Buffer };
  readonly platform: string;
}

export interface ConnectionHooks {
  readonly serverStatic: KeyPair;
  readonly certChain: Uint8Array;
  /** Called once the handshake completed; decides between login and registration. */
  onAuth(conn: Connection, clientStatic: Buffer, payload: proto.ClientPayload): void;
  onNode(conn: Connection, node: BinaryNode): void;
  onClose(conn: Connection): void;
  /** A frame arrived on a socket a newer login of its device superseded; it is dropped, not processed. */
  onSupersededFrame?(conn: Connection): void;
  /** Extra delay (ms) for frames sent to this connection (latency fault). */
  latencyFor(conn: Connection): number;
  readonly logger: Logger;
}

let nextConnId = 1;

export class Connection {
  readonly id = nextConnId++;
  readonly ws: WebSocket;
  readonly openedAt = Date.now();
  device: Device | undefined;
  registration: Registration | undefined;
  closed = false;
  /**
   * A newer login of the same device replaced this socket (conflict/replaced sent). From then on nothing it
   * sends is accepted: WhatsApp's stream for it is over, whatever the client still writes.
   */
  superseded = false;
  private stage: 'hello' | 'finish' | 'transport' = 'hello';
  private responder: NoiseResponder | undefined;
  private transport: NoiseTransport | undefined;
  private readonly reader = new FrameReader();
  private readonly hooks: ConnectionHooks;
  private readonly waiting = new Map<string, (n: BinaryNode) => void>();
  private nextTag = 1;

  constructor(ws: WebSocket, hooks: ConnectionHooks) {
    this.ws = ws;
    this.hooks = hooks;
    ws.on('message', (data: Buffer) => {
      try {
        this.reader.push(data, f => this.onFrame(f), header => {
          this.responder = new NoiseResponder(header);
        });
      } catch (err) {
        hooks.logger.debug({ err, conn: this.id }, 'bad frame, closing');
        this.terminate();
      }
    });
    ws.on('close', () => this.onClosed());
    ws.on('error', () => this.onClosed());
  }

  get label(): string {
    return this.device?.pnJid ?? `conn#${this.id}`;
  }

  private onFrame(frame: Buffer): void {
    switch (this.stage) {
      case 'hello': {
        if (!this.responder) throw new Error('frame before intro');
        const hello = this.responder.serverHello(frame, this.hooks.serverStatic, this.hooks.certChain);
        this.stage = 'finish';
        this.ws.send(frameRaw(hello));
        return;
      }
      case 'finish': {
        if (!this.responder) throw new Error('frame before intro');
        const { clientStatic, payload, transport } = this.responder.clientFinish(frame);
        this.transport = transport;
        this.responder = undefined;
        this.stage = 'transport';
        this.hooks.onAuth(this, clientStatic, proto.ClientPayload.decode(payload));
        return;
      }
      case 'transport': {
        if (!this.transport) return;
        if (this.superseded) {
          this.hooks.onSupersededFrame?.(this);
          return;
        }
        const plain = this.transport.decrypt(frame);
        if (((plain[0] ?? 0) & 2) === 0) {
          this.dispatch(decodeDecompressedBinaryNode(plain.subarray(1), constants));
        } else {
          // compressed frames are rare; keep order by pausing until decoded
          this.ws.pause();
          decodeBinaryNode(plain)
            .then(n => this.dispatch(n))
            .catch(() => this.terminate())
            .finally(() => this.ws.resume());
        }
        return;
      }
    }
  }

  private dispatch(n: BinaryNode): void {
    if (n.tag === 'iq' && (n.attrs.type === 'result' || n.attrs.type === 'error')) {
      const id = n.attrs.id;
      const w = id === undefined ? undefined : this.waiting.get(id);
      if (w && id !== undefined) {
        this.waiting.delete(id);
        w(n);
        return;
      }
    }
    this.hooks.onNode(this, n);
  }

  /** Encrypts and sends one node (after the latency fault's delay, if any). */
  send(n: BinaryNode): void {
    if (this.closed || !this.transport) return;
    const delay = this.hooks.latencyFor(this);
    if (delay > 0) {
      setTimeout(() => this.sendNow(n), delay).unref();
    } else {
      this.sendNow(n);
    }
  }

  private sendNow(n: BinaryNode): void {
    if (this.closed || !this.transport) return;
    this.ws.send(this.transport.frame(encodeBinaryNode(n)));
  }

  /** Sends an iq and resolves with the client's result (or undefined on close / timeout). */
  query(n: BinaryNode, timeoutMs = 30_000): Promise<BinaryNode | undefined> {
    const id = n.attrs.id ?? `sim-${this.id}-${this.nextTag++}`;
    n.attrs.id = id;
    return new Promise(resolve => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, timeoutMs);
      timer.unref();
      this.waiting.set(id, r => {
        clearTimeout(timer);
        resolve(r);
      });
      this.send(n);
    });
  }

  /** `<stream:error>` then close (Baileys maps code / conflict type to a DisconnectReason). */
  streamError(attrs: Record<string, string>, content?: BinaryNode[]): void {
    this.send(node('stream:error', attrs, content));
    this.closeSoon();
  }

  failure(reason: number): void {
    this.send(node('failure', { reason: String(reason), location: 'wa-sim' }));
    this.closeSoon();
  }

  /** Flushes queued frames, then closes the socket. */
  closeSoon(): void {
    const delay = this.hooks.latencyFor(this);
    setTimeout(() => this.close(), delay + 20).unref();
  }

  close(): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close();
    this.onClosed();
  }

  /** Abrupt close, like a network drop. */
  terminate(): void {
    this.ws.terminate();
    this.onClosed();
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.values()) w(node('iq', { type: 'error' }));
    this.waiting.clear();
    this.hooks.onClose(this);
  }
}
