/**
 * Poll votes (`pollUpdateMessage`) are AES-GCM encrypted with a key derived from the poll's
 * `messageContextInfo.messageSecret`, the poll id, the poll creator's JID and the voter's JID (Baileys'
 * `decryptPollVote`). The shard decodes a vote when the poll is stored (the router's `message.get`), so the
 * router can keep the poll's tallies (docs/messaging.md, "Poll votes").
 */
import { createHash } from 'node:crypto';
import { decryptPollVote, jidNormalizedUser, proto } from '@whiskeysockets/baileys';

/** The stored poll a vote points at, as `message.get` returns it. */
export interface StoredPoll {
  raw?: string;
  fromMe?: boolean;
  from?: string;
  fromLid?: string;
}

/** JIDs a party may be known by (phone-number and LID forms); empty and duplicate entries are dropped. */
export function jidCandidates(...jids: (string | null | undefined)[]): string[] {
  const out: string[] = [];
  for (const j of jids) {
    if (j === null || j === undefined || j === '') continue;
    const bare = jidNormalizedUser(j);
    if (bare !== '' && !out.includes(bare)) out.push(bare);
  }
  return out;
}

/**
 * The option names a vote selects ([] = the voter took their vote back), or undefined when it cannot be
 * decoded (no poll proto, no messageSecret, or no creator/voter JID pair that authenticates). Every
 * candidate pair is tried: AES-GCM's tag rejects a wrong one.
 */
export function decodePollVote(update: proto.Message.IPollUpdateMessage, pollId: string, poll: proto.IMessage, creators: readonly string[], voters: readonly string[]): string[] | undefined {
  const secret = poll.messageContextInfo?.messageSecret;
  const vote = update.vote;
  if (secret === null || secret === undefined || secret.length === 0 || vote?.encPayload == null || vote.encIv == null) return undefined;
  const creation = poll.pollCreationMessage ?? poll.pollCreationMessageV2 ?? poll.pollCreationMessageV3;
  if (creation === null || creation === undefined) return undefined;
  for (const pollCreatorJid of creators) {
    for (const voterJid of voters) {
      let decoded: proto.Message.PollVoteMessage;
      try {
        decoded = decryptPollVote(vote, { pollCreatorJid, pollMsgId: pollId, pollEncKey: secret, voterJid });
      } catch {
        continue;
      }
      const byHash = new Map((creation.options ?? []).map((o) => [createHash('sha256').update(o.optionName ?? '').digest('hex'), o.optionName ?? '']));
      const names: string[] = [];
      for (const h of decoded.selectedOptions ?? []) {
        const name = byHash.get(Buffer.from(h).toString('hex'));
        if (name !== undefined && !names.includes(name)) names.push(name);
      }
      return names;
    }
  }
  return undefined;
}

/** Decodes a stored poll's base64 proto. */
export function pollProto(stored: StoredPoll): proto.IMessage | undefined {
  if (stored.raw === undefined || stored.raw === '') return undefined;
  try {
    return proto.Message.decode(Buffer.from(stored.raw, 'base64'));
  } catch {
    return undefined;
  }
}
