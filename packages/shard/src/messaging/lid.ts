/**
 * The shard's `LidResolver`, backed by Baileys' `sock.signalRepository.lidMapping` (LIDMappingStore, which
 * answers from its cache, then the auth state's `lid-mapping` keys). Baileys returns `pn:device@s.whatsapp.net`
 * (or `@hosted`); the resolver reports the bare phone-number JID. A failing lookup counts as "unknown": a
 * message is then reported with its LID instead of not at all.
 */
import { bareJid, isLidJid, jidToPhone } from '@wagw/shared';
import type { LidResolver } from '@wagw/shared';

/** The part of Baileys' LIDMappingStore the resolver uses. */
export interface LidMappingLike {
  getPNForLID(lid: string): Promise<string | null>;
}

export function createLidResolver(mapping: LidMappingLike, onError?: (err: unknown, lid: string) => void): LidResolver {
  return {
    async toPhoneJid(lidJid) {
      if (!isLidJid(lidJid)) return undefined;
      let pn: string | null;
      try {
        pn = await mapping.getPNForLID(bareJid(lidJid));
      } catch (err) {
        onError?.(err, lidJid);
        return undefined;
      }
      if (pn === null) return undefined;
      const user = /^(\d{6,15})(?::\d+)?@(s\.whatsapp\.net|hosted)$/.exec(pn);
      if (user === null) return undefined;
      const jid = `${user[1] as string}@s.whatsapp.net`;
      return jidToPhone(jid) === undefined ? undefined : jid;
    },
  };
}
