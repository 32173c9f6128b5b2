import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CpuPool } from '../src/cpu-pool.ts';
import { QR_MAX_TEXT } from '../src/qr.ts';

describe('CpuPool (piscina, real worker threads)', () => {
  let pool: CpuPool;
  before(async () => {
    pool = await CpuPool.create({ threads: 1 });
  });
  after(async () => {
    await pool.close();
  });

  it('renders a QR code as PNG bytes', async () => {
    const r = await pool.renderQr({ text: '2@abc,def,ghi', format: 'png', width: 128 });
    assert.equal(r.contentType, 'image/png');
    assert.ok(r.data instanceof Uint8Array);
    assert.deepEqual([...r.data.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  });

  it('renders SVG and terminal text', async () => {
    const svg = await pool.renderQr({ text: 'hello', format: 'svg' });
    assert.match(svg.data as string, /^<svg/);
    const term = await pool.renderQr({ text: 'hello', format: 'terminal' });
    assert.equal(typeof term.data, 'string');
    assert.ok((term.data as string).includes('▄'));
  });

  it('refuses oversized or malformed tasks with VALIDATION_FAILED naming the field', async () => {
    await assert.rejects(pool.renderQr({ text: 'x'.repeat(QR_MAX_TEXT + 1), format: 'png' }), (err: Error & { code?: string; details?: { problems: string[] } }) => {
      assert.equal(err.code, 'VALIDATION_FAILED');
      assert.match(err.details?.problems.join() ?? '', /text/);
      return true;
    });
    await assert.rejects(pool.renderQr({ text: 'x', format: 'png', width: 100_000 }), /Invalid QR/);
  });

  it('reports its stats', () => {
    const s = pool.stats();
    assert.ok(s.threads >= 1);
    assert.ok(s.completed >= 1);
  });
});
