import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';

export interface TemporalTarget {
  address: string;
  namespace: string;
}

/** A Temporal client with its connection; dispose to close. */
export async function connectTemporalClient(target: TemporalTarget): Promise<Client & AsyncDisposable> {
  const connection = await Connection.connect({ address: target.address, connectTimeout: 5_000 });
  const client = new Client({ connection, namespace: target.namespace });
  return Object.assign(client, { [Symbol.asyncDispose]: () => connection.close() });
}

/** The native connection that workers poll through. */
export function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  return NativeConnection.connect({ address: target.address });
}
