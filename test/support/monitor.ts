import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { REDIS_URL } from './redis.js';

/**
 * Redis' MONITOR over a plain socket (ioredis' monitor mode loses its
 * command queue when other clients flood the feed): each command with
 * where it ran from ('lua' inside a script, else the client's address).
 */
export async function monitorRedis(onCommand: (source: string, command: string, key: string | undefined) => void): Promise<Socket> {
  const url = new URL(REDIS_URL);
  const socket = connect(Number(url.port || 6379), url.hostname);
  await once(socket, 'connect');
  socket.write('MONITOR\r\n');
  let buffer = '';
  let ready!: () => void;
  const started = new Promise<void>((r) => (ready = r));
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    const lines = buffer.split('\r\n');
    buffer = lines.pop()!;
    for (const line of lines) {
      if (line === '+OK') ready();
      // +1796236433.349089 [0 lua] "XADD" "{prefix}:events" ...
      const m = /^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]*)"(?: "((?:[^"\\]|\\.)*)")?/.exec(line);
      if (m) onCommand(m[1]!, m[2]!, m[3]);
    }
  });
  await started;
  return socket;
}
