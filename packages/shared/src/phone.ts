/**
 * Phone numbers and WhatsApp JIDs as callers give them -> the JID Baileys sends to.
 *
 * Validation uses libphonenumber-js with its `max` metadata: it knows each country's real number ranges
 * (not only lengths, as `min` does), so `+62 123` or a 20-digit string is refused here instead of being
 * sent to WhatsApp. `mobile` metadata would refuse fixed-line numbers, which WhatsApp Business accounts
 * legitimately use, so `max` is the right set. See docs/messaging.md for the accepted formats.
 */
import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode, type PhoneNumber } from 'libphonenumber-js/max';
import { GatewayError } from './errors.ts';

export type RecipientKind = 'user' | 'group' | 'lid' | 'broadcast';

export interface Recipient {
  /** The JID to send to: `6287733760363@s.whatsapp.net`, `120363…@g.us`, `1234…@lid`, `status@broadcast`. */
  jid: string;
  kind: RecipientKind;
  /** E.164 (`+6287733760363`) when the recipient is a phone number (kind `user`). */
  phone?: string;
}

export interface NormalizeOptions {
  /** ISO 3166-1 alpha-2 country for numbers without an international prefix (config DEFAULT_COUNTRY). */
  defaultCountry: string;
  /** Kinds this call accepts; default user, group and lid (broadcast lists and status only when asked for). */
  allow?: readonly RecipientKind[];
}

/** Human-readable list of accepted formats: `details.accepted` of every INVALID_PHONE (the message stays one sentence). */
export const ACCEPTED_RECIPIENT_FORMATS = [
  '+6287733760363 (international, with +)',
  '6287733760363 (international, without +)',
  '087733760363 (national, with trunk 0, in the default country)',
  '87733760363 (national, without trunk 0, in the default country)',
  '6287733760363@s.whatsapp.net (user JID; @c.us accepted as an alias)',
  '120363025246125486@g.us (group JID)',
  '123456789012345@lid (LID JID)',
] as const;

const BROADCAST_FORMAT = 'status@broadcast or 1234567890@broadcast (broadcast JID)';
const DEFAULT_ALLOW: readonly RecipientKind[] = ['user', 'group', 'lid'];

/** Separators people type inside numbers: spaces (incl. no-break and thin), dashes, dots, slashes, parentheses. */
const SEPARATORS = /[\s\u00a0\u2009\u202f\-\u2010-\u2015./()]/g;
const USER_JID = /^(\d{6,15})(?::(\d{1,3}))?@(s\.whatsapp\.net|c\.us)$/;
const GROUP_JID = /^(\d{6,24}|\d{6,15}-\d{6,12})@g\.us$/;
const LID_JID = /^(\d{6,20})(?::(\d{1,3}))?@lid$/;
const BROADCAST_JID = /^(status|\d{6,24})@broadcast$/;
const MAX_INPUT = 64;

function invalid(input: unknown, reason: string, allow: readonly RecipientKind[]): GatewayError {
  const accepted = acceptedFormats(allow);
  const shown = typeof input === 'string' ? JSON.stringify(input.length > MAX_INPUT ? `${input.slice(0, MAX_INPUT)}…` : input) : typeof input;
  return new GatewayError(
    'INVALID_PHONE',
    `${shown} is not a recipient: ${reason}.`,
    { input: typeof input === 'string' ? input.slice(0, MAX_INPUT) : null, reason, accepted },
  );
}

/** The accepted formats for a given set of kinds (what an INVALID_PHONE message lists). */
export function acceptedFormats(allow: readonly RecipientKind[] = DEFAULT_ALLOW): string[] {
  const out: string[] = [];
  if (allow.includes('user')) out.push(...ACCEPTED_RECIPIENT_FORMATS.slice(0, 5));
  if (allow.includes('group')) out.push(ACCEPTED_RECIPIENT_FORMATS[5]);
  if (allow.includes('lid')) out.push(ACCEPTED_RECIPIENT_FORMATS[6]);
  if (allow.includes('broadcast')) out.push(BROADCAST_FORMAT);
  return out;
}

function parseValid(text: string, country: CountryCode | undefined): PhoneNumber | undefined {
  const parsed = parsePhoneNumberFromString(text, country === undefined ? undefined : { defaultCountry: country });
  return parsed !== undefined && parsed.isValid() ? parsed : undefined;
}

/**
 * Parses a phone number typed by a person or sent by a backend into E.164, or explains why not.
 * Rules, in order: a leading `+` or `00` means international; otherwise a number valid in the default
 * country wins (`087733760363`, `87733760363`, and `6287733760363` when the default country is ID);
 * otherwise digits not starting with 0 are read as international without `+` (`14155552671`).
 */
function parsePhone(input: string, defaultCountry: CountryCode): { e164: string } | { reason: string } {
  if (/[A-Za-z]/.test(input)) return { reason: 'it contains letters' };
  const compact = input.replace(SEPARATORS, '');
  if (compact === '') return { reason: 'it is empty' };
  if (!/^\+?\d+$/.test(compact)) return { reason: 'only digits, one leading +, spaces, dashes, dots and parentheses are allowed' };
  const digits = compact.replace(/^\+/, '');
  if (digits.length < 6) return { reason: 'it is too short' };
  if (digits.length > 17) return { reason: 'it is too long' };
  let phone: PhoneNumber | undefined;
  if (compact.startsWith('+')) phone = parseValid(compact, undefined);
  else if (digits.startsWith('00')) phone = parseValid(`+${digits.slice(2)}`, undefined);
  else phone = parseValid(digits, defaultCountry) ?? (digits.startsWith('0') ? undefined : parseValid(`+${digits}`, undefined));
  if (phone === undefined) return { reason: `it is not a valid phone number (international, or national in ${defaultCountry})` };
  return { e164: phone.number };
}

