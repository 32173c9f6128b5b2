/**
 * The group and community REST API (docs/groups.md): `/api/v1/sessions/:id/groups…` and `…/communities…`. Every
 * call needs the session's socket, so it goes to the owning shard (IPC `group.action`), or is forwarded to the
 * host that owns the session. WhatsApp's refusals come back as NOT_GROUP_MEMBER, NOT_GROUP_ADMIN,
 * GROUP_NOT_FOUND, GROUP_REQUEST_REFUSED or WA_RATE_LIMITED (packages/shard/src/groups/actions.ts).
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { GatewayError, blobKeys, createGroupSchemas, groupJidSchema } from '@wagw/shared';
import type { BlobStore, GroupAction, GroupActionResult, HostRegistry, MessagingConfig } from '@wagw/shared';
import type { SessionManager } from '../sessions/manager.ts';
import type { ShardSupervisor } from '../supervisor.ts';
import type { AppContext } from '../app.ts';
import { defineRoute } from './define-route.ts';
import type { RouteDefinition } from './define-route.ts';
import { createForwarder } from './forward.ts';
import { errorSchema, idParams } from './schemas.ts';

export interface GroupRoutesDeps {
  manager: SessionManager;
  shards: Pick<ShardSupervisor, 'call'>;
  messaging: Pick<MessagingConfig, 'defaultCountry'>;
  /** A group picture goes to the shard through the blob store (`uploads/<session>/<id>`), never over IPC. */
  blobs: Pick<BlobStore, 'put' | 'delete'>;
  /** Multi-host: calls for a session another host owns are forwarded there. Absent: 409 SESSION_NOT_CONNECTED. */
  hosts?: HostRegistry;
  /** CLUSTER_SECRET: forwarded calls are signed with it (security/forwarded.ts). */
  clusterSecret?: string | undefined;
}

const SESSIONS = '/api/v1/sessions';
/** A group call waits for WhatsApp's answer (one or a few IQs). */
const GROUP_CALL_TIMEOUT_MS = 30_000;

const err = (description: string) => ({ description, schema: errorSchema });

const participantSchema = z.object({ jid: z.string(), role: z.enum(['member', 'admin', 'superadmin']), lid: z.string().optional() });

export const groupSchema = z
  .object({
    id: z.string().meta({ description: 'Group JID' }),
    subject: z.string(),
    description: z.string().optional(),
    owner: z.string().optional(),
    createdAt: z.string().optional(),
    size: z.number(),
    announce: z.boolean().meta({ description: 'Only admins may send' }),
    locked: z.boolean().meta({ description: 'Only admins may edit subject, description and the ephemeral timer' }),
    memberAddMode: z.enum(['admins', 'all']),
    joinApproval: z.boolean(),
    ephemeralSeconds: z.number().optional(),
    isCommunity: z.boolean(),
    isCommunityAnnounce: z.boolean(),
    community: z.string().optional().meta({ description: 'The community this group is linked to' }),
    participants: z.array(participantSchema),
    admins: z.array(z.string()),
  })
  .meta({ id: 'Group' });

const resultsSchema = z
  .object({
    results: z.array(
      z.object({
        jid: z.string(),
        ok: z.boolean(),
        status: z.number().meta({ description: "WhatsApp's code: 200, 403 (not allowed), 404 (not on WhatsApp / no request), 406, 409 (already a member)" }),
        error: z.enum(['NOT_ALLOWED', 'NOT_FOUND', 'ALREADY_MEMBER', 'NOT_ACCEPTABLE', 'REFUSED']).optional(),
      }),
    ),
  })
  .meta({ id: 'GroupParticipantResults' });

const COMMON_ERRORS = {
  400: err('Invalid request (VALIDATION_FAILED, INVALID_PHONE)'),
  403: err('Not a member / not an admin of the group (NOT_GROUP_MEMBER, NOT_GROUP_ADMIN)'),
  404: err('No session, or no such group (SESSION_NOT_FOUND, GROUP_NOT_FOUND)'),
  409: err('The session is not connected (SESSION_NOT_CONNECTED), or the change conflicts (CONFLICT)'),
  422: err('WhatsApp refused the request (GROUP_REQUEST_REFUSED)'),
  429: err('WhatsApp rate-limited the request (WA_RATE_LIMITED)'),
  503: err('Shard unavailable (SHARD_UNAVAILABLE)'),
  504: err('WhatsApp or the shard did not answer in time (WA_TIMEOUT, IPC_TIMEOUT)'),
};

