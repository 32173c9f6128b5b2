// Writes one bench script's section of docs/benchmarks.md, leaving every other section as it is.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const HEADER = '# Benchmarks\n\nReproducible scripts in `bench/`; each writes its own section here.\n';

/** Replaces (or appends) the `## {name}` section with `body`; returns the file's path. */
export function writeBenchSection(name: string, body: string): string {
  const file = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
  const section = `## ${name}\n\n${body.trim()}\n`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : HEADER;
  const heading = new RegExp(`^## ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`, 'm');
  const start = text.search(heading);
  if (start === -1) {
    text = `${text.trimEnd()}\n\n${section}`;
  } else {
    const rest = text.slice(start + 1);
    const next = rest.search(/^## /m);
    const end = next === -1 ? text.length : start + 1 + next;
    text = `${text.slice(0, start)}${section}${next === -1 ? '' : '\n'}${text.slice(end)}`;
  }
  writeFileSync(file, text);
  return file;
}
