/**
 * piscina worker: CPU-heavy tasks run here, never on the shard's event loop. Run by Node 24 directly (type
 * stripping). Each task is a named export selected with `pool.run(task, { name })`.
 */
import QRCode from 'qrcode';
import type { RenderQrResult, RenderQrTask } from './qr.ts';

/** Renders a QR code; the task is validated by the caller (`validateQrTask`). */
export async function renderQr(task: Required<RenderQrTask>): Promise<RenderQrResult> {
  const common = { margin: task.margin, errorCorrectionLevel: 'M' as const };
  switch (task.format) {
    case 'png': {
      const buf = await QRCode.toBuffer(task.text, { ...common, type: 'png', width: task.width });
      return { format: 'png', contentType: 'image/png', data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
    }
    case 'svg':
      return { format: 'svg', contentType: 'image/svg+xml', data: await QRCode.toString(task.text, { ...common, type: 'svg', width: task.width }) };
    case 'terminal':
      return { format: 'terminal', contentType: 'text/plain; charset=utf-8', data: await QRCode.toString(task.text, { ...common, type: 'terminal', small: true }) };
    case 'utf8':
      return { format: 'utf8', contentType: 'text/plain; charset=utf-8', data: await QRCode.toString(task.text, { ...common, type: 'utf8' }) };
  }
}

/** A no-op used to start a thread at pool creation (so the first real task does not pay the start-up). */
export function warmUp(): number {
  return process.pid;
}
