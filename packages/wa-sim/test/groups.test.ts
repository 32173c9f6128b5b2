import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GroupMetadata } from '@whiskeysockets/baileys';
import type { SimPhone, WaSimulator } from '../src/index.ts';
import { pairWithQr, startSim, waitFor } from './helpers.ts';
import type { TestClient } from './helpers.ts';

// A real Baileys socket against the simulator's groups: the `w:g2` IQs it sends, the `w:gp2` notifications it
// parses, and sender-key group messages both ways.
describe('groups', () => {
  let sim: WaSimulator;
  let owner: SimPhone;
  let alice: SimPhone;
  let bob: SimPhone;
  let carol: SimPhone;
  let gw: TestClient;
  let group: GroupMetadata;
  before(async () => {
    sim = await startSim();
    owner = sim.createPhone({ name: 'Owner' });
    alice = sim.createPhone({ name: 'Alice' });
    bob = sim.createPhone({ name: 'Bob' });
    carol = sim.createPhone({ name: 'Carol' });
    gw = await pairWithQr(sim, owner);
  });
  after(async () => {
    await gw.end();
    await sim.close();
  });

  it('create: the creator is superadmin, every member phone gets the create notification', async () => {
    const sock = gw.sock!;
    group = await sock.groupCreate('Team', [alice.jid, bob.jid]);
    assert.match(group.id, /@g\.us$/);
    assert.equal(group.subject, 'Team');
    assert.equal(group.participants.length, 3);
    assert.equal(group.participants.find(p => p.id === owner.jid)?.admin, 'superadmin');
    for (const p of [alice, bob]) await p.waitForGroupNotice(n => n.group === group.id && n.type === 'create');
  });

  it('participants, subject and announce mode: members see each change; the socket gets the result per participant', async () => {
    const sock = gw.sock!;
    const added = await sock.groupParticipantsUpdate(group.id, [carol.jid, '19999999999@s.whatsapp.net'], 'add');
    assert.deepEqual(added.map(r => r.status), ['200', '404']);
    await carol.waitForGroupNotice(n => n.group === group.id && n.type === 'add');
    await sock.groupParticipantsUpdate(group.id, [alice.jid], 'promote');
    await bob.waitForGroupNotice(n => n.type === 'promote' && n.participants.includes(alice.jid));
    await sock.groupUpdateSubject(group.id, 'Team 2');
    await carol.waitForGroupNotice(n => n.type === 'subject' && n.attrs.subject === 'Team 2');
    await sock.groupSettingUpdate(group.id, 'announcement');
    await bob.waitForGroupNotice(n => n.type === 'announcement');
    await assert.rejects(bob.sendGroupText(group.id, 'not allowed'), /forbidden/);
    await sock.groupSettingUpdate(group.id, 'not_announcement');
    await sock.groupParticipantsUpdate(group.id, [carol.jid], 'remove');
    await carol.waitForGroupNotice(n => n.type === 'remove' && n.participants.includes(carol.jid));
    const meta = await sock.groupMetadata(group.id);
    assert.equal(meta.subject, 'Team 2');
    assert.equal(meta.participants.find(p => p.id === alice.jid)?.admin, 'admin');
    assert.equal(meta.participants.some(p => p.id === carol.jid), false);
  });

  it('group picture: set by a member (group not locked), every member is told, the URL serves it', async () => {
    const sock = gw.sock!;
    const jpeg = Buffer.from('not really a jpeg');
    await sock.query({ tag: 'iq', attrs: { to: 's.whatsapp.net', type: 'set', xmlns: 'w:profile:picture', target: group.id }, content: [{ tag: 'picture', attrs: { type: 'image' }, content: jpeg }] });
    await alice.waitForGroupNotice(n => n.group === group.id && n.type === 'picture');
    const url = await sock.profilePictureUrl(group.id, 'image');
    assert.ok(url);
    sim.trustMediaCertificate();
    assert.deepEqual(Buffer.from(await (await fetch(url)).arrayBuffer()), jpeg);
  });

  it('a member that is not an admin is refused with 403; a non-member with 401; an unknown group with 404', async () => {
    const g = sim.groups.get(group.id)!;
    assert.throws(() => sim.groups.setting(g, bob.account, 'locked'), /forbidden/);
    assert.throws(() => sim.groups.participantsAction(g, carol.account, 'add', [carol.jid]), /not-authorized/);
    await assert.rejects(gw.sock!.groupMetadata('123@g.us'), (e: { data?: unknown }) => e.data === 404);
  });

  it('group messages: the socket encrypts with its sender key and every member phone decrypts; a phone sends back with participant set', async () => {
    const sock = gw.sock!;
    const sent = await sock.sendMessage(group.id, { text: 'hello group' });
    for (const p of [alice, bob]) {
      const got = await p.waitForMessage(m => m.id === sent!.key.id);
      assert.equal(got.error, undefined);
      assert.equal(got.message?.conversation ?? got.message?.extendedTextMessage?.text, 'hello group');
      assert.equal(got.group, group.id);
    }
    const second = await sock.sendMessage(group.id, { text: 'again' });
    const again = await alice.waitForMessage(m => m.id === second!.key.id);
    assert.equal(again.message?.conversation ?? again.message?.extendedTextMessage?.text, 'again');

    const reply = await alice.sendGroupText(group.id, 'hi from alice');
    const inbound = await waitFor('group upsert', () => gw.received(m => m.key.id === reply.id));
    assert.equal(inbound.key.remoteJid, group.id);
    assert.equal(inbound.key.participant, alice.jid);
    assert.equal(inbound.message?.conversation, 'hi from alice');
    const next = await alice.sendGroupText(group.id, 'second from alice');
    const inbound2 = await waitFor('second group upsert', () => gw.received(m => m.key.id === next.id));
    assert.equal(inbound2.message?.conversation, 'second from alice');
  });

  it('a member that lost the sender key sends a retry receipt; the socket sends the message again and the member reads it', async () => {
    const sock = gw.sock!;
    assert.ok((await bob.forgetGroupSenderKeys(group.id)) > 0);
    const sent = await sock.sendMessage(group.id, { text: 'can you read this?' });
    const id = sent!.key.id!;
    await bob.waitForMessage(m => m.id === id && m.error !== undefined);
    const ok = await bob.waitForMessage(m => m.id === id && m.error === undefined);
    assert.equal(ok.message?.conversation ?? ok.message?.extendedTextMessage?.text, 'can you read this?');
    // Baileys answers a group retry by sending the message again with a fresh sender-key distribution (the
    // server fans it out like any group message): members that could read it get a duplicate id, as on WhatsApp
    assert.ok(alice.received().some(m => m.id === id && m.error === undefined));
  });

  it('metadata queries are counted and rate limited like the real service (429 rate-overlimit)', async () => {
    const sock = gw.sock!;
    const before = sim.snapshot().groupMetadataQueries;
    sim.groups.metadataRateLimit = { max: 3, windowMs: 60_000 };
    let refused: unknown;
    for (let i = 0; i < 8 && refused === undefined; i++) await sock.groupMetadata(group.id).catch((e: unknown) => (refused = e));
    assert.ok(sim.snapshot().groupMetadataQueries > before);
    assert.equal((refused as { data?: unknown } | undefined)?.data, 429);
    assert.ok(sim.snapshot().groupMetadataRateLimited >= 1);
    sim.groups.metadataRateLimit = { max: 30, windowMs: 60_000 };
  });

  it('invite code with approval: the join request reaches the admin socket, approval makes the phone a member', async () => {
    const sock = gw.sock!;
    await sock.groupJoinApprovalMode(group.id, 'on');
    const code = await sock.groupInviteCode(group.id);
    assert.ok(code);
    const joined = carol.joinGroupByCode(code);
    assert.equal(joined.pending, true);
    const requests = await sock.groupRequestParticipantsList(group.id);
    assert.equal(requests[0]?.jid, carol.jid);
    const res = await sock.groupRequestParticipantsUpdate(group.id, [carol.jid], 'approve');
    assert.equal(res[0]?.status, '200');
    await carol.waitForGroupNotice(n => n.type === 'add' && n.participants.includes(carol.jid));
    assert.ok(sim.groups.isMember(sim.groups.get(group.id)!, carol.account));
    const revoked = await sock.groupRevokeInvite(group.id);
    assert.notEqual(revoked, code);
    assert.throws(() => bob.joinGroupByCode(code), /item-not-found/);
  });

  it('communities: create with an announcement group, link and unlink a group', async () => {
    const sock = gw.sock!;
    const community = await sock.communityCreate('Neighbours', 'all of us');
    assert.ok(community);
    const sub = await sock.groupCreate('Street', [bob.jid]);
    await sock.communityLinkGroup(sub.id, community.id);
    const linked = await sock.communityFetchLinkedGroups(community.id);
    assert.ok(linked.linkedGroups.some(g => g.id === sub.id));
    assert.equal((await sock.groupMetadata(sub.id)).linkedParent, community.id);
    await sock.communityUnlinkGroup(sub.id, community.id);
    const after = await sock.communityFetchLinkedGroups(community.id);
    assert.equal(after.linkedGroups.some(g => g.id === sub.id), false);
    assert.equal(after.linkedGroups.length, 1, 'the announcement group stays');
  });
});
