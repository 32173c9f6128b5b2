// Edits and revokes sent from a phone update the message they point at, end to end through real Baileys and the
// WhatsApp simulator: a phone sends a message, edits it (Baileys' plain protocolMessage and the editedMessage
// wrapper phones send), edits a media caption and revokes another message; GET .../messages/:id shows the new
// text with its history, or `revoked`. The edit/revoke rows are pushed on SSE and the `messages` webhook with
// `applied`. Forged ones (another author in the same chat, another chat) are stored but change nothing. The
// API's own PATCH/DELETE write the same representation. Poll votes: a phone votes (really encrypted with the poll's
// messageSecret) on a poll the gateway sent and on its own poll; the shard decodes them and the poll row keeps the
// current vote of each voter and the tally.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { proto } from '@whiskeysockets/baileys';
import type { SimPhone } from '@wagw/wa-sim';
import { waitFor } from '../harness/index.ts';
import type { Gateway, SseEvent } from '../sessions/helpers.ts';
import { messagingSuite } from './fixture.ts';
import type { Hit, StoredMessage } from './fixture.ts';

const SESSION = 'upd';

interface Stored extends StoredMessage {
  timestamp: string;
  edited?: boolean;
  editedAt?: string;
  editHistory?: { text: string; at: string }[];
  revoked?: boolean;
  revokedAt?: string;
  edit?: { messageId: string; text?: string; applied?: boolean };
  poll?: { name: string; options: string[]; votes?: { from: string; fromMe: boolean; options: string[] }[]; tally?: { option: string; count: number }[] };
  pollVote?: { pollId: string; options?: string[] };
  revoke?: { messageId: string; applied?: boolean };
}

