// Faults injected on demand: rate-limited sends and added latency, scoped to a device, an account or all.
export type FaultSpec =
  | {
      readonly kind: 'rate-limit';
      /** Device jid (`123:4@s.whatsapp.net`), account number, or omitted for everybody. */
      readonly target?: string;
      /** Ack error code returned for refused sends: 429 (rate-overlimit) by default, 463 for a restricted account. */
      readonly code?: number;
      /** How many sends to refuse; omitted = until cleared. */
      readonly count?: number;
    }
  | {
      readonly kind: 'latency';
      readonly target?: string;
      /** Extra delay added to every frame sent to matching sockets. */
      readonly ms: number;
    };

export interface ActiveFault {
  readonly id: number;
  readonly spec: FaultSpec;
  remaining: number | undefined;
}

const matches = (target: string | undefined, deviceJid: string, number: string): boolean =>
  target === undefined || target === deviceJid || target === number || target === `${number}@s.whatsapp.net`;

export class Faults {
  private nextId = 1;
  private readonly active = new Map<number, ActiveFault>();

  add(spec: FaultSpec): number {
    const id = this.nextId++;
    this.active.set(id, { id, spec, remaining: spec.kind === 'rate-limit' ? spec.count : undefined });
    return id;
  }

  remove(id: number): boolean {
    return this.active.delete(id);
  }

  clear(): void {
    this.active.clear();
  }

  list(): ActiveFault[] {
    return [...this.active.values()];
  }

  /** If a send by this device must be refused, the ack error code (and the fault's budget is used). */
  sendError(deviceJid: string, number: string): number | undefined {
    for (const f of this.active.values()) {
      if (f.spec.kind !== 'rate-limit' || !matches(f.spec.target, deviceJid, number)) continue;
      if (f.remaining !== undefined) {
        f.remaining--;
        if (f.remaining <= 0) this.active.delete(f.id);
      }
      return f.spec.code ?? 429;
    }
    return undefined;
  }

  latency(deviceJid: string | undefined, number: string | undefined): number {
    let ms = 0;
    for (const f of this.active.values()) {
      if (f.spec.kind !== 'latency') continue;
      if (f.spec.target !== undefined && (deviceJid === undefined || number === undefined || !matches(f.spec.target, deviceJid, number))) continue;
      ms = Math.max(ms, f.spec.ms);
    }
    return ms;
  }
}
