import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Forward } from './host.js';

/**
 * A listener on 127.0.0.1:0 whose every connection is piped to a stream that
 * `open` provides (a direct TCP connection, or an SSH channel). `close()`
 * stops listening AND ends the connections still open, so it never waits on a
 * client that forgot to hang up.
 */
export async function listenForward(open: () => Promise<Duplex>): Promise<Forward> {
  const live = new Set<Socket>();
  const server = createServer((sock) => {
    sock.setNoDelay(true);
    live.add(sock);
    sock.on('close', () => live.delete(sock));
    sock.on('error', () => sock.destroy());
    open().then(
      (up) => {
        if (sock.destroyed) return void up.destroy();
        sock.pipe(up).pipe(sock);
        up.on('error', () => sock.destroy());
        up.on('close', () => sock.destroy());
        sock.on('close', () => up.destroy());
      },
      () => sock.destroy(),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    localPort: (server.address() as AddressInfo).port,
    close: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of live) s.destroy();
      await closed;
    },
  };
}
