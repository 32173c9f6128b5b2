// The console bundle builds from the sources alone (no network, no dist/ in git) into the three files the router
// serves, with no inline script or style (the console's CSP allows only 'self').
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConsole } from '../src/index.ts';

test('buildConsole: index.html, app.js and app.css, self-contained', async () => {
  const { files } = await buildConsole();
  assert.deepEqual([...files.keys()].sort(), ['app.css', 'app.js', 'index.html']);
  const html = files.get('index.html')?.body.toString('utf8') ?? '';
  assert.match(html, /<script type="module" src="\/console\/app\.js"><\/script>/);
  assert.match(html, /<link rel="stylesheet" href="\/console\/app\.css">/);
  assert.doesNotMatch(html, /<script>|<style|style="/, 'no inline script or style');
  const js = files.get('app.js')?.body.toString('utf8') ?? '';
  // Preact is bundled in, nothing is imported at run time.
  assert.doesNotMatch(js, /\bimport\s*\(|from\s*["']/, 'no import left in the bundle');
  assert.doesNotMatch(js, /https?:\/\/(?!www\.w3\.org\/|backend\.example\/)/, 'no absolute URL in the bundle but XML namespaces and a placeholder');
  assert.equal(files.get('app.js')?.type, 'text/javascript; charset=utf-8');
});
