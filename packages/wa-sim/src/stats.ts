// Counters and the invariant the gateway must keep: never two live sockets for one device.
export interface StatsSnapshot {
  readonly socketsOpen: number;
  readonly socketsAuthenticated: number;
  readonly peakSocketsOpen: number;
  readonly accounts: number;
  readonly linkedDevices: number;
  readonly pairings: number;
  /** `<iq xmlns=encrypt type=set>` prekey uploads by companions (a relogin from stored state makes none). */
  readonly preKeyUploads: number;
  readonly logins: number;
  readonly loginFailures: number;
  readonly messagesIn: number;
  readonly messagesRelayed: number;
  readonly messagesRejected: number;
  readonly receiptsIn: number;
  readonly receiptsForwarded: number;
  /** Retry receipts for messages simulated phones sent (each answered by encrypting the message again). */
  readonly retriesToPhones: number;
  readonly acksIn: number;
  readonly nacksIn: number;
  readonly offlineDelivered: number;
  readonly pendingUnacked: number;
  readonly iqs: number;
  readonly unhandledIqs: number;
  readonly mediaUploads: number;
  readonly mediaDownloads: number;
  readonly groupsCreated: number;
  /** `w:g2` metadata queries (`<query request="interactive"/>`), refused ones included. */
  readonly groupMetadataQueries: number;
  /** Metadata queries refused with 429 rate-overlimit. */
  readonly groupMetadataRateLimited: number;
  readonly groupNotifications: number;
  /** Group messages accepted (each fanned out to every member device). */
  readonly groupMessages: number;
  /** Number of times a device got a second live socket while one was already live (must stay 0). */
  readonly concurrentLoginViolations: number;
  readonly violationsByDevice: Readonly<Record<string, number>>;
  /**
   * Frames received from a socket after a newer login of its device superseded it (dropped, not processed).
   * The zombie invariant: a gateway process that lost its lease (paused, cut off) must send nothing on the old
   * socket once the session logged in elsewhere; must stay 0 (docs/sessions.md, "Zombie safety").
   */
  readonly supersededFrames: number;
  readonly supersededFramesByDevice: Readonly<Record<string, number>>;
  /** Live sockets per device right now (only devices with at least one). */
  readonly liveByDevice: Readonly<Record<string, number>>;
  readonly maxLivePerDevice: number;
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  readonly uptimeMs: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly nodeVersion: string;
}

export class Stats {
  socketsOpen = 0;
  socketsAuthenticated = 0;
  peakSocketsOpen = 0;
  pairings = 0;
  preKeyUploads = 0;
  logins = 0;
  loginFailures = 0;
  messagesIn = 0;
  messagesRelayed = 0;
  messagesRejected = 0;
  receiptsIn = 0;
  receiptsForwarded = 0;
  retriesToPhones = 0;
  acksIn = 0;
  nacksIn = 0;
  offlineDelivered = 0;
  iqs = 0;
  unhandledIqs = 0;
  mediaUploads = 0;
  mediaDownloads = 0;
  groupsCreated = 0;
  groupMetadataQueries = 0;
  groupMetadataRateLimited = 0;
  groupNotifications = 0;
  groupMessages = 0;
  concurrentLoginViolations = 0;
  supersededFrames = 0;
  readonly supersededFramesByDevice = new Map<string, number>();
  maxLivePerDevice = 0;
  readonly violationsByDevice = new Map<string, number>();
  readonly liveByDevice = new Map<string, number>();
  private readonly startedAt = Date.now();
  private readonly cpuStart = process.cpuUsage();

  socketOpened(): void {
    this.socketsOpen++;
    if (this.socketsOpen > this.peakSocketsOpen) this.peakSocketsOpen = this.socketsOpen;
  }

  /** A device's live socket count changed; records a violation when it exceeds one. */
  setLive(deviceJid: string, live: number, grew: boolean): void {
    if (live > 0) this.liveByDevice.set(deviceJid, live);
    else this.liveByDevice.delete(deviceJid);
    if (live > this.maxLivePerDevice) this.maxLivePerDevice = live;
    if (grew && live > 1) {
      this.concurrentLoginViolations++;
      this.violationsByDevice.set(deviceJid, (this.violationsByDevice.get(deviceJid) ?? 0) + 1);
    }
  }

  supersededFrame(deviceJid: string): void {
    this.supersededFrames++;
    this.supersededFramesByDevice.set(deviceJid, (this.supersededFramesByDevice.get(deviceJid) ?? 0) + 1);
  }

  snapshot(extra: { accounts: number; linkedDevices: number; pendingUnacked: number }): StatsSnapshot {
    const cpu = process.cpuUsage(this.cpuStart);
    return {
      socketsOpen: this.socketsOpen,
      socketsAuthenticated: this.socketsAuthenticated,
      peakSocketsOpen: this.peakSocketsOpen,
      ...extra,
      pairings: this.pairings,
      preKeyUploads: this.preKeyUploads,
      logins: this.logins,
      loginFailures: this.loginFailures,
      messagesIn: this.messagesIn,
      messagesRelayed: this.messagesRelayed,
      messagesRejected: this.messagesRejected,
      receiptsIn: this.receiptsIn,
      receiptsForwarded: this.receiptsForwarded,
      retriesToPhones: this.retriesToPhones,
      acksIn: this.acksIn,
      nacksIn: this.nacksIn,
      offlineDelivered: this.offlineDelivered,
      iqs: this.iqs,
      unhandledIqs: this.unhandledIqs,
      mediaUploads: this.mediaUploads,
      mediaDownloads: this.mediaDownloads,
      groupsCreated: this.groupsCreated,
      groupMetadataQueries: this.groupMetadataQueries,
      groupMetadataRateLimited: this.groupMetadataRateLimited,
      groupNotifications: this.groupNotifications,
      groupMessages: this.groupMessages,
      concurrentLoginViolations: this.concurrentLoginViolations,
      violationsByDevice: Object.fromEntries(this.violationsByDevice),
      supersededFrames: this.supersededFrames,
      supersededFramesByDevice: Object.fromEntries(this.supersededFramesByDevice),
      liveByDevice: Object.fromEntries(this.liveByDevice),
      maxLivePerDevice: this.maxLivePerDevice,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      uptimeMs: Date.now() - this.startedAt,
      rssBytes: process.memoryUsage.rss(),
      heapUsedBytes: process.memoryUsage().heapUsed,
      nodeVersion: process.version,
    };
  }
}
