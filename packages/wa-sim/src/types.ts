// Small shared types of the simulator.
import type { BinaryNode } from '@whiskeysockets/baileys';

export type { BinaryNode };

export interface KeyPair {
  readonly public: Buffer;
  readonly private: Buffer;
}

/** What a client needs to start a Signal session with a device (an `encrypt get <key>` answer). */
export interface PreKeyBundle {
  readonly registrationId: number;
  readonly identityKey: Buffer;
  readonly signedPreKey: { readonly id: number; readonly public: Buffer; readonly signature: Buffer };
  readonly preKey: { readonly id: number; readonly public: Buffer } | undefined;
}

export type ReceiptType = 'delivered' | 'read' | 'played';
