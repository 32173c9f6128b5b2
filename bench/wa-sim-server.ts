// Child process for bench/wa-sim.ts and bench/scale.ts: runs the simulator alone so its own CPU can be measured.
// Prints one JSON line with its URLs, exits when stdin closes. SIGUSR2 writes a heap snapshot into the current
// directory (`kill -USR2 <pid>`: where the simulator's memory goes after a few login rounds).
import { writeHeapSnapshot } from 'node:v8';
import { WaSimulator } from '@wagw/wa-sim';

const sim = await WaSimulator.create({ receiptDelayMs: Number(process.env.WA_SIM_RECEIPT_DELAY_MS ?? 300) });
process.stdout.write(
  `${JSON.stringify({ admin: sim.urls.admin, ws: sim.urls.ws, pid: process.pid, rootPublicKey: sim.rootPublicKey.toString('base64'), mediaCaPem: sim.mediaCaPem, mediaHostPort: sim.media.hostPort })}\n`,
);
const stop = (): void => {
  sim.close().then(() => process.exit(0), () => process.exit(1));
};
process.stdin.on('end', stop);
process.stdin.resume();
process.once('SIGTERM', stop);
process.on('SIGUSR2', () => process.stderr.write(`wa-sim-server: heap snapshot ${writeHeapSnapshot()}\n`));
