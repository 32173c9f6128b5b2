// Helpers for Baileys BinaryNode trees.
import type { BinaryNode } from './types.ts';

export const children = (node: BinaryNode | undefined): BinaryNode[] =>
  node && Array.isArray(node.content) ? node.content : [];

export const child = (node: BinaryNode | undefined, tag: string): BinaryNode | undefined =>
  children(node).find(c => c.tag === tag);

export const childrenOf = (node: BinaryNode | undefined, tag: string): BinaryNode[] =>
  children(node).filter(c => c.tag === tag);

export const bytes = (node: BinaryNode | undefined): Buffer | undefined => {
  const c = node?.content;
  if (c instanceof Uint8Array) return Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  if (typeof c === 'string') return Buffer.from(c, 'utf8');
  return undefined;
};

export const childBytes = (node: BinaryNode | undefined, tag: string): Buffer | undefined => bytes(child(node, tag));

export const text = (node: BinaryNode | undefined): string | undefined => {
  const c = node?.content;
  if (typeof c === 'string') return c;
  if (c instanceof Uint8Array) return Buffer.from(c).toString('utf8');
  return undefined;
};

export const uintBE = (b: Uint8Array | undefined): number => {
  if (!b) return 0;
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
};

export const beBytes = (value: number, length: number): Buffer => {
  const out = Buffer.alloc(length);
  let v = value;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = v & 0xff;
    v = Math.floor(v / 256);
  }
  return out;
};

export const node = (tag: string, attrs: Record<string, string | undefined> = {}, content?: BinaryNode['content']): BinaryNode => {
  const clean: Record<string, string> = {};
  for (const k in attrs) {
    const v = attrs[k];
    if (v !== undefined) clean[k] = v;
  }
  return content === undefined ? { tag, attrs: clean } : { tag, attrs: clean, content };
};

export const unixNow = (): string => Math.floor(Date.now() / 1000).toString();