export function groupRoutes(deps: GroupRoutesDeps): RouteDefinition[] {
  const { manager, shards } = deps;
  const schemas = createGroupSchemas({ defaultCountry: deps.messaging.defaultCountry });
  const forwarded = deps.hosts === undefined ? async () => false : createForwarder(manager, deps.hosts, deps.clusterSecret);
  const groupParams = idParams.extend({ group: groupJidSchema }).meta({ id: 'GroupParams' });
  const communityParams = idParams.extend({ community: groupJidSchema }).meta({ id: 'CommunityParams' });
  const linkParams = idParams.extend({ community: groupJidSchema, group: groupJidSchema }).meta({ id: 'CommunityLinkParams' });
  const READ = { scopes: ['messages:read'], sessionParam: 'id' } as const;
  const WRITE = { scopes: ['messages:send'], sessionParam: 'id' } as const;

  /**
   * Runs a group action on the session's socket; undefined when the call was forwarded to the owning host (the
   * response is already set).
   */
  const run = async (ctx: AppContext, id: string, action: GroupAction): Promise<GroupActionResult | undefined> => {
    await manager.get(id); // 404 for an unknown session
    if (await forwarded(ctx, id)) return undefined;
    const own = await manager.ownership(id);
    if (own.kind !== 'local') {
      throw new GatewayError('SESSION_NOT_CONNECTED', own.kind === 'foreign' ? `Session ${id} runs on host ${own.hostId}.` : `Session ${id} is not running.`);
    }
    return await shards.call(own.shard, { kind: 'group.action', sessionId: id, action }, { requestId: ctx.state.reqId, timeoutMs: GROUP_CALL_TIMEOUT_MS });
  };

  const reply = (ctx: AppContext, r: GroupActionResult | undefined, body: (r: GroupActionResult) => unknown, status = 200): void => {
    if (r === undefined) return;
    ctx.status = status;
    ctx.body = body(r);
  };

  const groupOf = (r: GroupActionResult) => {
    if (r.group === undefined) throw new GatewayError('INTERNAL', 'The shard returned no group.');
    return r.group;
  };

  const G = `${SESSIONS}/:id/groups`;
  const C = `${SESSIONS}/:id/communities`;
  return [
    defineRoute({
      method: 'get',
      path: G,
      summary: 'List the groups the session is a member of',
      tags: ['groups'],
      auth: READ,
      params: idParams,
      responses: { 200: { description: 'The groups, with participants', schema: z.object({ groups: z.array(groupSchema) }).meta({ id: 'GroupList' }) }, ...COMMON_ERRORS },
      handler: async (ctx, { params }) => reply(ctx, await run(ctx, params.id, { type: 'list' }), (r) => ({ groups: r.groups ?? [] })),
    }),
    defineRoute({
      method: 'post',
      path: G,
      summary: 'Create a group with participants (the session becomes its owner)',
      tags: ['groups'],
      auth: WRITE,
      params: idParams,
      body: schemas.createGroup,
      responses: { 201: { description: 'Created', schema: groupSchema }, ...COMMON_ERRORS },
      handler: async (ctx, { params, body }) => {
        const r = await run(ctx, params.id, { type: 'create', subject: body.subject, participants: body.participants.map((p) => p.jid) });
        reply(ctx, r, groupOf, 201);
        if (r?.group !== undefined) ctx.set('location', `${SESSIONS}/${encodeURIComponent(params.id)}/groups/${encodeURIComponent(r.group.id)}`);
      },
    }),
    defineRoute({
      method: 'post',
      path: `${G}/join`,
      summary: 'Join a group by invite code (pending when the group wants an admin to approve)',
      tags: ['groups'],
      auth: WRITE,
      params: idParams,
      body: schemas.join,
      responses: {
        200: { description: 'Joined, or asked to join', schema: z.object({ jid: z.string().optional(), pending: z.boolean() }).meta({ id: 'JoinGroupResponse' }) },
        ...COMMON_ERRORS,
      },
      handler: async (ctx, { params, body }) => reply(ctx, await run(ctx, params.id, { type: 'join', code: body.code }), (r) => ({ ...(r.jid === undefined ? {} : { jid: r.jid }), pending: r.pending === true })),
    }),
    defineRoute({
      method: 'get',
      path: `${G}/:group`,
      summary: 'A group with its participants and admins (fresh from WhatsApp; refreshes the send cache)',
      tags: ['groups'],
      auth: READ,
      params: groupParams,
      responses: { 200: { description: 'The group', schema: groupSchema }, ...COMMON_ERRORS },
      handler: async (ctx, { params }) => reply(ctx, await run(ctx, params.id, { type: 'get', group: params.group }), groupOf),
    }),
    defineRoute({
      method: 'patch',
      path: `${G}/:group`,
      summary: 'Change subject, description, settings (announce, locked, memberAddMode, joinApproval) or the ephemeral timer',
      description: 'Changes are made in the order subject, description, settings, ephemeral; the first refusal stops the rest.',
      tags: ['groups'],
      auth: WRITE,
      params: groupParams,
      body: schemas.updateGroup,
      responses: { 200: { description: 'The group after the change', schema: groupSchema }, ...COMMON_ERRORS },
      handler: async (ctx, { params, body }) => {
        let last: GroupActionResult | undefined;
        const group = params.group;
        const steps: GroupAction[] = [];
        if (body.subject !== undefined) steps.push({ type: 'subject', group, subject: body.subject });
        if (body.description !== undefined) steps.push({ type: 'description', group, description: body.description });
        if (body.settings !== undefined) {
          const s = body.settings;
          steps.push({
            type: 'settings',
            group,
            settings: {
              ...(s.announce === undefined ? {} : { announce: s.announce }),
              ...(s.locked === undefined ? {} : { locked: s.locked }),
              ...(s.memberAddMode === undefined ? {} : { memberAddMode: s.memberAddMode }),
              ...(s.joinApproval === undefined ? {} : { joinApproval: s.joinApproval }),
            },
          });
        }
        if (body.ephemeralSeconds !== undefined) steps.push({ type: 'ephemeral', group, seconds: body.ephemeralSeconds });
        for (const step of steps) {
          last = await run(ctx, params.id, step);
          if (last === undefined) return; // forwarded: the owning host made every change
        }
        reply(ctx, last, groupOf);
      },
    }),
    defineRoute({
      method: 'post',
      path: `${G}/:group/participants`,
      summary: 'Add, remove, promote or demote participants (a result per participant)',
      tags: ['groups'],
      auth: WRITE,
      params: groupParams,
      body: schemas.participantsAction,
      responses: { 200: { description: 'One result per participant', schema: resultsSchema }, ...COMMON_ERRORS },
      handler: async (ctx, { params, body }) =>
        reply(ctx, await run(ctx, params.id, { type: 'participants', group: params.group, action: body.action, participants: body.participants.map((p) => p.jid) }), (r) => ({ results: r.results ?? [] })),
    }),
    defineRoute({
      method: 'get',
      path: `${G}/:group/invite-code`,
      summary: 'The invite code of the group (admins only)',
      tags: ['groups'],
      auth: WRITE,
      params: groupParams,
      responses: { 200: { description: 'The code and its link', schema: z.object({ code: z.string(), link: z.string() }).meta({ id: 'GroupInviteCode' }) }, ...COMMON_ERRORS },
      handler: async (ctx, { params }) => reply(ctx, await run(ctx, params.id, { type: 'invite-code', group: params.group }), (r) => ({ code: r.code, link: `https://chat.whatsapp.com/${r.code ?? ''}` })),
    }),
    defineRoute({
      method: 'post',
      path: `${G}/:group/invite-code/revoke`,
      summary: 'Revoke the invite code; returns the new one',
      tags: ['groups'],
      auth: WRITE,
      params: groupParams,
      responses: { 200: { description: 'The new code and its link', schema: z.object({ code: z.string(), link: z.string() }) }, ...COMMON_ERRORS },
      handler: async (ctx, { params }) => reply(ctx, await run(ctx, params.id, { type: 'revoke-invite', group: params.group }), (r) => ({ code: r.code, link: `https://chat.whatsapp.com/${r.code ?? ''}` })),
    }),
    defineRoute({
      method: 'get',
      path: `${G}/:group/requests`,
      summary: 'Pending join requests (admins only)',
      tags: ['groups'],
      auth: READ,
      params: groupParams,
      responses: {
        200: {
          description: 'The requests',
          schema: z.object({ requests: z.array(z.object({ jid: z.string(), requestedAt: z.string().optional(), method: z.string().optional() })) }).meta({ id: 'GroupJoinRequests' }),
        },
        ...COMMON_ERRORS,
      },
      handler: async (ctx, { params }) => reply(ctx, await run(ctx, params.id, { type: 'requests', group: params.group }), (r) => ({ requests: r.requests ?? [] })),
    }),
    defineRoute({
      method: 'post',
      path: `${G}/:group/requests`,
      summary: 'Approve or reject join requests (a result per participant)',
      tags: ['groups'],
      auth: WRITE,
      params: groupParams,
      body: schemas.requestsAction,
      responses: { 200: { description: 'One result per participant', schema: resultsSchema }, ...COMMON_ERRORS },
      handler: async (ctx, { params, body }) =>
        reply(ctx, await run(ctx, params.id, { type: 'requests-action', group: params.group, action: body.action, participants: body.participants.map((p) => p.jid) }), (r) => ({ results: r.results ?? [] })),
    }),
    defineRoute({
      method: 'post',
      path: `${G}/:group/leave`,
      summary: 'Leave the group',
      tags: ['groups'],
      auth: WRITE,
      params: groupParams,
      responses: { 200: { description: 'Left', schema: z.object({ ok: z.boolean() }) }, ...COMMON_ERRORS },
      handler: async (ctx, { params }) => reply(ctx, await run(ctx, params.id, { type: 'leave', group: params.group }), () => ({ ok: true })),
    }),
    defineRoute({
      method: 'put',
      path: `${G}/:group/picture`,
      summary: 'Set the group picture (JPEG or PNG as base64; resized to 640x640 JPEG)',
      tags: ['groups'],
      auth: WRITE,
      params: groupParams,
      body: schemas.picture,
      bodyLimitBytes: 8 * 1024 * 1024,
      responses: { 200: { description: 'Set', schema: z.object({ ok: z.boolean() }) }, ...COMMON_ERRORS },
      handler: async (ctx, { params, body }) => {
        const upload = `grp-pic-${randomUUID()}`;
        const key = blobKeys.upload(params.id, upload);
        await deps.blobs.put(key, Buffer.from(body.base64, 'base64'));
        try {
          reply(ctx, await run(ctx, params.id, { type: 'picture', group: params.group, upload }), () => ({ ok: true }));
        } finally {
          await deps.blobs.delete(key).catch(() => undefined);
        }
      },
    }),
    defineRoute({
      method: 'get',
      path: `${G}/:group/picture`,
      summary: "The group picture's URL at WhatsApp (absent when the group has none)",
      tags: ['groups'],
      auth: READ,
      params: groupParams,
      responses: { 200: { description: 'The URL', schema: z.object({ url: z.string().optional() }).meta({ id: 'GroupPicture' }) }, ...COMMON_ERRORS },
      handler: async (ctx, { params }) => reply(ctx, await run(ctx, params.id, { type: 'picture-url', group: params.group }), (r) => (r.url === undefined ? {} : { url: r.url })),
    }),
    defineRoute({
      method: 'delete',
      path: `${G}/:group/picture`,
      summary: 'Remove the group picture',
      tags: ['groups'],
      auth: WRITE,
      params: groupParams,
      responses: { 200: { description: 'Removed', schema: z.object({ ok: z.boolean() }) }, ...COMMON_ERRORS },
      handler: async (ctx, { params }) => reply(ctx, await run(ctx, params.id, { type: 'picture', group: params.group }), () => ({ ok: true })),
    }),
    defineRoute({
      method: 'post',
      path: C,
      summary: 'Create a community (with its announcement group)',
      tags: ['groups'],
      auth: WRITE,
      params: idParams,
      body: schemas.createCommunity,
      responses: { 201: { description: 'The community (its parent group)', schema: groupSchema }, ...COMMON_ERRORS },
      handler: async (ctx, { params, body }) => reply(ctx, await run(ctx, params.id, { type: 'community-create', subject: body.subject, description: body.description ?? '' }), groupOf, 201),
    }),
    defineRoute({
      method: 'get',
      path: `${C}/:community/groups`,
      summary: 'The groups linked to a community (its announcement group included)',
      tags: ['groups'],
      auth: READ,
      params: communityParams,
      responses: {
        200: { description: 'Linked groups', schema: z.object({ groups: z.array(z.object({ id: z.string(), subject: z.string(), size: z.number().optional() })) }).meta({ id: 'CommunityGroups' }) },
        ...COMMON_ERRORS,
      },
      handler: async (ctx, { params }) => reply(ctx, await run(ctx, params.id, { type: 'community-groups', community: params.community }), (r) => ({ groups: r.linked ?? [] })),
    }),
    defineRoute({
      method: 'put',
      path: `${C}/:community/groups/:group`,
      summary: 'Link a group to the community (admin of both)',
      tags: ['groups'],
      auth: WRITE,
      params: linkParams,
      responses: { 200: { description: 'The group, now linked', schema: groupSchema }, ...COMMON_ERRORS },
      handler: async (ctx, { params }) => reply(ctx, await run(ctx, params.id, { type: 'community-link', community: params.community, group: params.group }), groupOf),
    }),
    defineRoute({
      method: 'delete',
      path: `${C}/:community/groups/:group`,
      summary: 'Unlink a group from the community',
      tags: ['groups'],
      auth: WRITE,
      params: linkParams,
      responses: { 200: { description: 'Unlinked', schema: z.object({ ok: z.boolean() }) }, ...COMMON_ERRORS },
      handler: async (ctx, { params }) => reply(ctx, await run(ctx, params.id, { type: 'community-unlink', community: params.community, group: params.group }), () => ({ ok: true })),
    }),
  ];
}
