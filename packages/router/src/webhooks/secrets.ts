/**
 * Per-endpoint webhook secrets (issue #10 item 12). The backend's endpoints are signed with WEBHOOK_SECRET
 * itself; a session's own `webhookUrl` is signed with a secret derived from it, bound to the session id and the
 * URL: `whsec_` + base64(HMAC-SHA256(key = WEBHOOK_SECRET's bytes, "wagw-session-webhook/v1\n" + sessionId +
 * "\n" + webhookUrl)). Whoever runs a session's receiver can verify its own deliveries but cannot sign a payload
 * the backend (or another session's receiver) accepts, and HMAC is one-way: the derived secret does not reveal
 * WEBHOOK_SECRET. Derived rather than stored: nothing new to keep secret at rest, every router computes the same
 * one, and the operator can recompute it (docs/webhooks.md, "Verifying").
 */
import { createHmac } from 'node:crypto';

/** The Standard Webhooks secret a session's `webhookUrl` is signed with (the stored, normalised URL). */
export function sessionWebhookSecret(webhookSecret: string, sessionId: string, webhookUrl: string): string {
  const key = Buffer.from(webhookSecret.replace(/^whsec_/, ''), 'base64');
  const mac = createHmac('sha256', key).update(`wagw-session-webhook/v1\n${sessionId}\n${webhookUrl}`, 'utf8').digest('base64');
  return `whsec_${mac}`;
}