describe('messaging: edits, revokes and poll votes from a phone update their target', () => {
  let gw: Gateway;
  let owner: SimPhone;
  let dewi: SimPhone;
  let eka: SimPhone;
  const suite = messagingSuite(SESSION, [{ number: '6281234567851', name: 'Owner' }, { number: '6281234567852', name: 'Dewi' }, { number: '6281234567853', name: 'Eka' }]);
  before(() => {
    gw = suite.gw;
    [owner, dewi, eka] = suite.phones as [SimPhone, SimPhone, SimPhone];
  });

  const get = (id: string) => gw.api.get<Stored>(`/api/v1/sessions/${SESSION}/messages/${id}`);
  const stored = (id: string): Promise<Stored> => suite.stored<Stored>(id);
  const sseOf = (id: string) => suite.sseOf(id);
  const hooksOf = (id: string) => suite.hooksOf(id);
  /** The edit/revoke row's SSE event and webhook (waited for, exactly one each): its `edit`/`revoke` object. */
  const emitted = async (id: string, type: 'edit' | 'revoke'): Promise<Record<string, unknown>> => {
    await waitFor(() => sseOf(id).length > 0 && hooksOf(id).length > 0, { what: `SSE + webhook of ${id}`, timeoutMs: 20_000, intervalMs: 50 });
    assert.equal(sseOf(id).length, 1);
    assert.equal(hooksOf(id).length, 1);
    const event = sseOf(id)[0] as SseEvent;
    const hook = (hooksOf(id)[0] as Hit).body['data'] as Record<string, unknown>;
    assert.equal(event.data['type'], type);
    assert.equal(hook['type'], type);
    assert.deepEqual(hook[type], event.data[type], 'SSE and webhook carry the same change');
    return hook[type] as Record<string, unknown>;
  };
  /** The key a phone uses for its own earlier message in its chat with the session. */
  const ownKey = (id: string) => ({ remoteJid: owner.jid, fromMe: true, id });

  test('a phone edits its text twice (plain and editedMessage-wrapped) and a caption: GET shows the new text, editedAt and history', async () => {
    const original = await dewi.sendText(owner.jid, 'halo semua');
    const first = await stored(original.id);
    assert.equal(first.text, 'halo semua');
    assert.equal(first.edited, undefined);

    // Baileys' own edit: protocolMessage MESSAGE_EDIT.
    const e1 = await dewi.sendContent(owner.jid, { edit: ownKey(original.id), text: 'halo semuanya' });
    assert.equal(e1.message.protocolMessage?.type, proto.Message.ProtocolMessage.Type.MESSAGE_EDIT);
    assert.deepEqual(await emitted(e1.id, 'edit'), { messageId: original.id, text: 'halo semuanya', applied: true });
    const afterFirst = await get(original.id);
    assert.equal(afterFirst.body.text, 'halo semuanya');
    assert.equal(afterFirst.body.edited, true);
    assert.deepEqual(afterFirst.body.editHistory, [{ text: 'halo semua', at: first.timestamp }]);
    const e1Row = await stored(e1.id);
    assert.equal(e1Row.edit?.applied, true, 'the stored edit row says it applied');

    // The wrapper phones send: editedMessage { message: { protocolMessage } }.
    const e2 = await dewi.sendMessage(owner.jid, {
      editedMessage: {
        message: {
          protocolMessage: { key: ownKey(original.id), type: proto.Message.ProtocolMessage.Type.MESSAGE_EDIT, editedMessage: { conversation: 'halo semua orang' }, timestampMs: Date.now() },
        },
      },
    });
    assert.deepEqual(await emitted(e2.id, 'edit'), { messageId: original.id, text: 'halo semua orang', applied: true });
    const edited = (await get(original.id)).body;
    assert.equal(edited.text, 'halo semua orang');
    assert.equal(edited.type, 'text');
    assert.equal(edited.editedAt, (await stored(e2.id)).timestamp);
    assert.deepEqual(
      edited.editHistory?.map((h) => h.text),
      ['halo semua', 'halo semuanya'],
    );

    // A caption of an image.
    const img = await dewi.sendContent(owner.jid, { image: randomBytes(3000), mimetype: 'image/jpeg', caption: 'foto lama' });
    assert.equal((await stored(img.id)).caption, 'foto lama');
    const e3 = await dewi.sendContent(owner.jid, { edit: ownKey(img.id), text: 'foto baru' });
    assert.equal((await emitted(e3.id, 'edit'))['applied'], true);
    const captioned = (await get(img.id)).body;
    assert.equal(captioned.caption, 'foto baru');
    assert.equal(captioned.text, undefined);
    assert.deepEqual(captioned.editHistory?.map((h) => h.text), ['foto lama']);
  });

  test('a phone revokes another of its messages: GET shows it revoked; later edits of it do not apply', async () => {
    const keep = await dewi.sendText(owner.jid, 'pesan ini tetap');
    const gone = await dewi.sendText(owner.jid, 'pesan ini dihapus');
    await stored(keep.id);
    await stored(gone.id);
    const r = await dewi.sendContent(owner.jid, { delete: ownKey(gone.id) });
    assert.equal(r.message.protocolMessage?.type, proto.Message.ProtocolMessage.Type.REVOKE);
    assert.deepEqual(await emitted(r.id, 'revoke'), { messageId: gone.id, applied: true });
    const revoked = (await get(gone.id)).body;
    assert.equal(revoked.revoked, true);
    assert.equal(revoked.revokedAt, (await stored(r.id)).timestamp);
    assert.equal((await get(keep.id)).body.revoked, undefined, 'only the target is revoked');

    const late = await dewi.sendContent(owner.jid, { edit: ownKey(gone.id), text: 'terlambat' });
    assert.equal((await emitted(late.id, 'edit'))['applied'], false);
    assert.equal((await get(gone.id)).body.text, 'pesan ini dihapus');
  });

  test('forged edits and revokes are stored but change nothing: another author in the chat, another chat', async () => {
    // The session's own message to Dewi: Dewi cannot edit or revoke it.
    const mine = await gw.api.call<{ id: string }>('POST', `/api/v1/sessions/${SESSION}/messages`, { to: dewi.jid, type: 'text', text: 'dari gateway' });
    assert.equal(mine.status, 201, mine.raw.toString());
    await dewi.waitForMessage((m) => m.id === mine.body.id, 10_000);
    const forgedEdit = await dewi.sendContent(owner.jid, { edit: { remoteJid: owner.jid, fromMe: false, id: mine.body.id }, text: 'diubah Dewi' });
    assert.deepEqual(await emitted(forgedEdit.id, 'edit'), { messageId: mine.body.id, text: 'diubah Dewi', applied: false });
    const forgedRevoke = await dewi.sendContent(owner.jid, { delete: { remoteJid: owner.jid, fromMe: false, id: mine.body.id } });
    assert.equal((await emitted(forgedRevoke.id, 'revoke'))['applied'], false);
    const untouched = (await get(mine.body.id)).body;
    assert.equal(untouched.text, 'dari gateway');
    assert.equal(untouched.edited, undefined);
    assert.equal(untouched.revoked, undefined);

    // Eka, in her own chat, points at Dewi's message.
    const dewis = await dewi.sendText(owner.jid, 'punya Dewi');
    await stored(dewis.id);
    const ekaEdit = await eka.sendContent(owner.jid, { edit: ownKey(dewis.id), text: 'diubah Eka' });
    assert.equal((await emitted(ekaEdit.id, 'edit'))['applied'], false);
    const ekaRevoke = await eka.sendContent(owner.jid, { delete: ownKey(dewis.id) });
    assert.equal((await emitted(ekaRevoke.id, 'revoke'))['applied'], false);
    const still = (await get(dewis.id)).body;
    assert.equal(still.text, 'punya Dewi');
    assert.equal(still.edited, undefined);
    assert.equal(still.revoked, undefined);
  });

  test("the API's own PATCH and DELETE write the same representation", async () => {
    const mine = await gw.api.call<{ id: string }>('POST', `/api/v1/sessions/${SESSION}/messages`, { to: dewi.jid, type: 'text', text: 'salah ketik' });
    assert.equal(mine.status, 201, mine.raw.toString());
    const sentAt = (await stored(mine.body.id)).timestamp;
    const patch = await gw.api.call('PATCH', `/api/v1/sessions/${SESSION}/messages/${mine.body.id}`, { text: 'sudah benar' });
    assert.equal(patch.status, 200, patch.raw.toString());
    const edited = (await get(mine.body.id)).body;
    assert.equal(edited.text, 'sudah benar');
    assert.equal(edited.edited, true);
    assert.ok(edited.editedAt !== undefined && Date.parse(edited.editedAt) >= Date.parse(sentAt));
    assert.deepEqual(edited.editHistory, [{ text: 'salah ketik', at: sentAt }]);
    const del = await gw.api.call('DELETE', `/api/v1/sessions/${SESSION}/messages/${mine.body.id}`);
    assert.equal(del.status, 200, del.raw.toString());
    const revoked = (await get(mine.body.id)).body;
    assert.equal(revoked.revoked, true);
    assert.ok(revoked.revokedAt !== undefined);
  });
  test('poll votes from a phone are decoded and tallied on the poll: newest vote per voter wins, [] takes it back', async () => {
    const tallyOf = (p: Stored) => p.poll?.tally?.map((t) => [t.option, t.count]);
    const votesOf = (p: Stored) => p.poll?.votes?.map((v) => [v.from, v.options]);
    // A multi-select poll the gateway sends to Dewi; Dewi votes, then changes her vote.
    const sent = await gw.api.call<{ id: string }>('POST', `/api/v1/sessions/${SESSION}/messages`, { to: dewi.jid, type: 'poll', name: 'Makan?', options: ['Nasi', 'Mie', 'Sate'], selectableCount: 0 });
    assert.equal(sent.status, 201, sent.raw.toString());
    const got = await dewi.waitForMessage((m) => m.id === sent.body.id, 10_000);
    const pollMessage = got.message as NonNullable<typeof got.message>;
    const v1 = await dewi.votePoll(owner.jid, { id: sent.body.id, creatorJid: owner.jid, message: pollMessage }, ['Nasi', 'Sate']);
    const v1Row = await stored(v1.id);
    assert.equal(v1Row.type, 'poll-vote');
    assert.deepEqual(v1Row.pollVote, { pollId: sent.body.id, options: ['Nasi', 'Sate'] });
    const afterV1 = await waitFor(
      async () => {
        const p = (await get(sent.body.id)).body;
        return p.poll?.votes !== undefined ? p : null;
      },
      { what: 'the vote on its poll', timeoutMs: 5000, intervalMs: 50 },
    );
    assert.deepEqual(votesOf(afterV1), [[dewi.jid, ['Nasi', 'Sate']]]);
    assert.deepEqual(tallyOf(afterV1), [
      ['Nasi', 1],
      ['Mie', 0],
      ['Sate', 1],
    ]);
    const v2 = await dewi.votePoll(owner.jid, { id: sent.body.id, creatorJid: owner.jid, message: pollMessage }, ['Mie']);
    assert.deepEqual((await stored(v2.id)).pollVote?.options, ['Mie']);
    const afterV2 = (await get(sent.body.id)).body;
    assert.deepEqual(votesOf(afterV2), [[dewi.jid, ['Mie']]]);
    assert.deepEqual(tallyOf(afterV2), [
      ['Nasi', 0],
      ['Mie', 1],
      ['Sate', 0],
    ]);
    // The SSE event and the webhook of a vote carry the decoded options.
    await waitFor(() => sseOf(v2.id).length > 0 && hooksOf(v2.id).length > 0, { what: `SSE + webhook of ${v2.id}`, timeoutMs: 20_000, intervalMs: 50 });
    assert.deepEqual((sseOf(v2.id)[0] as SseEvent).data['pollVote'], { pollId: sent.body.id, options: ['Mie'] });
    assert.deepEqual(((hooksOf(v2.id)[0] as Hit).body['data'] as Stored).pollVote, { pollId: sent.body.id, options: ['Mie'] });

    // Dewi's own poll: she votes, then takes her vote back.
    const own = await dewi.sendContent(owner.jid, { poll: { name: 'Warna?', values: ['Merah', 'Biru'], selectableCount: 1 } });
    await stored(own.id);
    const o1 = await dewi.votePoll(owner.jid, { id: own.id, creatorJid: dewi.jid, message: own.message }, ['Biru']);
    assert.deepEqual((await stored(o1.id)).pollVote?.options, ['Biru']);
    assert.deepEqual(votesOf((await get(own.id)).body), [[dewi.jid, ['Biru']]]);
    const o2 = await dewi.votePoll(owner.jid, { id: own.id, creatorJid: dewi.jid, message: own.message }, []);
    assert.deepEqual((await stored(o2.id)).pollVote?.options, []);
    const back = (await get(own.id)).body;
    assert.deepEqual(back.poll?.votes, []);
    assert.deepEqual(tallyOf(back), [
      ['Merah', 0],
      ['Biru', 0],
    ]);

    // A vote encrypted with another secret cannot be decoded: stored with the poll id only, the poll unchanged.
    const forged = await dewi.votePoll(owner.jid, { id: sent.body.id, creatorJid: owner.jid, message: { messageContextInfo: { messageSecret: randomBytes(32) } } }, ['Nasi']);
    assert.deepEqual((await stored(forged.id)).pollVote, { pollId: sent.body.id });
    assert.deepEqual(votesOf((await get(sent.body.id)).body), [[dewi.jid, ['Mie']]]);
  });
});
