// A minimal raw WhatsApp client for the simulator benchmark: Baileys' own Noise initiator and binary codec,
// Node's built-in WebSocket, no Signal crypto (payloads are opaque pre-encrypted bytes to the server).
import { makeNoiseHandler, NOISE_WA_HEADER, proto } from '@whiskeysockets/baileys';
import type { BinaryNode, KeyPair } from '@whiskeysockets/baileys';
import { encodeBinaryNode } from '@whiskeysockets/baileys';

type NoiseLogger = Parameters<typeof makeNoiseHandler>[0]['logger'];

const quiet: NoiseLogger = {
  level: 'silent',
  child: () => quiet,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

export interface RawClientOptions {
  readonly url: string;
  readonly number: string;
  readonly device: number;
  readonly noiseKey: KeyPair;
  readonly ephemeral: KeyPair;
}

export class RawClient {
  onNode: (n: BinaryNode) => void = () => undefined;
  private readonly ws: WebSocket;
  private readonly noise: ReturnType<typeof makeNoiseHandler>;

  private constructor(ws: WebSocket, noise: ReturnType<typeof makeNoiseHandler>) {
    this.ws = ws;
    this.noise = noise;
  }

  /** Connects, completes the Noise handshake and logs in; resolves on `<success>`. */
  static connect(o: RawClientOptions): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(o.url);
      ws.binaryType = 'arraybuffer';
      const noise = makeNoiseHandler({ keyPair: o.ephemeral, NOISE_HEADER: NOISE_WA_HEADER, logger: quiet });
      const client = new RawClient(ws, noise);
      let stage: 'hello' | 'open' = 'hello';
      ws.onerror = () => reject(new Error(`socket error for ${o.number}:${o.device}`));
      ws.onopen = () => {
        ws.send(noise.encodeFrame(proto.HandshakeMessage.encode({ clientHello: { ephemeral: o.ephemeral.public } }).finish()));
      };
      ws.onmessage = (e: MessageEvent) => {
        void noise.decodeFrame(Buffer.from(e.data as ArrayBuffer), frame => {
          if (stage === 'hello' && frame instanceof Uint8Array) {
            stage = 'open';
            const keyEnc = noise.processHandshake(proto.HandshakeMessage.decode(frame), o.noiseKey);
            const payload = proto.ClientPayload.encode({
              username: Number(o.number),
              device: o.device,
              passive: true,
              pull: true,
              connectType: proto.ClientPayload.ConnectType.WIFI_UNKNOWN,
              connectReason: proto.ClientPayload.ConnectReason.USER_ACTIVATED,
              userAgent: { platform: proto.ClientPayload.UserAgent.Platform.WEB, appVersion: { primary: 2, secondary: 3000, tertiary: 1 } },
            }).finish();
            ws.send(noise.encodeFrame(proto.HandshakeMessage.encode({ clientFinish: { static: keyEnc, payload: noise.encrypt(payload) } }).finish()));
            void noise.finishInit();
            return;
          }
          if (frame instanceof Uint8Array) return;
          if (frame.tag === 'success') resolve(client);
          else if (frame.tag === 'failure') reject(new Error(`login failed ${frame.attrs.reason ?? ''}`));
          client.onNode(frame);
        });
      };
    });
  }

  send(n: BinaryNode): void {
    this.ws.send(this.noise.encodeFrame(encodeBinaryNode(n)));
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close(): void {
    this.ws.close();
  }
}
