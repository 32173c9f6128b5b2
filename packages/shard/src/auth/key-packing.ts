/**
 * How BlobAuthState holds Signal keys in memory. A session uploads 812 one-time prekeys when it first logs in
 * and holds the unused ones for as long as it lives; as Baileys hands them over, each is an object with two
 * 32-byte Buffers: about 380 bytes of JS heap and external memory per key, ~300 KB per idle session (measured
 * in docs/sessions.md, "What an idle session holds"). Packed, a prekey is one 64-character one-byte string
 * (private key then public key): about 80 bytes. It is unpacked into fresh Buffers only when Baileys asks for it
 * (a contact starts a new Signal session with this device), and for the stored snapshot (same JSON as before:
 * the format of the objects in the store does not change).
 */
type KeyPair = { private: Uint8Array; public: Uint8Array };

const KEY_BYTES = 32;

function isKeyPair(value: unknown): value is KeyPair {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<KeyPair>;
  return v.private instanceof Uint8Array && v.public instanceof Uint8Array && v.private.length === KEY_BYTES && v.public.length === KEY_BYTES && Object.keys(v).length === 2;
}

/** The in-memory form of a key of `type`: a prekey pair packed into a string, anything else as it is. */
export function packKey(type: string, value: unknown): unknown {
  if (type !== 'pre-key' || !isKeyPair(value)) return value;
  const buf = Buffer.allocUnsafe(2 * KEY_BYTES);
  buf.set(value.private, 0);
  buf.set(value.public, KEY_BYTES);
  return buf.toString('latin1');
}

/** The value Baileys expects back: `packKey`'s string turned into a fresh `{ private, public }` pair. */
export function unpackKey(type: string, value: unknown): unknown {
  if (type !== 'pre-key' || typeof value !== 'string') return value;
  const buf = Buffer.from(value, 'latin1');
  if (buf.length !== 2 * KEY_BYTES) throw new RangeError(`packed prekey of ${buf.length} bytes`);
  return { private: buf.subarray(0, KEY_BYTES), public: buf.subarray(KEY_BYTES) };
}
