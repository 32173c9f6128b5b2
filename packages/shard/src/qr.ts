/** QR rendering task: shape, limits and validation (shared by the pool and its worker). */
import { GatewayError } from '@wagw/shared';

export const QR_FORMATS = ['png', 'svg', 'terminal', 'utf8'] as const;
export type QrFormat = (typeof QR_FORMATS)[number];

/** WhatsApp QR payloads are ~250 characters; a version-40 code holds at most 2953 bytes. */
export const QR_MAX_TEXT = 2048;
export const QR_MAX_WIDTH = 2048;
export const QR_MIN_WIDTH = 64;
export const QR_MAX_MARGIN = 16;

export interface RenderQrTask {
  text: string;
  format: QrFormat;
  /** PNG/SVG width in pixels. */
  width?: number;
  margin?: number;
}

export type RenderQrResult =
  | { format: 'png'; contentType: 'image/png'; data: Uint8Array }
  | { format: 'svg'; contentType: 'image/svg+xml'; data: string }
  | { format: 'terminal' | 'utf8'; contentType: 'text/plain; charset=utf-8'; data: string };

/** Throws VALIDATION_FAILED naming the bad field; returns the task with defaults applied. */
export function validateQrTask(task: RenderQrTask): Required<RenderQrTask> {
  const problems: string[] = [];
  if (typeof task.text !== 'string' || task.text.length === 0 || task.text.length > QR_MAX_TEXT) {
    problems.push(`text: must be 1-${QR_MAX_TEXT} characters`);
  }
  if (!(QR_FORMATS as readonly string[]).includes(task.format)) problems.push(`format: must be one of ${QR_FORMATS.join(', ')}`);
  const width = task.width ?? 256;
  if (!Number.isInteger(width) || width < QR_MIN_WIDTH || width > QR_MAX_WIDTH) {
    problems.push(`width: must be an integer ${QR_MIN_WIDTH}-${QR_MAX_WIDTH}`);
  }
  const margin = task.margin ?? 2;
  if (!Number.isInteger(margin) || margin < 0 || margin > QR_MAX_MARGIN) problems.push(`margin: must be an integer 0-${QR_MAX_MARGIN}`);
  if (problems.length > 0) throw new GatewayError('VALIDATION_FAILED', 'Invalid QR render task.', { problems });
  return { text: task.text, format: task.format, width, margin };
}
