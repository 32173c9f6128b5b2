// Poll votes as WhatsApp clients encrypt them: the vote (`PollVoteMessage`, SHA-256 of each selected option
// name) is AES-256-GCM encrypted with a key derived from the poll's messageSecret, the poll id, the poll
// creator's JID and the voter's JID; the receiver needs the poll message to decrypt it.
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { proto } from '@whiskeysockets/baileys';

export interface PollVoteInput {
  /** Id of the poll creation message. */
  pollId: string;
  /** The poll's `messageContextInfo.messageSecret`. */
  secret: Uint8Array;
  /** Bare JIDs of the poll's creator and of the voter. */
  creatorJid: string;
  voterJid: string;
  /** Option names selected ([] takes the vote back). */
  options: readonly string[];
}

export function encryptPollVote(v: PollVoteInput): proto.Message.IPollEncValue {
  const plain = proto.Message.PollVoteMessage.encode({ selectedOptions: v.options.map((o) => createHash('sha256').update(o).digest()) }).finish();
  const info = Buffer.concat([Buffer.from(v.pollId), Buffer.from(v.creatorJid), Buffer.from(v.voterJid), Buffer.from('Poll Vote'), Buffer.from([1])]);
  const key0 = createHmac('sha256', Buffer.alloc(32)).update(v.secret).digest();
  const key = createHmac('sha256', key0).update(info).digest();
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(`${v.pollId}\u0000${v.voterJid}`));
  const encPayload = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  return { encPayload, encIv: iv };
}
