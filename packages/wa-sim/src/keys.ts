// Curve25519 key pairs as Buffers.
import { Curve } from '@whiskeysockets/baileys';
import type { KeyPair } from './types.ts';

export const newKeyPair = (): KeyPair => {
  const k = Curve.generateKeyPair();
  return { public: Buffer.from(k.public), private: Buffer.from(k.private) };
};