/**
 * Normalizes a recipient (`to`, a mention, a contact card's phone) into the JID to send to.
 * Throws GatewayError INVALID_PHONE: one sentence with the reason, `details.accepted` lists the accepted formats.
 * A device suffix (`…:3@s.whatsapp.net`) is accepted and dropped: messages go to a user, not one device.
 */
export function normalizeRecipient(input: unknown, options: NormalizeOptions): Recipient {
  const allow = options.allow ?? DEFAULT_ALLOW;
  if (typeof input !== 'string') throw invalid(input, 'it must be a string (numbers lose leading zeros)', allow);
  const text = input.trim();
  if (text.length > MAX_INPUT) throw invalid(input, 'it is too long', allow);
  if (text.includes('@')) {
    const jid = text.toLowerCase();
    const kindOf = (kind: RecipientKind, r: Recipient): Recipient => {
      if (!allow.includes(kind)) throw invalid(input, `a ${kind} JID is not accepted here`, allow);
      return r;
    };
    const user = USER_JID.exec(jid);
    if (user !== null) {
      const digits = user[1] as string;
      return kindOf('user', { jid: `${digits}@s.whatsapp.net`, kind: 'user', phone: `+${digits}` });
    }
    if (GROUP_JID.test(jid)) return kindOf('group', { jid, kind: 'group' });
    const lid = LID_JID.exec(jid);
    if (lid !== null) return kindOf('lid', { jid: `${lid[1] as string}@lid`, kind: 'lid' });
    if (BROADCAST_JID.test(jid)) return kindOf('broadcast', { jid, kind: 'broadcast' });
    const domain = jid.slice(jid.lastIndexOf('@') + 1);
    const known = ['s.whatsapp.net', 'c.us', 'g.us', 'lid', 'broadcast'].includes(domain);
    throw invalid(input, known ? `the part before @${domain} is malformed` : `@${domain} is not an accepted JID domain`, allow);
  }
  if (!allow.includes('user')) throw invalid(input, 'a phone number is not accepted here', allow);
  const country = options.defaultCountry.toUpperCase();
  if (!isSupportedCountry(country)) throw new GatewayError('CONFIG_INVALID', `default country ${JSON.stringify(options.defaultCountry)} is not supported`);
  const parsed = parsePhone(text, country);
  if ('reason' in parsed) throw invalid(input, parsed.reason, allow);
  return { jid: `${parsed.e164.slice(1)}@s.whatsapp.net`, kind: 'user', phone: parsed.e164 };
}

/** `6287733760363@s.whatsapp.net` (also `:device` and `@c.us`) -> `+6287733760363`; anything else -> undefined. */
export function jidToPhone(jid: string): string | undefined {
  const m = USER_JID.exec(jid.toLowerCase());
  return m === null ? undefined : `+${m[1] as string}`;
}

/** `…@lid` (with or without `:device`). */
export function isLidJid(jid: string): boolean {
  return LID_JID.test(jid.toLowerCase());
}

/** Strips the device part: `62877…:12@s.whatsapp.net` -> `62877…@s.whatsapp.net`; `@c.us` -> `@s.whatsapp.net`. */
export function bareJid(jid: string): string {
  const lower = jid.toLowerCase();
  const user = USER_JID.exec(lower);
  if (user !== null) return `${user[1] as string}@s.whatsapp.net`;
  const lid = LID_JID.exec(lower);
  if (lid !== null) return `${lid[1] as string}@lid`;
  return jid;
}

/**
 * Resolves LIDs to phone-number JIDs. The shard backs it with Baileys' `signalRepository.lidMapping`
 * (`createLidResolver` in the shard); tests use `mapLidResolver`.
 */
export interface LidResolver {
  /** `…@lid` -> `…@s.whatsapp.net` without device, or undefined when the mapping is unknown. */
  toPhoneJid(lidJid: string): Promise<string | undefined>;
}

/** A JID as the API and webhooks report it: the phone whenever it is known, the LID kept beside it. */
export interface ResolvedJid {
  jid: string;
  phone?: string;
  lid?: string;
}

/** Rewrites a LID into its phone-number JID when the mapping is known; other JIDs only lose their device part. */
export async function resolveJid(jid: string, resolver: LidResolver | undefined): Promise<ResolvedJid> {
  const bare = bareJid(jid);
  if (isLidJid(bare)) {
    const pn = resolver === undefined ? undefined : await resolver.toPhoneJid(bare);
    const phone = pn === undefined ? undefined : jidToPhone(pn);
    return phone === undefined || pn === undefined ? { jid: bare, lid: bare } : { jid: bareJid(pn), phone, lid: bare };
  }
  const phone = jidToPhone(bare);
  return phone === undefined ? { jid: bare } : { jid: bare, phone };
}

/** A resolver over a fixed map (tests, or a cache snapshot). Keys and values may carry device parts. */
export function mapLidResolver(pairs: Iterable<readonly [lid: string, pn: string]>): LidResolver {
  const map = new Map<string, string>();
  for (const [lid, pn] of pairs) map.set(bareJid(lid), bareJid(pn));
  return { toPhoneJid: (lid) => Promise.resolve(map.get(bareJid(lid))) };
}
