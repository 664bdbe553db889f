/** Public API of xactly for applications that enqueue, and for embedding workers. */
export { loadConfig, ConfigError, type Config } from './config.js';
export { keyId, jobIdFor, parseJobId, type PostKey } from './domain/key.js';
export { validateRequest, type PublishRequest, type PublishRequestInput, type FieldError, type PostKind } from './domain/request.js';
export { type XOutcome, NotSentError, UnknownAccountError, MissingIdError } from './domain/outcome.js';
export { classifyXError } from './x/classify.js';
export { PayloadConflictError, InvalidRequestError, type Producer, type EnqueueResult, type ProducerOptions } from './queue/producer.js';
export { createPublishProcessor, type PublishDeps } from './queue/publisher.js';
export { reconcileOnce, type ReconcileDeps, type ReconcileReport } from './queue/reconciler.js';
export { Ledger, type RegisterResult, type ClaimResult } from './ledger/ledger.js';
export type { PostRecord, PostState, AuditEvent, FailReason } from './ledger/record.js';
export { ledgerKeys, hashTagged, QUEUE_NAMES } from './ledger/keys.js';
export type { XPort, CreatedPost, TimelineTweet, DmEvent, Page } from './x/port.js';
export { TwitterXPort } from './x/twitter.js';
export {
  type CredentialStore,
  type Account,
  type AccountAuth,
  fileCredentialStore,
  memoryCredentialStore,
  staticCredentialStore,
  parseAccounts,
} from './x/credentials.js';
export { TokenRefresher } from './x/refresh.js';
export { type BudgetPolicy, DEFAULT_BUDGET } from './domain/budget.js';
export { startWorkerProcess, type WorkerProcess } from './ops/worker-process.js';
export { createBoardServer } from './ops/board.js';
export { webhookPages } from './ops/board-webhooks.js';
export { connectRedis, openApp, openLedger, openQueue, createProducer, createPublishWorker, startReconciler, type App, type AppOverrides } from './app.js';
export { createLogger } from './log.js';
