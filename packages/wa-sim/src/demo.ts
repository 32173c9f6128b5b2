// The demo's simulated people (npm run demo, test/console): phones that scan the console's QR, and contacts
// who answer what they are sent. Structurally the router's SimulatorControl, without either package importing
// the other.
import type { proto } from '@whiskeysockets/baileys';
import type { SimPhone } from './phone.ts';
import type { WaSimulator } from './simulator.ts';

export interface DemoContact {
  number: string;
  name: string;
}

export interface DemoPeopleOptions {
  /** Contacts to create; each answers every message it receives. */
  contacts: readonly DemoContact[];
  /** How often the contacts look at their inbox (ms). Default 250. */
  pollMs?: number;
  /** The number of the first phone that scans a QR; later ones count up. Default 6281100000001. */
  firstOwnerNumber?: string;
}

/** What a message says, for the answer: its text or caption, else its kind. */
export function describeMessage(m: proto.IMessage | undefined): string {
  if (!m) return 'a message';
  const text = m.conversation ?? m.extendedTextMessage?.text ?? m.imageMessage?.caption ?? m.videoMessage?.caption ?? undefined;
  if (text) return `"${text.slice(0, 200)}"`;
  if (m.imageMessage) return 'a picture';
  if (m.videoMessage) return 'a video';
  if (m.audioMessage) return 'a voice note';
  if (m.documentMessage) return 'a document';
  if (m.stickerMessage) return 'a sticker';
  if (m.locationMessage) return 'a location';
  return 'a message';
}

/** The answer a contact sends: deterministic, so tests can wait for it. */
export function answerText(contact: DemoContact, m: proto.IMessage | undefined): string {
  return `Hi, ${contact.name} here. Thanks for ${describeMessage(m)}!`;
}

export class DemoPeople {
  readonly #sim: WaSimulator;
  readonly #contacts: { info: DemoContact; phone: SimPhone; seen: number }[];
  readonly #timer: NodeJS.Timeout;
  #next: bigint;
  #busy = false;

  constructor(sim: WaSimulator, options: DemoPeopleOptions) {
    this.#sim = sim;
    this.#next = BigInt(options.firstOwnerNumber ?? '6281100000001');
    this.#contacts = options.contacts.map((info) => ({ info, phone: sim.createPhone({ number: info.number, name: info.name }), seen: 0 }));
    this.#timer = setInterval(() => void this.#answer(), options.pollMs ?? 250);
    this.#timer.unref();
  }

  /** The phone of a contact (tests read what it received). */
  phone(number: string): SimPhone | undefined {
    return this.#contacts.find((c) => c.info.number === number)?.phone;
  }

  contacts(): DemoContact[] {
    return this.#contacts.map((c) => ({ ...c.info }));
  }

  /** A new simulated phone (its own WhatsApp account) scans `qr`: the session becomes its linked device. */
  async scanQr(qr: string): Promise<{ phone: string }> {
    const number = String(this.#next++);
    const phone = this.#sim.createPhone({ number, name: `Demo owner ${number.slice(-2)}` });
    await this.#sim.scanQr(phone, qr);
    return { phone: phone.number };
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #answer(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (const c of this.#contacts) {
        const inbox = c.phone.received();
        for (; c.seen < inbox.length; c.seen++) {
          const m = inbox[c.seen];
          // Copies of its own sends, undecryptable ones and reactions get no answer.
          if (m === undefined || m.fromMe || m.error !== undefined || m.message?.reactionMessage) continue;
          if (m.message?.protocolMessage) continue;
          await c.phone.sendText(m.chat, answerText(c.info, m.message)).catch(() => undefined);
        }
      }
    } finally {
      this.#busy = false;
    }
  }
}
