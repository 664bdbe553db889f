/**
 * Lines for a reader of any speed. A pipe's writes are asynchronous in Node:
 * what the kernel has not taken yet waits in the stream's buffer, and
 * `process.exit` throws that away. Each line waits while the reader is
 * behind, so a slow `| jq` gets everything and a 100,000-line listing never
 * sits in memory.
 */
export interface LineOutput {
  line(text: string): Promise<void>;
  /** Resolves once everything written so far has been handed to the OS. */
  flushed(): Promise<void>;
}

export function lineOutput(stream: NodeJS.WriteStream | NodeJS.WritableStream): LineOutput {
  // The reader went away (`| head -1`): later lines have nowhere to go. The
  // command still finishes its work (an enqueue must not stop half-way).
  let gone = false;
  // Any write error (EPIPE above all) means nobody can read what follows;
  // there is nowhere left to report it either.
  stream.on('error', () => (gone = true));
  stream.once('close', () => (gone = true));
  return {
    async line(text) {
      if (gone) return;
      if (!stream.write(text + '\n')) {
        await new Promise<void>((resolve) => {
          const done = () => {
            stream.off('drain', done).off('close', done).off('error', done);
            resolve();
          };
          stream.on('drain', done).on('close', done).on('error', done);
        });
      }
    },
    flushed() {
      if (gone) return Promise.resolve();
      return new Promise((resolve) => {
        stream.once('close', resolve);
        stream.write('', () => resolve());
      });
    },
  };
}

export const stdout = lineOutput(process.stdout);
export const stderr = lineOutput(process.stderr);
