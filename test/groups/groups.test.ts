// Groups end to end (issue #16, docs/groups.md): a gateway session against the simulator's groups. The REST API
// drives the session; simulated phones are the other members and see every change; the group-update webhooks
// and SSE events arrive; members' messages are stored with their author; group sends use the metadata cache.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { proto } from '@whiskeysockets/baileys';
import { waitFor } from '../harness/index.ts';
import { mapLimit } from '../sessions/helpers.ts';
import { messagingSuite } from '../messaging/fixture.ts';
import type { Hit } from '../messaging/fixture.ts';

const SESSION = 'groups-e2e';

interface Group {
  id: string;
  subject: string;
  announce: boolean;
  joinApproval: boolean;
  isCommunity: boolean;
  participants: { jid: string; role: string }[];
  admins: string[];
  community?: string;
}

interface Update {
  id: string;
  group: string;
  kind: string;
  action?: string;
  participants?: string[];
  changes?: Record<string, unknown>;
  me?: string;
  author?: string;
}

interface ErrorBody {
  error: { code: string; message: string };
}

describe('groups', () => {
  const suite = messagingSuite(SESSION, [
    { number: '15550100001', name: 'Owner' },
    { number: '15550100002', name: 'Alice' },
    { number: '15550100003', name: 'Bob' },
    { number: '15550100004', name: 'Carol' },
    { number: '15550100005', name: 'Dave' },
    { number: '15550100006', name: 'Eve' },
    { number: '15550100007', name: 'Frank' },
  ]);
  const base = `/api/v1/sessions/${SESSION}`;
  let group: Group;
  const updatesOf = (groupId: string): { hit: Hit; data: Update }[] =>
    suite.hits.filter((h) => h.body['type'] === 'group-update' && (h.body['data'] as Update).group === groupId).map((hit) => ({ hit, data: hit.body['data'] as Update }));
  const waitUpdate = (groupId: string, pred: (u: Update) => boolean, what: string) =>
    waitFor(() => updatesOf(groupId).find((u) => pred(u.data)) ?? null, { what: `group-update webhook: ${what}`, timeoutMs: 20_000, intervalMs: 50 });
  const phone = (i: number) => {
    const p = suite.phones[i];
    assert.ok(p);
    return p;
  };

  test('create, rename, add, remove, promote, announce: every member phone sees each change, and the webhooks arrive', async () => {
    const [owner, alice, bob, carol, dave] = [phone(0), phone(1), phone(2), phone(3), phone(4)];
    const created = await suite.gw.api.post<Group>(`${base}/groups`, { subject: 'Team', participants: [alice.jid, bob.jid, carol.jid] });
    assert.equal(created.status, 201, created.raw.toString());
    group = created.body;
    assert.match(group.id, /@g\.us$/);
    assert.equal(group.participants.length, 4);
    assert.deepEqual(group.admins, [owner.jid]);
    for (const p of [alice, bob, carol]) await p.waitForGroupNotice((n) => n.group === group.id && n.type === 'create');

    const renamed = await suite.gw.api.call<Group>('PATCH', `${base}/groups/${group.id}`, { subject: 'Team 2' });
    assert.equal(renamed.status, 200, renamed.raw.toString());
    assert.equal(renamed.body.subject, 'Team 2');
    for (const p of [alice, bob, carol]) await p.waitForGroupNotice((n) => n.group === group.id && n.type === 'subject' && n.attrs['subject'] === 'Team 2');

    const add = await suite.gw.api.post<{ results: { jid: string; ok: boolean }[] }>(`${base}/groups/${group.id}/participants`, { action: 'add', participants: [dave.jid] });
    assert.equal(add.status, 200, add.raw.toString());
    assert.deepEqual(add.body.results.map((r) => [r.jid, r.ok]), [[dave.jid, true]]);
    for (const p of [alice, dave]) await p.waitForGroupNotice((n) => n.group === group.id && n.type === 'add' && n.participants.includes(dave.jid));

    const remove = await suite.gw.api.post<{ results: { ok: boolean }[] }>(`${base}/groups/${group.id}/participants`, { action: 'remove', participants: [carol.jid] });
    assert.equal(remove.body.results[0]?.ok, true, remove.raw.toString());
    for (const p of [carol, bob]) await p.waitForGroupNotice((n) => n.group === group.id && n.type === 'remove' && n.participants.includes(carol.jid));

    const promote = await suite.gw.api.post<{ results: { ok: boolean }[] }>(`${base}/groups/${group.id}/participants`, { action: 'promote', participants: [alice.jid] });
    assert.equal(promote.body.results[0]?.ok, true, promote.raw.toString());
    for (const p of [alice, bob, dave]) await p.waitForGroupNotice((n) => n.group === group.id && n.type === 'promote' && n.participants.includes(alice.jid));

    const announce = await suite.gw.api.call<Group>('PATCH', `${base}/groups/${group.id}`, { settings: { announce: true } });
    assert.equal(announce.status, 200, announce.raw.toString());
    assert.equal(announce.body.announce, true);
    for (const p of [alice, bob, dave]) await p.waitForGroupNotice((n) => n.group === group.id && n.type === 'announcement');
    await assert.rejects(bob.sendGroupText(group.id, 'members may not post now'), /forbidden/);

    const now = await suite.gw.api.get<Group>(`${base}/groups/${group.id}`);
    assert.equal(now.status, 200);
    assert.deepEqual(new Set(now.body.participants.map((p) => p.jid)), new Set([owner.jid, alice.jid, bob.jid, dave.jid]));
    assert.deepEqual(new Set(now.body.admins), new Set([owner.jid, alice.jid]));

    // The webhooks: one per change, signed, with ids derived from WhatsApp's notification ids.
    await waitUpdate(group.id, (u) => u.kind === 'settings' && u.changes?.['subject'] === 'Team 2', 'subject');
    await waitUpdate(group.id, (u) => u.kind === 'participants' && u.action === 'add' && (u.participants ?? []).includes(dave.jid), 'add');
    await waitUpdate(group.id, (u) => u.kind === 'participants' && u.action === 'remove' && (u.participants ?? []).includes(carol.jid), 'remove');
    await waitUpdate(group.id, (u) => u.kind === 'participants' && u.action === 'promote', 'promote');
    const ann = await waitUpdate(group.id, (u) => u.kind === 'settings' && u.changes?.['announce'] === true, 'announce');
    assert.match(String(ann.hit.body['id']), new RegExp(`^grp_${SESSION}_${group.id.replace('.', '\\.')}_`));
    assert.equal(ann.hit.headers['webhook-id'], ann.hit.body['id']);
    assert.ok(ann.hit.headers['webhook-signature']);
    const ids = updatesOf(group.id).map((u) => u.hit.body['id']);
    assert.equal(new Set(ids).size, ids.length, 'each notification is one webhook');
    await waitFor(() => suite.sse.events.some((e) => e.type === 'group-update' && e.data['group'] === group.id && e.data['kind'] === 'participants'), { what: 'SSE group-update', timeoutMs: 5000 });

    const off = await suite.gw.api.call<Group>('PATCH', `${base}/groups/${group.id}`, { settings: { announce: false } });
    assert.equal(off.body.announce, false, off.raw.toString());
  });

  test('a member sends text, image and a poll: each stored once with its author; three members vote and the tally is right', async () => {
    const [owner, alice, bob, dave] = [phone(0), phone(1), phone(2), phone(4)];
    const text = await alice.sendGroupText(group.id, 'hello team');
    const image = await alice.sendGroupContent(group.id, { image: Buffer.from('fake png bytes'), mimetype: 'image/png', caption: 'look' });
    const poll = await alice.sendGroupContent(group.id, { poll: { name: 'Lunch?', values: ['Nasi', 'Mie', 'Sate'], selectableCount: 1 } });
    for (const [sent, type] of [
      [text, 'text'],
      [image, 'image'],
      [poll, 'poll'],
    ] as const) {
      const row = await suite.stored<{ chat: string; from: string; participant?: string; fromMe: boolean; type: string }>(sent.id);
      assert.equal(row.chat, group.id);
      assert.equal(row.from, alice.jid);
      assert.equal(row.participant, alice.jid);
      assert.equal(row.fromMe, false);
      assert.equal(row.type, type);
      await waitFor(() => suite.hooksOf(sent.id).length > 0, { what: `messages webhook of ${sent.id}`, timeoutMs: 20_000 });
      assert.equal(suite.hooksOf(sent.id).length, 1);
    }
    // the other members got them too
    await bob.waitForMessage((m) => m.id === poll.id);
    const pollMessage = poll.message;
    const ref = { id: poll.id, creatorJid: alice.jid, message: pollMessage };
    await alice.voteGroupPoll(group.id, ref, ['Nasi']);
    await bob.voteGroupPoll(group.id, ref, ['Sate']);
    await dave.voteGroupPoll(group.id, ref, ['Nasi']);
    const tallied = await waitFor(
      async () => {
        const r = await suite.gw.api.get<{ poll?: { votes?: unknown[]; tally?: { option: string; count: number }[] } }>(`${base}/messages/${poll.id}`);
        return (r.body.poll?.votes?.length ?? 0) >= 3 ? r.body : null;
      },
      { what: 'three votes on the poll', timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.deepEqual(tallied.poll?.tally?.map((t) => [t.option, t.count]), [
      ['Nasi', 2],
      ['Mie', 0],
      ['Sate', 1],
    ]);

    // The session replies quoting Alice's message and mentions Alice and Bob: each phone sees both.
    const reply = await suite.gw.api.post<{ id: string }>(`${base}/messages`, {
      to: group.id,
      type: 'text',
      text: `@${alice.number} @${bob.number} noted`,
      quotedId: text.id,
      mentions: [alice.jid, bob.jid],
    });
    assert.equal(reply.status, 201, reply.raw.toString());
    for (const p of [alice, bob, dave]) {
      const got = await p.waitForMessage((m) => m.id === reply.body.id);
      assert.equal(got.error, undefined);
      const ctx = (got.message?.extendedTextMessage as proto.Message.IExtendedTextMessage | undefined)?.contextInfo;
      assert.deepEqual([...(ctx?.mentionedJid ?? [])].sort(), [alice.jid, bob.jid].sort());
      assert.equal(ctx?.stanzaId, text.id);
      assert.equal(ctx?.participant, alice.jid);
    }
    void owner;
  });

  test('description, ephemeral timer, invite revoke, picture, list, media and reactions in the group, leave', async () => {
    const [owner, alice, bob] = [phone(0), phone(1), phone(2)];
    const patched = await suite.gw.api.call<Group & { description?: string; ephemeralSeconds?: number }>('PATCH', `${base}/groups/${group.id}`, { description: 'Our team', ephemeralSeconds: 86_400 });
    assert.equal(patched.status, 200, patched.raw.toString());
    assert.equal(patched.body.description, 'Our team');
    assert.equal(patched.body.ephemeralSeconds, 86_400);
    await bob.waitForGroupNotice((n) => n.group === group.id && n.type === 'description');
    await bob.waitForGroupNotice((n) => n.group === group.id && n.type === 'ephemeral' && n.attrs['expiration'] === '86400');
    await waitUpdate(group.id, (u) => u.changes?.['ephemeralSeconds'] === 86_400, 'ephemeral');
    await waitUpdate(group.id, (u) => u.changes?.['description'] === 'Our team', 'description');
    const offTimer = await suite.gw.api.call<{ ephemeralSeconds?: number }>('PATCH', `${base}/groups/${group.id}`, { ephemeralSeconds: 0 });
    assert.equal(offTimer.body.ephemeralSeconds, undefined, offTimer.raw.toString());

    const code = (await suite.gw.api.get<{ code: string }>(`${base}/groups/${group.id}/invite-code`)).body.code;
    const revoked = await suite.gw.api.post<{ code: string }>(`${base}/groups/${group.id}/invite-code/revoke`);
    assert.equal(revoked.status, 200, revoked.raw.toString());
    assert.notEqual(revoked.body.code, code);
    await waitUpdate(group.id, (u) => u.changes?.['inviteCodeChanged'] === true, 'invite code changed');

    // Group picture: a 1x1 PNG, resized by Baileys to a JPEG; members are told; the URL serves the JPEG.
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
    const setPic = await suite.gw.api.call('PUT', `${base}/groups/${group.id}/picture`, { base64: png });
    assert.equal(setPic.status, 200, setPic.raw.toString());
    await bob.waitForGroupNotice((n) => n.group === group.id && n.type === 'picture');
    const pic = await suite.gw.api.get<{ url?: string }>(`${base}/groups/${group.id}/picture`);
    assert.ok(pic.body.url, pic.raw.toString());
    const stored = suite.sim.media.get(new URL(pic.body.url).pathname);
    assert.deepEqual([...(stored ?? Buffer.alloc(0)).subarray(0, 2)], [0xff, 0xd8], 'a JPEG');
    await waitUpdate(group.id, (u) => u.changes?.['picture'] === 'set', 'picture set');
    const notImage = await suite.gw.api.call<ErrorBody>('PUT', `${base}/groups/${group.id}/picture`, { base64: Buffer.from('not an image').toString('base64') });
    assert.equal(notImage.status, 400, notImage.raw.toString());
    const delPic = await suite.gw.api.call('DELETE', `${base}/groups/${group.id}/picture`);
    assert.equal(delPic.status, 200, delPic.raw.toString());
    await bob.waitForGroupNotice((n) => n.group === group.id && n.type === 'picture-removed');
    assert.deepEqual((await suite.gw.api.get(`${base}/groups/${group.id}/picture`)).body, {});

    const list = await suite.gw.api.get<{ groups: Group[] }>(`${base}/groups`);
    assert.equal(list.status, 200, list.raw.toString());
    assert.ok(list.body.groups.some((g) => g.id === group.id && g.subject === 'Team 2'));

    // The session sends an image to the group; a member reacts to it; the reaction is listed on the message.
    const img = await suite.gw.api.post<{ id: string }>(`${base}/messages`, { to: group.id, type: 'image', media: { base64: Buffer.from('png bytes').toString('base64') }, mimetype: 'image/png', caption: 'photo' });
    assert.equal(img.status, 201, img.raw.toString());
    const seen = await alice.waitForMessage((m) => m.id === img.body.id);
    assert.equal(seen.message?.imageMessage?.caption, 'photo');
    assert.equal((await alice.downloadMedia(seen.message as proto.IMessage)).toString(), 'png bytes');
    await bob.sendGroupMessage(group.id, { reactionMessage: { key: { remoteJid: group.id, fromMe: false, id: img.body.id, participant: owner.jid }, text: '🔥', senderTimestampMs: Date.now() } });
    const reacted = await waitFor(
      async () => {
        const r = await suite.gw.api.get<{ reactions?: { from: string; emoji: string }[] }>(`${base}/messages/${img.body.id}`);
        return r.body.reactions?.length ? r.body.reactions : null;
      },
      { what: 'the reaction on the image', timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.deepEqual(reacted.map((r) => [r.from, r.emoji]), [[bob.jid, '🔥']]);

    // Leave a group: its members see it; afterwards the session is no member.
    const temp = (await suite.gw.api.post<Group>(`${base}/groups`, { subject: 'Temp', participants: [bob.jid] })).body;
    const left = await suite.gw.api.post(`${base}/groups/${temp.id}/leave`);
    assert.equal(left.status, 200, left.raw.toString());
    await bob.waitForGroupNotice((n) => n.group === temp.id && n.type === 'remove' && n.participants.includes(owner.jid));
    const gone = await suite.gw.api.get<ErrorBody>(`${base}/groups/${temp.id}`);
    assert.equal(gone.status, 403, gone.raw.toString());
    assert.equal(gone.body.error.code, 'NOT_GROUP_MEMBER');
    await waitUpdate(temp.id, (u) => u.kind === 'participants' && u.me === 'removed', 'the session left');
  });

  test('200 sends to one group in a row: at most one metadata query after warm-up, no rate limit; after a participant change the next send reaches the new member', async (t: TestContext) => {
    const [alice, eve] = [phone(1), phone(5)];
    // like WhatsApp, refuse a gateway that queries metadata for every send
    suite.sim.groups.metadataRateLimit = { max: 10, windowMs: 600_000 };
    t.after(() => {
      suite.sim.groups.metadataRateLimit = { max: 30, windowMs: 60_000 };
    });
    const warm = await suite.gw.api.post(`${base}/messages`, { to: group.id, type: 'text', text: 'warm-up' });
    assert.equal(warm.status, 201, warm.raw.toString());
    const before = suite.sim.snapshot();
    // one after another, a few in flight at a time (the session's governor orders them)
    await mapLimit(Array.from({ length: 200 }, (_, i) => i), 4, async (i) => {
      const r = await suite.gw.api.post(`${base}/messages`, { to: group.id, type: 'text', text: `burst ${i}` });
      assert.equal(r.status, 201, `send ${i}: ${r.raw.toString()}`);
    });
    const after = suite.sim.snapshot();
    assert.ok(after.groupMetadataQueries - before.groupMetadataQueries <= 1, `metadata queries during 200 sends: ${after.groupMetadataQueries - before.groupMetadataQueries}`);
    assert.equal(after.groupMetadataRateLimited, before.groupMetadataRateLimited);
    const textOf = (m: { message: proto.IMessage | undefined }) => m.message?.conversation ?? m.message?.extendedTextMessage?.text;
    // every one reached a member (four were in flight at a time, so they may arrive in any order)
    const bursts = () => new Set(alice.received().filter((m) => m.group === group.id && m.error === undefined && textOf(m)?.startsWith('burst ')).map((m) => textOf(m)));
    await waitFor(() => bursts().size === 200, { what: 'all 200 group messages at a member', timeoutMs: 30_000, intervalMs: 100 });

    const add = await suite.gw.api.post<{ results: { ok: boolean }[] }>(`${base}/groups/${group.id}/participants`, { action: 'add', participants: [eve.jid] });
    assert.equal(add.body.results[0]?.ok, true, add.raw.toString());
    const next = await suite.gw.api.post<{ id: string }>(`${base}/messages`, { to: group.id, type: 'text', text: 'welcome eve' });
    assert.equal(next.status, 201, next.raw.toString());
    const got = await eve.waitForMessage((m) => m.id === next.body.id);
    assert.equal(got.error, undefined);
    assert.equal(textOf(got), 'welcome eve');
  });

  test('join by invite code with approval: the request arrives as a webhook, is approved by API, and the phone becomes a member', async () => {
    const frank = phone(6);
    const on = await suite.gw.api.call<Group>('PATCH', `${base}/groups/${group.id}`, { settings: { joinApproval: true } });
    assert.equal(on.body.joinApproval, true, on.raw.toString());
    const invite = await suite.gw.api.get<{ code: string; link: string }>(`${base}/groups/${group.id}/invite-code`);
    assert.equal(invite.status, 200, invite.raw.toString());
    assert.equal(invite.body.link, `https://chat.whatsapp.com/${invite.body.code}`);
    assert.equal(frank.joinGroupByCode(invite.body.code).pending, true);
    await waitUpdate(group.id, (u) => u.kind === 'join-request' && (u.participants ?? []).includes(frank.jid), 'join request');
    const requests = await suite.gw.api.get<{ requests: { jid: string }[] }>(`${base}/groups/${group.id}/requests`);
    assert.deepEqual(requests.body.requests.map((r) => r.jid), [frank.jid]);
    const approve = await suite.gw.api.post<{ results: { jid: string; ok: boolean }[] }>(`${base}/groups/${group.id}/requests`, { action: 'approve', participants: [frank.jid] });
    assert.deepEqual(approve.body.results.map((r) => [r.jid, r.ok]), [[frank.jid, true]]);
    await frank.waitForGroupNotice((n) => n.group === group.id && n.type === 'add' && n.participants.includes(frank.jid));
    const g = await suite.gw.api.get<Group>(`${base}/groups/${group.id}`);
    assert.ok(g.body.participants.some((p) => p.jid === frank.jid));
    const again = await suite.gw.api.post<{ results: { ok: boolean; error?: string }[] }>(`${base}/groups/${group.id}/requests`, { action: 'approve', participants: [frank.jid] });
    assert.deepEqual(again.body.results.map((r) => [r.ok, r.error]), [[false, 'NOT_FOUND']]);
  });

  test('a community with two linked groups; unlink one', async () => {
    const bob = phone(2);
    const c = await suite.gw.api.post<Group>(`${base}/communities`, { subject: 'Neighbours', description: 'our street' });
    assert.equal(c.status, 201, c.raw.toString());
    assert.equal(c.body.isCommunity, true);
    const g1 = (await suite.gw.api.post<Group>(`${base}/groups`, { subject: 'North', participants: [bob.jid] })).body;
    const g2 = (await suite.gw.api.post<Group>(`${base}/groups`, { subject: 'South', participants: [bob.jid] })).body;
    for (const g of [g1, g2]) {
      const link = await suite.gw.api.call<Group>('PUT', `${base}/communities/${c.body.id}/groups/${g.id}`);
      assert.equal(link.status, 200, link.raw.toString());
      assert.equal(link.body.community, c.body.id);
    }
    const linked = await suite.gw.api.get<{ groups: { id: string }[] }>(`${base}/communities/${c.body.id}/groups`);
    const ids = linked.body.groups.map((g) => g.id);
    assert.ok(ids.includes(g1.id) && ids.includes(g2.id), JSON.stringify(ids));
    assert.equal(ids.length, 3, 'the two groups and the announcement group');
    const unlink = await suite.gw.api.call('DELETE', `${base}/communities/${c.body.id}/groups/${g1.id}`);
    assert.equal(unlink.status, 200, unlink.raw.toString());
    const after = await suite.gw.api.get<{ groups: { id: string }[] }>(`${base}/communities/${c.body.id}/groups`);
    assert.deepEqual(after.body.groups.map((g) => g.id).filter((id) => id !== g2.id).length, 1);
    assert.equal(after.body.groups.some((g) => g.id === g1.id), false);
    assert.equal((await suite.gw.api.get<Group>(`${base}/groups/${g1.id}`)).body.community, undefined);
  });

  test('phones act on their own: a phone creates a group with the session, adds it to another, renames; the session is told and can send there', async () => {
    const [owner, bob, dave] = [phone(0), phone(2), phone(4)];
    const created = bob.createGroup('Bobs plans', [owner.jid, dave.jid]);
    const hello = await waitUpdate(created, (u) => u.kind === 'created', 'created by a phone');
    assert.equal(hello.data.me, 'added');
    assert.equal(hello.data.changes?.['subject'], 'Bobs plans');
    assert.equal(hello.data.author, bob.jid);
    const other = dave.createGroup('Daves', [bob.jid]);
    assert.deepEqual(dave.groupParticipants(other, 'add', [owner.jid]), [{ jid: owner.jid }]);
    const added = await waitUpdate(other, (u) => u.kind === 'participants' && u.action === 'add', 'session added by a phone');
    assert.equal(added.data.me, 'added');
    bob.setGroupSubject(created, 'Bobs plans 2');
    await waitUpdate(created, (u) => u.changes?.['subject'] === 'Bobs plans 2', 'renamed by a phone');
    const sent = await suite.gw.api.post<{ id: string }>(`${base}/messages`, { to: other, type: 'text', text: 'thanks for adding me' });
    assert.equal(sent.status, 201, sent.raw.toString());
    await dave.waitForMessage((m) => m.id === sent.body.id && m.error === undefined);
    const list = await suite.gw.api.get<{ groups: Group[] }>(`${base}/groups`);
    assert.ok(list.body.groups.some((g) => g.id === created && g.subject === 'Bobs plans 2'));
    // removed by a phone: the session hears of it
    dave.groupParticipants(other, 'remove', [owner.jid]);
    const removed = await waitUpdate(other, (u) => u.kind === 'participants' && u.action === 'remove', 'session removed by a phone');
    assert.equal(removed.data.me, 'removed');
  });

  test('bad input gets a 4xx with a clear code: not a member, not an admin, unknown group, malformed JIDs, too many participants', async () => {
    const [owner, bob, carol, dave] = [phone(0), phone(2), phone(3), phone(4)];
    const expectError = async (r: Promise<{ status: number; body: unknown; raw: Buffer }>, status: number, code: string, message?: RegExp) => {
      const res = await r;
      assert.equal(res.status, status, res.raw.toString());
      const body = res.body as ErrorBody;
      assert.equal(body.error.code, code, res.raw.toString());
      if (message) assert.match(body.error.message, message);
    };
    // Bob's group with the session as a plain member; Carol's group without the session.
    const bobs = suite.sim.groups.create(bob.account, 'Bobs', [owner.account, dave.account]);
    const carols = suite.sim.groups.create(carol.account, 'Carols', [dave.account]);
    await expectError(suite.gw.api.post(`${base}/groups/${bobs.jid}/participants`, { action: 'remove', participants: [dave.jid] }), 403, 'NOT_GROUP_ADMIN');
    await expectError(suite.gw.api.call('PATCH', `${base}/groups/${bobs.jid}`, { settings: { locked: true } }), 403, 'NOT_GROUP_ADMIN');
    await expectError(suite.gw.api.get(`${base}/groups/${bobs.jid}/invite-code`), 403, 'NOT_GROUP_ADMIN');
    await expectError(suite.gw.api.get(`${base}/groups/${carols.jid}`), 403, 'NOT_GROUP_MEMBER');
    await expectError(suite.gw.api.post(`${base}/messages`, { to: carols.jid, type: 'text', text: 'let me in' }), 403, 'NOT_GROUP_MEMBER');
    await expectError(suite.gw.api.get(`${base}/groups/120363999999999999@g.us`), 404, 'GROUP_NOT_FOUND');
    await expectError(suite.gw.api.post(`${base}/groups/join`, { code: 'NoSuchInviteCode1' }), 404, 'GROUP_NOT_FOUND');
    await expectError(suite.gw.api.get(`${base}/groups/not-a-group`), 400, 'VALIDATION_FAILED', /params\.group/);
    await expectError(suite.gw.api.get(`${base}/groups/12345@s.whatsapp.net`), 400, 'VALIDATION_FAILED', /group JID/);
    await expectError(suite.gw.api.post(`${base}/groups`, { subject: 'x', participants: ['hello@example.com'] }), 400, 'INVALID_PHONE', /participants\.0/);
    await expectError(suite.gw.api.post(`${base}/groups`, { subject: '', participants: [bob.jid] }), 400, 'VALIDATION_FAILED', /subject/);
    const many = Array.from({ length: 1024 }, (_, i) => `1555${String(i).padStart(7, '0')}@s.whatsapp.net`);
    await expectError(suite.gw.api.post(`${base}/groups`, { subject: 'huge', participants: many }), 400, 'VALIDATION_FAILED', /at most 1023 participants/);
    await expectError(suite.gw.api.post(`${base}/groups/${group.id}/participants`, { action: 'kick', participants: [bob.jid] }), 400, 'VALIDATION_FAILED', /action/);
    await expectError(suite.gw.api.call('PATCH', `${base}/groups/${group.id}`, {}), 400, 'VALIDATION_FAILED', /at least one/);
    await expectError(suite.gw.api.call('PATCH', `${base}/groups/${group.id}`, { ephemeralSeconds: 5 }), 400, 'VALIDATION_FAILED', /ephemeralSeconds/);
    await expectError(suite.gw.api.get(`/api/v1/sessions/no-such-session/groups`), 404, 'SESSION_NOT_FOUND');
    // an unknown number is refused per participant, not for the whole call
    const unknown = await suite.gw.api.post<{ results: { ok: boolean; error?: string }[] }>(`${base}/groups/${group.id}/participants`, { action: 'add', participants: ['19999999999@s.whatsapp.net'] });
    assert.equal(unknown.status, 200, unknown.raw.toString());
    assert.deepEqual(unknown.body.results.map((r) => [r.ok, r.error]), [[false, 'NOT_FOUND']]);
    // still serving
    assert.equal((await suite.gw.api.get(`${base}/groups/${group.id}`)).status, 200);
  });
});
