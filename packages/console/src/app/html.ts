// htm bound to Preact: tagged templates instead of JSX, so the sources need no JSX transform.
import { h } from 'preact';
import type { VNode } from 'preact';
import htm from 'htm';

type Tag = (strings: TemplateStringsArray, ...values: unknown[]) => VNode;

// htm's typings are CommonJS-shaped (its package has no "type": "module"), so TypeScript sees a namespace
// where esbuild's bundle gets the ES module's default export: both shapes are accepted.
const bindable = ((htm as unknown as { default?: unknown }).default ?? htm) as { bind(hh: typeof h): Tag };

export const html: Tag = bindable.bind(h);
