// Public exports of the WhatsApp simulator.
export { WaSimulator } from './simulator.ts';
export type { BaileysClientConfig, DeviceInfo, KickMode, ProvisionKeys, SimulatorUrls, WaSimulatorOptions } from './simulator.ts';
export { SimPhone, toJid } from './phone.ts';
export type { PhonePresence, ReceivedMessage, SentMessage } from './phone.ts';
export type { FaultSpec, ActiveFault } from './faults.ts';
export type { StatsSnapshot } from './stats.ts';
export type { Linked } from './pairing.ts';
export type { NoiseCertFault } from './noise.ts';
export { makeMemoryKeyStore } from './signal-peer.ts';
export { encryptPollVote } from './poll.ts';
export type { PollVoteInput } from './poll.ts';
export { ROUTES as ADMIN_ROUTES } from './admin-http.ts';
export { DemoPeople, answerText, describeMessage } from './demo.ts';
export type { DemoContact, DemoPeopleOptions } from './demo.ts';
