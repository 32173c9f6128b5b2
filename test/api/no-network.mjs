// Preloaded (--import) into tools the tests run, such as Redocly CLI: any socket connection to an address
// other than loopback throws before it is made, so a tool that tries to phone home fails the test instead
// of reaching the network. Plain .mjs: it runs inside a third-party CLI with no type stripping set up.
import net from 'node:net';

const LOOPBACK = /^(127\.|::1$|::ffff:127\.|localhost$)/;
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  // net.connect() passes its normalised arguments as one array ([options, callback]).
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const options = typeof first === 'object' && first !== null ? first : { port: first, host: typeof args[1] === 'string' ? args[1] : 'localhost' };
  if (options.path === undefined) {
    const host = String(options.host ?? 'localhost');
    if (!LOOPBACK.test(host)) {
      process.stderr.write(`no-network: refused a connection to ${host}:${String(options.port)}\n`);
      process.exitCode = 97;
      throw new Error(`no-network: connection to ${host} refused`);
    }
  }
  return connect.apply(this, args);
};
